"""The import service: one all-or-nothing transaction, streamed in batches.

Used by the `import_comparisons` command and by the REST API. Memory is bounded by the batch size,
not by the file: records are validated and written batch by batch inside one transaction, and the
transaction is rolled back at the end if any line was bad, so a failed import writes nothing.
Duplicates across batches are found in the database: the project row is locked for the import,
so any comparison of the project with an id above the pre-import maximum was written by this import.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, IntegerField, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotator.dataio.bulk import ids_reserve, rows_insert
from annotator.dataio.formats import Parsed, ReadOptions, read_items
from annotator.dataio.readahead import read_ahead
from annotator.dataio.records import ComparisonRecord, LineError, record_from_native
from annotator.labels import ASPECTS, LabelSource
from annotator.models import Comparison, HumanLabel, Lease, LMLabel, Project
from annotator.services import project_labels_changed

logger = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    created: int = 0
    skipped: int = 0
    updated: int = 0
    human_labels: int = 0
    lm_labels: int = 0
    format: str = ""  # the format read (what `auto` chose)
    notes: dict[str, int] = field(default_factory=dict)  # accepted but changed, e.g. nulls

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "skipped": self.skipped,
            "updated": self.updated,
            "human_labels": self.human_labels,
            "lm_labels": self.lm_labels,
            "format": self.format,
            "notes": self.notes,
        }


@dataclass
class ImportFailed(Exception):
    """The import wrote nothing. `errors` lists the first problems; `error_count` counts all."""

    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    def __str__(self) -> str:
        lines = [str(e) for e in self.errors]
        hidden = self.error_count - len(self.errors)
        if hidden > 0:
            lines.append(f"... and {hidden} more errors")
        lines.append(f"import failed with {self.error_count} errors; nothing was written")
        return "\n".join(lines)


class _Rollback(Exception):
    pass


HUMAN_COLUMNS = (
    "comparison_id",
    "annotator_name",
    "annotator_type",
    "overall_choice",
    "overall_strength",
    *(f"{a}_{part}" for a in ASPECTS for part in ("choice", "strength")),
    "confidence",
    "reasons",
    "rationale",
    "time_spent_s",
    "shown_order",
    "guidelines_version",
    "source",
    "created_at",
)
LM_COLUMNS = (
    "comparison_id",
    "judge_name",
    "judge_version",
    "choice",
    "strength",
    "p_a",
    "p_a_ab",
    "p_a_ba",
    "position_consistent",
    "rationale",
    "raw_output",
    "truncated",
    "source",
    "created_at",
)
COMPARISON_COLUMNS = (
    "id",
    "project_id",
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "prompt_messages",
    "response_a_messages",
    "response_b_messages",
    "model_a",
    "model_b",
    "metadata",
    "content_hash",
    "route",
    "is_gold",
    "gold_choice",
    "labels_done",
    "slots_taken",
    "created_at",
)


class _ErrorLog:
    def __init__(self, limit: int):
        self.limit = limit
        self.listed: list[LineError] = []
        self.count = 0

    def add(self, error: LineError) -> None:
        self.count += 1
        if len(self.listed) < self.limit:
            self.listed.append(error)


def comparisons_import(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    fmt: str = "native",
    update: bool = False,
    options: ReadOptions | None = None,
    path: Path | None = None,
) -> ImportSummary:
    """Import comparisons (and their labels) from `stream` into `project`, all or nothing.

    Existing comparisons (same external_id) are skipped; with different content they are an error
    unless `update`, which rewrites them and replaces their imported labels of the same annotator
    or judge version. Raises ImportFailed listing every bad line; then nothing is written.
    """
    options = options or ReadOptions()
    items = read_items(stream, fmt=fmt, source=source_name, options=options, path=path)
    errors = _ErrorLog(settings.IMPORT_MAX_ERRORS_LISTED)
    summary = ImportSummary()
    try:
        with transaction.atomic():
            locked = Project.objects.select_for_update().get(pk=project.pk)
            watermark = (
                Comparison.objects.filter(project=locked).aggregate(top=Max("id"))["top"] or 0
            )
            batches = read_ahead(
                _validated_batches(items, settings.IMPORT_BATCH_SIZE), name="import-reader"
            )
            writer = _BatchWriter(locked, watermark, update, summary, errors)
            for batch, problems in batches:
                for problem in problems:
                    errors.add(problem)
                writer.write(batch)
            if errors.count:
                raise _Rollback
            if summary.created or summary.updated:
                project_labels_changed(
                    project_id=locked.pk,
                    new_labels=summary.human_labels + summary.lm_labels,
                    origin="import",
                )
            if summary.created >= ANALYZE_AFTER_ROWS:
                _tables_analyze()
    except _Rollback:
        raise ImportFailed(errors.listed, errors.count) from None
    summary.format, summary.notes = options.report.format, dict(options.report.counts)
    logger.info("import into %s from %s: %s", project.slug, source_name, summary.as_dict())
    return summary


Numbered = tuple[str, int | str, ComparisonRecord]  # (source, line, record)
Batch = tuple[list[Numbered], list[LineError]]


# A batch also ends once its texts hold this many characters: a few batches are in memory at once
# (read ahead, and the one being written), and records near IMPORT_MAX_TEXT_CHARS are large.
BATCH_MAX_CHARS = 16 * 1024 * 1024


def _validated_batches(items: Iterable[Parsed], size: int) -> Iterator[Batch]:
    """Validate items into batches of records, each with the line errors found in it."""
    batch: list[Numbered] = []
    problems: list[LineError] = []
    chars = 0
    for item in items:
        found = item.errors
        record = None
        if not found:
            record, found = record_from_native(item.obj)
        for problem in found:
            problems.append(LineError(item.source, item.line, problem.field, problem.problem))
        if record is not None:
            batch.append((item.source, item.line, record))
            chars += len(record.prompt) + len(record.response_a) + len(record.response_b)
        if len(batch) >= size or chars >= BATCH_MAX_CHARS:
            yield batch, problems
            batch, problems, chars = [], [], 0
    if batch or problems:
        yield batch, problems


@dataclass
class _BatchWriter:
    """Writes the validated batches of one import into its (locked) project: counts go to
    `summary`, problems to `errors`."""

    project: Project
    watermark: int  # the largest comparison id of the project before the import
    update: bool
    summary: ImportSummary
    errors: _ErrorLog

    def write(self, batch: list[Numbered]) -> None:
        new, changed = self._new_and_changed(self._first_of_each(batch))
        # Rows are written even after an error (the transaction rolls back at the end), so that
        # duplicates later in a bad file are still found and listed.
        now = timezone.now()
        ids = self._comparisons_insert(new, now)
        self.summary.created += len(new)
        labelled = list(zip(ids, new, strict=True))
        for pk, record in changed:
            _update_comparison(self.project, pk, record)
            labelled.append((pk, record))
        self.summary.updated += len(changed)
        self._labels_insert(labelled, [pk for pk, _ in changed], now)

    def _first_of_each(self, batch: list[Numbered]) -> list[Numbered]:
        """The batch without repeated external ids; each repeat is an error."""
        first_line: dict[str, int | str] = {}
        unique = []
        for source, line, record in batch:
            if record.external_id in first_line:
                self._error(
                    source,
                    line,
                    f"{record.external_id!r} already appears on line "
                    f"{first_line[record.external_id]}",
                )
                continue
            first_line[record.external_id] = line
            unique.append((source, line, record))
        return unique

    def _new_and_changed(
        self, unique: list[Numbered]
    ) -> tuple[list[ComparisonRecord], list[tuple[int, ComparisonRecord]]]:
        """(records to create, (id, record) to rewrite): the project's existing comparisons are
        skipped when unchanged, rewritten with `update`, an error otherwise."""
        existing = _existing(self.project, [record.external_id for _, _, record in unique])
        new, changed = [], []
        for source, line, record in unique:
            found = existing.get(record.external_id)
            if found is None:
                new.append(record)
            elif found[0] > self.watermark:
                self._error(source, line, f"{record.external_id!r} appears earlier in the file")
            elif self.update:
                changed.append((found[0], record))
            elif found[1] != record.content_hash:
                self._error(
                    source,
                    line,
                    f"{record.external_id!r} already exists with different content "
                    "(use --update to replace it)",
                )
            else:
                self.summary.skipped += 1
        return new, changed

    def _error(self, source: str, line: int | str, problem: str) -> None:
        self.errors.add(LineError(source, line, "external_id", problem))

    def _comparisons_insert(self, new: list[ComparisonRecord], now) -> list[int]:
        project = self.project
        ids = ids_reserve(Comparison, len(new))
        rows_insert(
            Comparison,
            COMPARISON_COLUMNS,
            (
                (
                    pk,
                    project.pk,
                    r.external_id,
                    r.prompt,
                    r.response_a,
                    r.response_b,
                    r.prompt_messages,
                    r.response_a_messages,
                    r.response_b_messages,
                    r.model_a,
                    r.model_b,
                    r.metadata,
                    r.content_hash,
                    r.route or project.default_route,
                    r.gold is not None,
                    r.gold,
                    len(r.human_labels),
                    len(r.human_labels),
                    now,
                )
                for pk, r in zip(ids, new, strict=True)
            ),
        )
        return ids

    def _labels_insert(
        self, labelled: list[tuple[int, ComparisonRecord]], rewritten: list[int], now
    ) -> None:
        self.summary.human_labels += rows_insert(
            HumanLabel,
            HUMAN_COLUMNS,
            (_human_row(pk, label, now) for pk, r in labelled for label in r.human_labels),
        )
        if rewritten:
            comparisons_recount(ids=rewritten)
        self.summary.lm_labels += rows_insert(
            LMLabel,
            LM_COLUMNS,
            (_lm_row(pk, label, now) for pk, r in labelled for label in r.lm_labels),
        )


# After a bulk load the planner's statistics are stale until autovacuum runs; exports and queues
# that run right after a big import would get bad plans.
ANALYZE_AFTER_ROWS = 10_000


def _tables_analyze() -> None:
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(m._meta.db_table for m in (Comparison, HumanLabel, LMLabel))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _existing(project: Project, external_ids: list[str]) -> dict[str, tuple[int, str]]:
    """external_id -> (id, content_hash) of the project's comparisons among `external_ids`."""
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN placeholders.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, external_id, content_hash FROM {Comparison._meta.db_table} "
                "WHERE project_id = %s AND external_id = ANY(%s)",
                [project.pk, external_ids],
            )
            rows = cursor.fetchall()
    else:
        rows = Comparison.objects.filter(project=project, external_id__in=external_ids).values_list(
            "id", "external_id", "content_hash"
        )
    return {external_id: (pk, digest) for pk, external_id, digest in rows}


