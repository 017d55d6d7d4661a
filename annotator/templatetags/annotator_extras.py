"""Template helpers for the annotator pages: `{% load annotator_extras %}`."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotator.conversations import messages_blank
from annotator.rendering import markdown_render, turns_render

register = template.Library()


@register.filter(name="markdown")
def markdown(text) -> SafeString:
    """`{{ comparison.response_a|markdown }}`: untrusted markdown as sanitised HTML."""
    if text is None:
        return mark_safe("")
    # Safe to mark: markdown_render escapes raw HTML and sanitises its own output.
    return mark_safe(markdown_render(str(text)))


@register.inclusion_tag("annotator/_conversation.html")
def conversation(text: str, messages=None, response: bool = False) -> dict:
    """`{% conversation comparison.prompt comparison.prompt_messages %}`: a prompt or response,
    as turns with their roles when it was given as messages, else as markdown; with
    `response=True` an empty or whitespace-only response shows an explicit marker (the
    annotator must see that nothing was said, not a blank panel)."""
    if response:
        empty = messages_blank(messages) if messages is not None else not (text or "").strip()
        if empty:
            return {"empty": True}
    if messages is not None:
        return {"turns": turns_render(messages)}
    return {"text": text}


@register.filter
def duration(value) -> str:
    """A timedelta as words: `{{ cooloff|duration }}` -> "15 minutes", "1 hour 30 minutes"."""
    if value is None:
        return ""
    minutes = max(0, round(value.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)
