"""Safe HTML from the markdown that LLMs write.

Responses and prompts are untrusted text shown to annotators inside a logged-in page, so rendering
has two independent layers: markdown-it with raw HTML disabled (HTML in a response shows as text,
which is also what an annotator should see), then nh3 with an explicit allow-list, so a parser bug
or a future option change still cannot let a script, an event handler or a `javascript:` URL
through.
"""

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

from annotator.conversations import Message, role_label

# Images are off: a remote image would load from the annotator's browser (tracking, leaking which
# annotator saw what). `![alt](url)` then renders as "!" followed by a plain link.
# `breaks`: LLM output uses single newlines as line breaks (poems, addresses, step lists).
_markdown = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    .enable(["table", "strikethrough"])
    .disable("image")
)

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
    "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
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


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    if name == "class":
        if tag == "code":
            return value if _LANGUAGE_CLASS.fullmatch(value) else None
        return value if value in _ALIGN_CLASSES else None
    if name == "href":
        # Absolute http(s)/mailto only: relative links would point into this application.
        scheme = urlsplit(value.strip()).scheme.lower()
        return value if scheme in ALLOWED_URL_SCHEMES else None
    return value


# The same comparison goes to several annotators at about the same time (the queue finishes
# items first), so a small per-process cache of rendered texts saves most of the work.
@functools.lru_cache(maxsize=512)
def markdown_render(text: str) -> str:
    """Render untrusted markdown (an LLM response, a prompt) to HTML that is safe to embed.

    Raw HTML in the text is shown as text; links keep only absolute http, https and mailto URLs,
    open in a new tab and carry rel="noopener noreferrer nofollow"; no images, styles, scripts or
    event handlers survive.
    """
    if not text:
        return ""
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            style = token.attrGet("style")
            if style is not None:
                del token.attrs["style"]
                match = _ALIGN_STYLE.fullmatch(str(style))
                if match:
                    token.attrSet("class", f"align-{match.group(1)}")
    return sanitize_html(_markdown.renderer.render(tokens, _markdown.options, {}))


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