def _update_comparison(project: Project, pk: int, record: ComparisonRecord) -> None:
    fields = {
        "prompt": record.prompt,
        "response_a": record.response_a,
        "response_b": record.response_b,
        "prompt_messages": record.prompt_messages,
        "response_a_messages": record.response_a_messages,
        "response_b_messages": record.response_b_messages,
        "model_a": record.model_a,
        "model_b": record.model_b,
        "metadata": record.metadata,
        "content_hash": record.content_hash,
        "is_gold": record.gold is not None,
        "gold_choice": record.gold,
    }
    if record.route:
        fields["route"] = record.route
    Comparison.objects.filter(pk=pk).update(**fields)
    HumanLabel.objects.filter(
        comparison_id=pk,
        source=LabelSource.IMPORTED,
        annotator_name__in=[label.annotator for label in record.human_labels],
    ).delete()
    for label in record.lm_labels:
        LMLabel.objects.filter(
            comparison_id=pk, judge_name=label.judge, judge_version=label.judge_version
        ).delete()


def comparisons_recount(*, ids: list[int]) -> None:
    """Recompute the label counters of these comparisons from their rows (after bulk changes)."""
    labels = (
        HumanLabel.objects.filter(comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Count("*"))
        .values("n")
    )
    open_leases = (
        Lease.objects.filter(comparison=OuterRef("pk"), finished_at__isnull=True)
        .order_by()
        .values("comparison")
        .annotate(n=Count("*"))
        .values("n")
    )
    done = Coalesce(Subquery(labels, output_field=IntegerField()), 0)
    held = Coalesce(Subquery(open_leases, output_field=IntegerField()), 0)
    Comparison.objects.filter(pk__in=ids).update(labels_done=done, slots_taken=done + held)


def _human_row(pk, label, now) -> tuple:
    judgements = label.judgements
    aspect_values = []
    for aspect in ASPECTS:
        judgement = judgements[aspect]
        aspect_values += [judgement.choice, judgement.strength] if judgement else [None, None]
    overall = judgements["overall"]
    return (
        pk,
        label.annotator,
        label.annotator_type,
        overall.choice,
        overall.strength,
        *aspect_values,
        label.confidence,
        label.reasons,
        label.rationale,
        label.time_spent_s,
        label.shown_order,
        label.guidelines_version,
        LabelSource.IMPORTED,
        label.created_at or now,
    )


def _lm_row(pk, label, now) -> tuple:
    return (
        pk,
        label.judge,
        label.judge_version,
        label.judgement.choice,
        label.judgement.strength,
        label.p_a,
        label.p_a_ab,
        label.p_a_ba,
        label.position_consistent,
        label.rationale,
        label.raw_output,
        label.truncated,
        LabelSource.IMPORTED,
        label.created_at or now,
    )
