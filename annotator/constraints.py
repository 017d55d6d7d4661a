"""Check-constraint conditions shared by the apps' models."""

from collections.abc import Iterable

from django.db import models
from django.db.models import Q


def choices_in(
    field: str, choices: type[models.TextChoices] | Iterable[str], *, nullable: bool = False
) -> Q:
    """`field` holds one of `choices` (a TextChoices class or some of its values), or NULL
    where `nullable`."""
    values = choices.values if isinstance(choices, type) else [str(c) for c in choices]
    condition = Q(**{f"{field}__in": values})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return condition


def probability(field: str) -> Q:
    """`field` is NULL or within [0, 1]."""
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 0.0, f"{field}__lte": 1.0})
