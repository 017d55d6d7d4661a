"""Safe HTML from the markdown that LLMs write.

Responses and prompts are untrusted text shown to annotators inside a logged-in page, so rendering
has two independent layers: markdown-it with raw HTML disabled (HTML in a response shows as text,
which is also what an annotator should see), then nh3 with an explicit allow-list, so a parser bug
or a future option change still cannot let a script, an event handler or a `javascript:` URL
through.

Rendering is bounded and done once per text: a text over MARKDOWN_MAX_CHARS, or a paragraph (any
inline block) over MARKDOWN_MAX_BLOCK_CHARS, is shown as escaped plain text, because markdown-it's
inline parser is quadratic on inputs such as a long run of `[` (1 MB took 12 s); the result is kept
in Django's cache under the text's SHA-256 and RENDERER_VERSION, so a comparison shown to several
annotators, or reloaded, is rendered once. Long runs without whitespace get a `<wbr>` every
WORD_BREAK_EVERY characters: Chromium's line breaking of one huge word in a complex script (Arabic,
Devanagari) is quadratic even with `overflow-wrap: anywhere` (200,000 Arabic letters: over 20 s).
"""

import hashlib
import html as html_lib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
import regex
from django.core.cache import cache
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from annotator.conversations import Message, role_label

# Images are off: a remote image would load from the annotator's browser (tracking, leaking which
# annotator saw what). `![alt](url)` then renders as "!" followed by a plain link.
# `breaks`: LLM output uses single newlines as line breaks (poems, addresses, step lists).
_markdown = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    .enable(["table", "strikethrough"])
    .disable("image")
)

# Bump when the output for the same text changes (options, allow-list, limits): old cache entries
# are then never read again.
RENDERER_VERSION = 2
# markdown-it-py's block parsing costs up to about 20 us a line, so a text of more lines than this
# (100,000 characters of ordinary prose have about 2,000) is shown as plain text too.
MARKDOWN_MAX_CHARS = 100_000
MARKDOWN_MAX_LINES = 5_000
# Its inline parsing costs up to about 20 us per markup character (a `[`, `*`, backtick...) plus,
# as each may scan to its block's end, (markup characters) x (block length). Blocks are parsed
# while the sum of markup x (length + 1,000) stays within this budget (100,000 characters of prose
# or tables use under half of it; a text of nothing but `[` gets about half a second, once) and
# none over MARKDOWN_MAX_BLOCK_CHARS; the others show as plain text.
MARKDOWN_INLINE_BUDGET = 20_000_000
MARKDOWN_MAX_BLOCK_CHARS = 10_000
_MARKUP_CHARACTERS = "[]*_`!<\\~|&"
WORD_BREAK_EVERY = 64
RENDER_CACHE_SECONDS = 7 * 24 * 3600
PLAIN_TEXT_NOTICE = (
    f"Shown as plain text: it is too long to format (over {MARKDOWN_MAX_CHARS:,} characters"
    f" or {MARKDOWN_MAX_LINES:,} lines)."
)


def _plain_html(text: str) -> str:
    """Escaped text with its line breaks, as markdown shows text without markup (breaks=True)."""
    return html_lib.escape(text, quote=False).replace("\n", "<br>\n")


def _bound_inline_blocks(state: StateCore) -> None:
    # Runs before the inline parser: a block it must not parse is handed to it empty, and its
    # text is put back afterwards by _plain_inline_blocks.
    budget = MARKDOWN_INLINE_BUDGET
    for token in state.tokens:
        if token.type != "inline":
            continue
        content = token.content
        cost = (len(content) + 1_000) * sum(map(content.count, _MARKUP_CHARACTERS))
        if len(content) > MARKDOWN_MAX_BLOCK_CHARS or cost > budget:
            token.meta["plain"] = content
            token.content = ""
        else:
            budget -= cost


def _plain_inline_blocks(state: StateCore) -> None:
    for token in state.tokens:
        if token.type == "inline" and "plain" in token.meta:
            token.content = token.meta.pop("plain")
            token.children = []
            for number, line in enumerate(token.content.split("\n")):
                if number:
                    token.children.append(Token("softbreak", "br", 0))  # <br> (breaks=True)
                token.children.append(Token("text", "", 0, content=line))


