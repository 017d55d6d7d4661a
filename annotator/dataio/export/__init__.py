"""Streaming exports, memory flat in the project's size.

Formats:

- `full`: JSON Lines, the native import format with every label; `export -> import` into a new
  project and export again gives the same bytes (platform labels come back as imported ones, by
  annotator name).
- `trl`: JSON Lines of `prompt`, `chosen`, `rejected` plus `external_id`, `label_source`,
  `strength`, `agreement` (and `margin`) for every comparison that the label source decides
  (pairs.py), standard or conversational (trl.py).
- `parquet`: the same pairs with their provenance as one Parquet file, written a row group at a
  time as the batches come (parquet.py).
- `hf`: a Hugging Face dataset: Parquet shards under `data/` and a README.md dataset card with
  its YAML header (hf.py); a directory from the command, a zip stream from the API.
- `multipref`: MultiPref's rows, a comparison with its human annotations (multipref.py).

With `with_confidence`, each `full` / pair row also has `posterior` (the Dawid-Skene posterior
over A / B / tie from the project's cached analytics, null for a comparison without human labels)
and `label_confidence` (pairs: the posterior of the exported preference, or the primary judge's
own probability for an LM pair; full: the largest posterior). `min_confidence` keeps only rows
whose label_confidence is known and at least that; `min_agreement` keeps only comparisons whose
human votes agree at least that much (agreement.py).

This module picks the path that writes a format on this database:

- python_full: `full` written by Python (SQLite); the reference bytes;
- postgres_full: `full` on PostgreSQL, whose JSON the database writes (pg_json);
- pairs: the pair formats, one query per batch on PostgreSQL, three elsewhere.

All of them read keyset batches (batches.py); outside a transaction, threads read them in one
snapshot of the export's start (snapshot.py) while the caller sends what is ready.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from annotator.dataio.export import multipref, postgres_full, python_full, trl
from annotator.dataio.export.agreement import comparisons_min_agreement
from annotator.dataio.export.confidence import ExportConfidence
from annotator.dataio.export.pairs import conversational_export
from annotator.models import Comparison, Project

if TYPE_CHECKING:
    from annotator.dataio.export import hf

EXPORT_FORMATS = ("full", "trl", "parquet", "hf", "multipref")
# The formats written as JSON Lines (the others are binary: Parquet, a zip of the HF dataset).
LINE_FORMATS = ("full", "trl", "multipref")
# (media type, file extension) of each format as one download.
EXPORT_MEDIA = {
    "full": ("application/x-ndjson", "jsonl"),
    "trl": ("application/x-ndjson", "jsonl"),
    "multipref": ("application/x-ndjson", "jsonl"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "hf": ("application/zip", "zip"),
}
_PAIR_FORMATS = ("trl", "parquet", "hf")
# Which options apply to which formats; giving one to another format is an error.
_APPLIES = {
    "source": _PAIR_FORMATS,
    "margin": _PAIR_FORMATS,
    "conversational": _PAIR_FORMATS,
    "with_confidence": ("full", *_PAIR_FORMATS),
    "min_confidence": ("full", *_PAIR_FORMATS),
    "row_group_size": ("parquet", "hf"),
    "shard_size": ("hf",),
    "license": ("hf",),
}


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes besides its format; None or False: not given (the default)."""

    source: str | None = None  # final (default) | human | lm: which label decides (pairs.py)
    margin: bool = False
    conversational: str | None = None  # auto (default) | always | never
    min_agreement: float | None = None
    with_confidence: bool = False
    min_confidence: float | None = None
    row_group_size: int | None = None  # rows per Parquet row group
    shard_size: int | None = None  # comparisons per `hf` shard
    license: str | None = None  # the `hf` card's licence (default: the project's)


EXPORT_OPTION_NAMES = tuple(f.name for f in fields(ExportOptions))


def export_options_problems(format: str, options: ExportOptions) -> list[tuple[str, str]]:
    """(option, problem) for each option that is out of range or does not apply to `format`
    (a known one)."""
    problems = []
    for name, formats in _APPLIES.items():
        if getattr(options, name) not in (None, False) and format not in formats:
            problems.append((name, f"applies to the {', '.join(formats)} exports, not to {format}"))
    for name in ("min_agreement", "min_confidence"):
        value = getattr(options, name)
        if value is not None and not 0.0 <= value <= 1.0:
            problems.append((name, f"must be between 0 and 1, not {value}"))
    for name in ("row_group_size", "shard_size"):
        value = getattr(options, name)
        if value is not None and value < 1:
            problems.append((name, f"must be at least 1, not {value}"))
    return problems


