"""Template helpers for the annotator pages: `{% load annotator_extras %}`."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotator.rendering import markdown_render

register = template.Library()


@register.filter(name="markdown")
def markdown(text) -> SafeString:
    """`{{ comparison.response_a|markdown }}`: untrusted markdown as sanitised HTML."""
    if text is None:
        return mark_safe("")
    # Safe to mark: markdown_render escapes raw HTML and sanitises its own output.
    return mark_safe(markdown_render(str(text)))


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
