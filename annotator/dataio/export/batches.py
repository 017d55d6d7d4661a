"""Keyset batches of the exported comparisons and their labels, as the driver returns rows.

Comparisons are read in batches (id > last, ordered by id) and their labels with one query per
batch and label kind, so a million-row export never holds more than a few batches.
"""

from collections.abc import Iterator

from django.db import connection
from django.db.models import QuerySet
from orjson import Fragment
from psycopg.adapt import Loader

from annotator.models import Comparison, Project


def rows_fetch(queryset: QuerySet, json_fragments: bool = True) -> list[tuple]:
    """Rows as the driver returns them, skipping the ORM's per-value converters.

    On PostgreSQL JSON columns come back as orjson.Fragment (their text, embedded as it is), or
    as their text with `json_fragments=False` (as on SQLite); what the ORM would convert
    (timestamps, judgements) the export's queries have the database write as text. This is what
    makes exports fast.
    """
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if json_fragments and connection.vendor == "postgresql":
            for name in ("json", "jsonb"):
                cursor.cursor.adapters.register_loader(name, _FragmentLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


class _FragmentLoader(Loader):
    """A JSON column's text as an orjson.Fragment: written out as it is, never parsed."""

    def load(self, data) -> Fragment:
        return Fragment(bytes(data))


def comparison_batches(
    comparisons: QuerySet,
    batch_size: int,
    select=lambda rows: rows.values_list("id"),
    json_fragments: bool = True,
) -> Iterator[list[tuple]]:
    """Keyset batches of `select(comparisons)`, whose first column is the id (rows_fetch)."""
    last = 0
    while True:
        rows = select(comparisons.filter(id__gt=last).order_by("id"))[:batch_size]
        rows = rows_fetch(rows, json_fragments)
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def labels_in_batch(model, project: Project, rows: list[tuple]) -> QuerySet:
    """Labels of the batch's comparisons: an id range, restricted to the project's own ids.

    The range on both sides lets PostgreSQL merge two index range scans; a plain join on the
    project would scan every comparison of the project for each batch.
    """
    low, high = rows[0][0], rows[-1][0]
    ours = Comparison.objects.filter(project=project, id__gte=low, id__lte=high).values("id")
    return model.objects.filter(
        comparison_id__gte=low, comparison_id__lte=high, comparison_id__in=ours
    ).order_by("comparison_id", "id")
