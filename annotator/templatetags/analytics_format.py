"""Formatting of the analytics report's figures: `{% load analytics_format %}`."""

from django import template

register = template.Library()

DASH = "\N{EM DASH}"
TO = "\N{EN DASH}"


@register.filter
def estimate(value, digits: int = 3) -> str:
    """`{"value": v, "ci": [lo, hi]}` as "v (lo to hi)" with an en dash; a dash when undefined."""
    if not value or value.get("value") is None:
        return DASH
    text = f"{value['value']:.{digits}f}"
    ci = value.get("ci")
    if ci:
        text += f" ({ci[0]:.{digits}f}{TO}{ci[1]:.{digits}f})"
    return text


@register.filter
def percent(value) -> str:
    """A share in [0, 1] as a whole percentage; a dash for None."""
    if value is None:
        return DASH
    return f"{100 * value:.0f}%"


@register.filter
def interval(values, digits: int = 0) -> str:
    """`[lo, hi]` as "lo to hi" with an en dash; a dash for None."""
    if not values:
        return DASH
    return f"{values[0]:.{digits}f}{TO}{values[1]:.{digits}f}"


@register.filter
def get(mapping, key):
    """`{{ report.leaderboard|get:"final" }}`: a dict value by a key held in a variable."""
    if not mapping:
        return None
    return mapping.get(key)
