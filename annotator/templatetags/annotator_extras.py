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