def export_options_check(
    format: str, options: ExportOptions, spell: Callable[[str], str] = str
) -> None:
    """ValueError naming the first option that is out of range or does not apply to `format`,
    as `spell` writes an option's name (the command: `--min-agreement`)."""
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {format!r}; expected one of {', '.join(EXPORT_FORMATS)}"
        )
    for name, problem in export_options_problems(format, options):
        raise ValueError(f"{spell(name)} {problem}")


def dataset_export_chunks(
    *,
    project: Project,
    format: str = "full",
    options: ExportOptions = ExportOptions(),
    comparisons: QuerySet | None = None,
    batch_size: int | None = None,
) -> Iterator[bytes]:
    """The export of `project` as a stream of bytes: JSON Lines in newline-terminated chunks,
    a Parquet file, or (`hf`) a zip of the dataset directory.

    `comparisons` narrows the export to a filtered queryset of the project's comparisons (the
    REST API's filters); it is read in the same keyset batches. Options are checked before the
    first byte (ValueError).
    """
    export_options_check(format, options)
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    comparisons = _comparisons(project, comparisons, options)
    confidence = ExportConfidence.load(project, options.with_confidence, options.min_confidence)
    if format == "full":
        if database_writes_json():
            return postgres_full.full_lines(batch_size, comparisons, confidence)
        return python_full.full_lines(project, batch_size, comparisons, confidence)
    if format == "multipref":
        return multipref.multipref_lines(project, batch_size, comparisons)
    pairs = _pair_options(comparisons, options)
    if format == "trl":
        return trl.trl_lines(project, batch_size, comparisons, confidence, **pairs)
    # pyarrow (~50 MB, 0.2 s to import) is loaded by the exports that write Parquet only.
    from annotator.dataio.export import hf, parquet

    if format == "parquet":
        rows = options.row_group_size
        return parquet.parquet_chunks(project, batch_size, comparisons, confidence, rows, **pairs)
    return hf.hf_zip_chunks(
        hf.HfExport(project, batch_size, comparisons, confidence, options, pairs)
    )


def dataset_export_directory(
    *,
    project: Project,
    path: Path,
    options: ExportOptions = ExportOptions(),
    comparisons: QuerySet | None = None,
    batch_size: int | None = None,
) -> "hf.HfSummary":
    """Write the `hf` export of `project` into the directory `path` (made beside it and renamed
    when complete); what it wrote."""
    from annotator.dataio.export import hf

    export_options_check("hf", options)
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    comparisons = _comparisons(project, comparisons, options)
    confidence = ExportConfidence.load(project, options.with_confidence, options.min_confidence)
    pairs = _pair_options(comparisons, options)
    export = hf.HfExport(project, batch_size, comparisons, confidence, options, pairs)
    return hf.hf_directory_write(export, path)


def dataset_export_lines(
    *,
    project: Project,
    format: str = "full",
    batch_size: int | None = None,
    comparisons: QuerySet | None = None,
    with_confidence: bool = False,
    min_confidence: float | None = None,
    options: ExportOptions = ExportOptions(),
) -> Iterator[bytes]:
    """Yield the export of `project` in one of the LINE_FORMATS, in newline-terminated chunks."""
    if format in EXPORT_FORMATS and format not in LINE_FORMATS:
        raise ValueError(f"the {format} export is not JSON Lines: use dataset_export_chunks")
    options = replace(options, with_confidence=with_confidence or options.with_confidence)
    if min_confidence is not None:
        options = replace(options, min_confidence=min_confidence)
    return dataset_export_chunks(
        project=project,
        format=format,
        options=options,
        comparisons=comparisons,
        batch_size=batch_size,
    )


def _comparisons(project: Project, comparisons: QuerySet | None, options: ExportOptions):
    if comparisons is None:
        comparisons = Comparison.objects.all()
    comparisons = comparisons.filter(project=project)
    if options.min_agreement is not None:
        comparisons = comparisons_min_agreement(comparisons, options.min_agreement)
    return comparisons


def _pair_options(comparisons: QuerySet, options: ExportOptions) -> dict:
    """The pair formats' keyword arguments (the defaults filled in; `auto` decided)."""
    return {
        "source": options.source or "final",
        "margin": options.margin,
        "conversational": conversational_export(comparisons, options.conversational or "auto"),
    }


def database_writes_json() -> bool:
    """PostgreSQL writes the `full` export's JSON itself (pg_json); elsewhere Python does."""
    return connection.vendor == "postgresql"
