"""markdown_render: LLM markdown becomes readable HTML, and nothing in it can run."""

import hashlib
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.template import engines

from annotator import rendering
from annotator.rendering import markdown_render, sanitize_html, turns_render

REL = 'rel="noopener noreferrer nofollow"'


class _Elements(HTMLParser):
    """The elements and attributes a browser would build (text, escaped markup included, is not)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


def _assert_inert(html: str) -> None:
    """No element that loads or runs anything, no handler, no script URL, no style."""
    for tag, attrs in _Elements(html).elements:
        assert tag not in {"script", "iframe", "img", "object", "embed", "svg", "style", "form"}
        assert tag not in {"input", "link", "meta", "base"}
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"style", "src", "srcdoc", "action", "formaction"}, (tag, name)
            if name == "href":
                assert value.split(":", 1)[0].lower() in {"http", "https", "mailto"}, value


def test_paragraphs_emphasis_and_inline_code():
    html = markdown_render("Some *emphasis*, **strong** and `code`.\nNext line.")
    assert html == (
        "<p>Some <em>emphasis</em>, <strong>strong</strong> and <code>code</code>.<br>\n"
        "Next line.</p>\n"
    )


def test_fenced_code_keeps_its_language_class_and_escapes_its_content():
    html = markdown_render('```python\nif a < b:\n    print("<b>")\n```')
    assert html == (
        '<pre><code class="language-python">if a &lt; b:\n    print("&lt;b&gt;")\n</code></pre>\n'
    )


def test_a_hostile_code_info_string_loses_the_class():
    html = markdown_render('```" onmouseover="alert(1)\nx\n```')
    assert html == "<pre><code>x\n</code></pre>\n"


def test_lists_render_ordered_lists_keep_their_start():
    html = markdown_render("- one\n- two\n\n3. three\n4. four")
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>' in html


def test_tables_render_with_alignment_as_classes_not_styles():
    html = markdown_render("| name | n |\n| :--- | ---: |\n| a | 1 |")
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert '<th class="align-left">name</th>' in html
    assert '<td class="align-right">1</td>' in html
    _assert_inert(html)


def test_headings_blockquotes_rules_and_strikethrough():
    html = markdown_render("# Title\n\n> quoted\n\n---\n\n~~gone~~")
    assert "<h1>Title</h1>" in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html
    assert "<hr>" in html
    assert "<s>gone</s>" in html


def test_links_get_rel_and_open_in_a_new_tab():
    html = markdown_render('[docs](https://example.com/a?b=1 "Title") and <mailto:x@example.com>')
    assert (
        f'<a href="https://example.com/a?b=1" title="Title" target="_blank" {REL}>docs</a>' in html
    )
    assert f'<a href="mailto:x@example.com" target="_blank" {REL}>' in html


def test_relative_links_lose_their_href():
    # A response must not link into this application (its own pages, GET endpoints).
    html = markdown_render("[logout](/accounts/logout/) [top](#x)")
    assert "href" not in html


def test_images_are_not_loaded():
    html = markdown_render("![tracker](https://evil.example/pixel.png)")
    assert "<img" not in html
    assert "tracker" in html


@pytest.mark.parametrize(
    "text",
    [
        "<script>window.pwned=1</script>",
        '<img src=x onerror="window.pwned=1">',
        "[x](javascript:window.pwned=1)",
        "[x](JavaScript:window.pwned=1)",
        "[x](java&#x09;script:window.pwned=1)",
        '<a href="javascript:window.pwned=1">x</a>',
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        '<div onmouseover="window.pwned=1">hover</div>',
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<svg onload="window.pwned=1"></svg>',
        '<p style="position:fixed;inset:0">overlay</p>',
        "<form action=https://evil.example><input name=password></form>",
        "<!-- comment --><b>bold</b>",
    ],
)
def test_hostile_input_is_neutralised(text):
    _assert_inert(markdown_render(text))


def test_raw_html_is_shown_as_text():
    html = markdown_render('<script>alert("x")</script> and <b onclick="x()">b</b>')
    assert html == (
        '<p>&lt;script&gt;alert("x")&lt;/script&gt; and &lt;b onclick="x()"&gt;b&lt;/b&gt;</p>\n'
    )


@pytest.mark.parametrize(
    "text", ["[x](javascript:alert(1))", "[x](data:text/html,hi)", "<javascript:alert(1)>"]
)
def test_script_url_links_have_no_href(text):
    assert "href" not in markdown_render(text)


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<script>alert(1)</script>ok", "ok"),
        ('<img src=x onerror="alert(1)">ok', "ok"),
        (
            '<a href="javascript:alert(1)" onclick="x()">x</a>',
            f'<a target="_blank" {REL}>x</a>',
        ),
        ('<a href="data:text/html,hi">x</a>', f'<a target="_blank" {REL}>x</a>'),
        ('<p style="color:red" onmouseover="x()">p</p>', "<p>p</p>"),
        ('<code class="language-js evil">c</code>', "<code>c</code>"),
        ('<td class="align-center">c</td>', "c"),  # a cell outside a table is dropped
        ('<iframe src="https://e.example"></iframe>ok', "ok"),
    ],
)
def test_sanitizer_alone_removes_what_markdown_might_let_through(dirty, clean):
    # The second layer on its own, in case the markdown layer ever passes HTML through.
    assert sanitize_html(dirty) == clean


def test_empty_text_renders_nothing():
    assert markdown_render("") == ""


def test_template_filter_renders_and_marks_safe():
    template = engines["django"].from_string("{% load annotator_extras %}{{ text|markdown }}")
    html = template.render({"text": "**hi** <script>x</script>"})
    assert html == "<p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"
    assert template.render({"text": None}) == ""


def test_turns_keep_their_role_and_render_their_content_safely():
    turns = turns_render(
        [
            {"role": "system", "content": "Be *brief*."},
            {"role": "user", "content": "<script>x</script> hi"},
            {"role": "tool", "content": " ", "name": "lookup"},
        ]
    )

    assert [(t.role, t.label, t.empty) for t in turns] == [
        ("system", "System", False),
        ("user", "User", False),
        ("tool", "Tool (lookup)", True),
    ]
    assert turns[0].html == "<p>Be <em>brief</em>.</p>\n"
    assert "<script>" not in turns[1].html and "&lt;script&gt;" in turns[1].html
    assert turns[2].html == ""


def _conversation_tag(**context) -> str:
    template = engines["django"].from_string(
        "{% load annotator_extras %}{% conversation text messages response=response %}"
    )
    return template.render({"messages": None, "response": False, **context})


def test_the_conversation_tag_shows_turns_with_roles():
    html = _conversation_tag(
        text="ignored",
        messages=[
            {"role": "user", "content": "**Q**"},
            {"role": "assistant", "content": "<b>A</b>"},
        ],
    )

    roles = re.findall(r'<div class="turn-role">([^<]*)</div>', html)
    assert roles == ["User", "Assistant"]
    assert "<strong>Q</strong>" in html and "&lt;b&gt;A&lt;/b&gt;" in html
    _assert_inert(html)


@pytest.mark.parametrize(
    ("text", "messages"),
    [("", None), (" \n\t", None), ("", []), ("", [{"role": "assistant", "content": "  "}])],
)
def test_an_empty_response_shows_a_marker(text, messages):
    html = _conversation_tag(text=text, messages=messages, response=True)
    assert '<p class="empty-response" data-testid="empty-response">(empty response)</p>' in html
    assert "turn-role" not in html


def test_plain_text_renders_as_markdown_and_a_response_with_text_has_no_marker():
    html = _conversation_tag(text="*hi*", response=True)
    assert '<div class="md"><p><em>hi</em></p>' in html
    assert "empty-response" not in html and "turn" not in html


# ---- Bounded, cached rendering and word breaks (issue 18) ----


def _text_of(html: str) -> str:
    """What the reader sees: the text without tags, <wbr> or the plain-text notice."""
    html = re.sub(r'<p class="render-notice">.*?</p>\n', "", html)
    return unescape(re.sub(r"<[^>]+>", "", html.replace("<br>\n", "\n"))).removesuffix("\n")


def test_a_megabyte_of_brackets_is_shown_whole_as_plain_text_with_a_notice():
    text = "[" * 1_000_000

    html = markdown_render(text)

    assert html.startswith(f'<p class="render-notice">{rendering.PLAIN_TEXT_NOTICE}</p>\n<p>')
    assert _text_of(html) == text
    assert "<wbr>" in html  # one 1,000,000-character word would freeze the browser's layout


def test_a_megabyte_of_emphasis_markers_is_shown_whole_as_plain_text():
    text = "*a " * 333_334

    html = markdown_render(text)

    assert "<em>" not in html and rendering.PLAIN_TEXT_NOTICE in html
    assert _text_of(html) == text


def test_a_text_of_too_many_lines_is_shown_as_plain_text_with_its_line_breaks():
    text = "| a |\n|---|\n" * 3_000  # short, but thousands of tables

    html = markdown_render(text)

    assert "<table>" not in html and rendering.PLAIN_TEXT_NOTICE in html
    assert _text_of(html) == text


def test_an_oversized_paragraph_is_plain_while_the_others_keep_their_markdown():
    brackets = "[a](" * 5_000  # 20,000 characters in one paragraph
    html = markdown_render(f"**before**\n\n{brackets}\nnext line\n\n*after*")

    assert "<strong>before</strong>" in html and "<em>after</em>" in html
    assert f"</p>\n<p>{brackets[:64]}<wbr>" in html and "<br>\nnext line</p>" in html
    assert rendering.PLAIN_TEXT_NOTICE not in html and "<a " not in html


def test_a_long_ordinary_answer_keeps_its_formatting_to_the_end():
    section = (
        "## Step {i}\n\nUse **pandas** and call `df.groupby('key').agg(['mean', 'std'])`; see "
        "[the docs](https://pandas.pydata.org/docs/) for *details*. "
        + "More words here. "
        * 40
        + "\n\n| col | value |\n|:---|---:|\n| a | 1 |\n| b | 2 |\n\n- one\n- two\n\n"
        "```python\nprint('hello')\n```\n\n"
    )
    text = "".join(section.format(i=i) for i in range(100))
    assert 90_000 < len(text) < rendering.MARKDOWN_MAX_CHARS

    html = markdown_render(text)

    last = html[html.index("Step 99") :]
    assert "<strong>pandas</strong>" in last and "<em>details</em>" in last
    assert '<td class="align-right">2</td>' in last and '<a href="https://pandas' in last
    assert html.count("<strong>") == 100 and rendering.PLAIN_TEXT_NOTICE not in html


def test_a_second_view_reads_the_shared_cache_and_a_new_text_or_version_renders_again(
    monkeypatch,
):
    from django.core.cache import cache

    parsed = []
    parse = rendering._markdown.parse
    monkeypatch.setattr(rendering._markdown, "parse", lambda s: parsed.append(s) or parse(s))

    first = markdown_render("Some *text*")
    again = markdown_render("Some *text*")
    other = markdown_render("Some *other* text")

    assert first == again == "<p>Some <em>text</em></p>\n"
    assert other == "<p>Some <em>other</em> text</p>\n"
    assert parsed == ["Some *text*", "Some *other* text"]
    # The cache is Django's (shared by the web processes when CACHE_URL is Redis), keyed by content.
    key = f"markdown:{rendering.RENDERER_VERSION}:{hashlib.sha256(b'Some *text*').hexdigest()}"
    assert cache.get(key) == first
    monkeypatch.setattr(rendering, "RENDERER_VERSION", rendering.RENDERER_VERSION + 1)
    assert markdown_render("Some *text*") == first
    assert parsed[-1] == "Some *text*" and len(parsed) == 3


def test_long_words_get_a_break_opportunity_every_64_characters_and_short_ones_none():
    html = markdown_render("short words stay as they are, " + "x" * 150 + " end")

    assert html == (
        "<p>short words stay as they are, "
        + "<wbr>".join(["x" * 64, "x" * 64, "x" * 22])
        + " end</p>\n"
    )


def test_a_word_continues_across_inline_elements_and_breaks_never_split_tags_or_entities():
    url = "https://example.com/" + "p" * 100
    html = markdown_render("a" * 60 + "**" + "b" * 10 + "**" + f"[{'&' * 70}]({url})")

    assert html.startswith("<p>" + "a" * 60 + "<strong>bbbb<wbr>bbbbbb</strong>")
    assert f'href="{url}"' in html  # attributes untouched
    assert "&amp;" * 58 + "<wbr>" + "&amp;" * 12 + "</a>" in html
    assert _text_of(html) == "a" * 60 + "b" * 10 + "&" * 70


@pytest.mark.parametrize(
    "cluster",
    ["क्ष", "e\u0301", "👩\u200d💻", "🇫🇷", "👍🏽"],
    ids=["conjunct", "combining", "zwj", "flag", "skin-tone"],
)
def test_breaks_fall_between_grapheme_clusters_only(cluster):
    html = markdown_render(cluster * 150)

    pieces = html.removeprefix("<p>").removesuffix("</p>\n").split("<wbr>")
    assert pieces == [cluster * 64, cluster * 64, cluster * 22]


def test_the_sanitizer_keeps_only_the_notice_class_on_paragraphs():
    assert sanitize_html('<p class="render-notice">n</p><p class="x">y</p>a<wbr>b') == (
        '<p class="render-notice">n</p><p>y</p>a<wbr>b'
    )
