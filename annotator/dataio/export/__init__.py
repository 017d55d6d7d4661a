"""Streaming exports: JSON Lines, one comparison per line, memory flat in the project's size.

Two formats:

- `full`: the native import format with every label; `export -> import` into a new project and
  export again gives the same bytes (platform labels come back as imported ones, by annotator
  name).
- `trl`: `prompt`, `chosen`, `rejected` plus `external_id`, `label_source`, `strength`,
  `agreement` for every comparison that has a final label (annotator.final_labels).

With `with_confidence`, each line also has `posterior` (the Dawid-Skene posterior over A / B /
tie from the project's cached analytics, null for a comparison without human labels) and
`label_confidence` (trl: the posterior of the exported preference, or the primary judge's own
probability for an LM pair; full: the largest posterior). `min_confidence` keeps only lines whose
label_confidence is known and at least that.

This module picks the path that writes a format on this database:

- python_full: `full` written by Python (SQLite); the reference bytes;
- postgres_full: `full` on PostgreSQL, whose JSON the database writes (pg_json);
- trl: `trl`, one query per batch on PostgreSQL, three elsewhere.

All of them read keyset batches (batches.py); outside a transaction, threads read them in one
snapshot of the export's start (snapshot.py) while the caller sends what is ready.
"""

from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from annotator.dataio.export import postgres_full, python_full, trl
from annotator.dataio.export.confidence import ExportConfidence
from annotator.models import Comparison, Project

EXPORT_FORMATS = ("full", "trl")


def dataset_export_lines(
    *,
    project: Project,
    format: str = "full",
    batch_size: int | None = None,
    comparisons: QuerySet | None = None,
    with_confidence: bool = False,
    min_confidence: float | None = None,
) -> Iterator[bytes]:
    """Yield the export of `project` as JSON Lines, in newline-terminated chunks of bytes.

    `comparisons` narrows the export to a filtered queryset of the project's comparisons (the
    REST API's filters); it is read in the same keyset batches.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}"
        )
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    if comparisons is None:
        comparisons = Comparison.objects.all()
    comparisons = comparisons.filter(project=project)
    confidence = ExportConfidence.load(project, with_confidence, min_confidence)
    if format == "trl":
        return trl.trl_lines(project, batch_size, comparisons, confidence)
    if database_writes_json():
        return postgres_full.full_lines(batch_size, comparisons, confidence)
    return python_full.full_lines(project, batch_size, comparisons, confidence)


def database_writes_json() -> bool:
    """PostgreSQL writes the `full` export's JSON itself (pg_json); elsewhere Python does."""
    return connection.vendor == "postgresql"
