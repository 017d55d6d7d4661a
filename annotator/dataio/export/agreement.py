"""The exports' `min_agreement` filter: comparisons whose human votes agree at least so much.

A comparison's agreement is the share of its human votes that went to their most common overall
choice, rounded to 4 places as the exports write it (pairs.py); comparisons without human votes
have none and are left out. It is a filter on the comparisons, so every format and both the
command and the REST API apply the same one.
"""

from django.db.models import Count, F, FloatField, OuterRef, QuerySet, Subquery, Value

from annotator.models import HumanLabel

# The exported agreement is rounded to 4 places: 2/3 is written 0.6667 and kept at 0.6667.
_ROUNDING = 0.00005


def comparisons_min_agreement(comparisons: QuerySet, minimum: float) -> QuerySet:
    """`comparisons` whose human agreement is known and at least `minimum` (0 to 1)."""
    if not 0.0 <= minimum <= 1.0:
        raise ValueError(f"min_agreement must be between 0 and 1, not {minimum}")
    votes = HumanLabel.objects.filter(comparison=OuterRef("pk")).order_by()
    top = Subquery(
        votes.values("overall_choice").annotate(n=Count("*")).order_by("-n").values("n")[:1]
    )
    total = Subquery(votes.values("comparison").annotate(n=Count("*")).values("n"))
    return comparisons.alias(export_votes=total, export_votes_top=top).filter(
        export_votes__gt=0,
        export_votes_top__gte=F("export_votes") * Value(minimum - _ROUNDING, FloatField()),
    )