_markdown.core.ruler.before("inline", "bound_inline_blocks", _bound_inline_blocks)
_markdown.core.ruler.after("inline", "plain_inline_blocks", _plain_inline_blocks)

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a", "wbr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "p": {"class"},
    "a": {"href", "title"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"class"},
    "td": {"class"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"

# Fenced code gets `class="language-<info>"`; anything else in a class is dropped.
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
# Table alignment comes out of markdown-it as a style attribute, which the CSP would block (no
# inline styles) and the sanitizer drops, so it is turned into one of these classes instead.
_ALIGN_CLASSES = {f"align-{side}" for side in ("left", "center", "right")}
_ALIGN_STYLE = re.compile(r"text-align:(left|center|right)")
_NOTICE_CLASS = "render-notice"


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "class":
        if tag == "code":
            return value if _LANGUAGE_CLASS.fullmatch(value) else None
        if tag == "p":
            return value if value == _NOTICE_CLASS else None
        return value if value in _ALIGN_CLASSES else None
    if name == "href":
        # Absolute http(s)/mailto only: relative links would point into this application.
        scheme = urlsplit(value.strip()).scheme.lower()
        return value if scheme in ALLOWED_URL_SCHEMES else None
    return value


def markdown_render(text: str) -> str:
    """Render untrusted markdown (an LLM response, a prompt) to HTML that is safe to embed.

    Raw HTML in the text is shown as text; links keep only absolute http, https and mailto URLs,
    open in a new tab and carry rel="noopener noreferrer nofollow"; no images, styles, scripts or
    event handlers survive. Cached by content hash; bounded work (see the module's docstring).
    """
    if not text:
        return ""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    key = f"markdown:{RENDERER_VERSION}:{digest}"
    html = cache.get(key)
    if html is None:
        html = _render(text)
        cache.set(key, html, RENDER_CACHE_SECONDS)
    return html


def _render(text: str) -> str:
    if len(text) > MARKDOWN_MAX_CHARS or text.count("\n") > MARKDOWN_MAX_LINES:
        body = f'<p class="{_NOTICE_CLASS}">{PLAIN_TEXT_NOTICE}</p>\n<p>{_plain_html(text)}</p>\n'
        return words_break(sanitize_html(body))
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrGet("style")
            if style is not None:
                del token.attrs["style"]
                match = _ALIGN_STYLE.fullmatch(str(style))
                if match:
                    token.attrSet("class", f"align-{match.group(1)}")
    return words_break(sanitize_html(_markdown.renderer.render(tokens, _markdown.options, {})))


def sanitize_html(html: str) -> str:
    """Reduce HTML to the allow-list that markdown_render produces (the second layer)."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel=LINK_REL,
        # A link in a response must not navigate away from a half-filled label form.
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


@dataclass(frozen=True, slots=True)
class RenderedTurn:
    """One message of a conversation as the page shows it."""

    role: str  # system, user, assistant or tool (checked at import)
    label: str  # what the page writes: "User", "Tool (get_weather)"
    html: str  # the content as sanitised HTML (markdown_render); "" when blank
    empty: bool  # no visible content


def turns_render(messages: Sequence[Message]) -> list[RenderedTurn]:
    """The messages of a prompt or a response as turns: role, label and sanitised content."""
    turns = []
    for message in messages:
        role, content = message["role"], message["content"]
        label = role_label(role)
        name = message.get("name")
        if isinstance(name, str) and name.strip():
            label = f"{label} ({name.strip()})"
        empty = not content.strip()
        turns.append(RenderedTurn(role, label, "" if empty else markdown_render(content), empty))
    return turns


# A tag of the sanitizer's output (it writes attribute values in double quotes, which may hold ">").
_TAG = re.compile(r'<(/?)([A-Za-z0-9]+)(?:[^>"]|"[^"]*")*>')
# A word goes on across these elements' tags (`aaa<em>aaa</em>aaa` is one word); others end it.
_INLINE_TAGS = frozenset({"a", "strong", "em", "s", "del", "code"})
_SPACES = re.compile(r"(\s+)")
# A character reference or a grapheme cluster: a break never splits either (a <wbr> between a
# letter and its combining mark, or inside a conjunct or an emoji sequence, would show).
_UNIT = regex.compile(r"&#?[A-Za-z0-9]+;|\X")


def words_break(html: str) -> str:
    """Put a `<wbr>` into every WORD_BREAK_EVERY characters without whitespace in the text of
    sanitised HTML (tags and attributes untouched), so that no word is long enough to make the
    browser's line breaking slow. `<wbr>` is invisible and is not copied with the text."""
    out: list[str] = []
    run = 0  # characters since the last break opportunity
    position = 0
    for match in _TAG.finditer(html):
        run = _text_break(html[position : match.start()], run, out)
        out.append(match.group(0))
        if match.group(2).lower() not in _INLINE_TAGS:
            run = 0
        position = match.end()
    _text_break(html[position:], run, out)
    return "".join(out)


def _text_break(text: str, run: int, out: list[str]) -> int:
    for piece in _SPACES.split(text):
        if not piece:
            continue
        if piece[0].isspace():
            out.append(piece)
            run = 0
        elif run + len(piece) <= WORD_BREAK_EVERY:
            out.append(piece)
            run += len(piece)
        else:
            run = _word_break(piece, run, out)
    return run


def _word_break(word: str, run: int, out: list[str]) -> int:
    if word.isascii() and "&" not in word:  # every character is a unit: slice, much faster
        first = WORD_BREAK_EVERY - run
        out.append(word[:first])
        for start in range(first, len(word), WORD_BREAK_EVERY):
            out.append("<wbr>" + word[start : start + WORD_BREAK_EVERY])
        return (len(word) - first - 1) % WORD_BREAK_EVERY + 1  # the last piece's length
    for unit in _UNIT.findall(word):
        if run >= WORD_BREAK_EVERY:
            out.append("<wbr>")
            run = 0
        out.append(unit)
        run += 1
    return run
