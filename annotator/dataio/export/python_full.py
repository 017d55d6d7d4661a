"""The `full` export written by Python (SQLite; the reference bytes of the PostgreSQL path).

The database does what it does cheaply (label texts by CASE, ISO timestamps) and each label
becomes a dataclass that orjson writes field by field, in the export's key order.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import make_dataclass

import orjson
from django.db import connection
from django.db.models import Case, CharField, F, Func, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, NullIf
from orjson import Fragment

from annotator.dataio.export.batches import comparison_batches, labels_in_batch, rows_fetch
from annotator.dataio.export.confidence import ExportConfidence, posterior_dict
from annotator.dataio.export.snapshot import read_ahead_in_snapshot
from annotator.labels import ALL_ASPECTS, Choice, Strength, label_format
from annotator.models import HumanLabel, LMLabel, Project


class IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database (no Python parsing)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        template = (
            "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        template = "replace(%(expressions)s, ' ', 'T') || '+00:00'"
        return self.as_sql(compiler, connection, template=template, **extra)


def _judgement(choice: str, strength: str | None = None) -> Case:
    """The label text of a stored judgement (`strength`: a column; none: unknown), written by
    the database; NULL when not asked."""
    return Case(
        *(
            When(
                Q(**{choice: c}) & (Q(**{strength: s}) if strength else Q()),
                then=Value(label_format(c, s)),
            )
            for c in Choice.values
            for s in (Strength.values if strength else [Strength.UNKNOWN])
            if c != Choice.TIE or s == Strength.UNKNOWN
        ),
        default=Value(None),
        output_field=CharField(),
    )


# Columns read per label, in the export's key order; the classes below write them in that order
# (orjson writes a dataclass's fields in order, leaving out `_comparison`).
HUMAN_LABEL_COLUMNS = {
    "annotator": Coalesce(NullIf("annotator_name", Value("")), "annotator__username"),
    "annotator_type": F("annotator_type"),
    **{aspect: _judgement(f"{aspect}_choice", f"{aspect}_strength") for aspect in ALL_ASPECTS},
    "confidence": F("confidence"),
    "reasons": F("reasons"),
    "rationale": F("rationale"),
    "time_spent_s": F("time_spent_s"),
    "shown_order": F("shown_order"),
    "guidelines_version": F("guidelines_version"),
    "source": F("source"),
    "created_at": IsoTimestamp("created_at"),
}
LM_LABEL_COLUMNS = {
    "judge": F("judge_name"),
    "judge_version": F("judge_version"),
    "overall": _judgement("choice", "strength"),
    "p_a": F("p_a"),
    "p_a_ab": F("p_a_ab"),
    "p_a_ba": F("p_a_ba"),
    "position_consistent": F("position_consistent"),
    "rationale": F("rationale"),
    "raw_output": F("raw_output"),
    "truncated": F("truncated"),
    "source": F("source"),
    "created_at": IsoTimestamp("created_at"),
}
_HumanLabelOut = make_dataclass("_HumanLabelOut", ["_comparison", *HUMAN_LABEL_COLUMNS])
_LMLabelOut = make_dataclass("_LMLabelOut", ["_comparison", *LM_LABEL_COLUMNS])
# A comparison's keys before its labels; `gold` is the label text of `gold_choice`.
COMPARISON_COLUMNS = (
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "model_a",
    "model_b",
    "metadata",
    "route",
    "gold",
)
# Read after the row's own columns: where a text was given as messages, the messages go out.
_MESSAGES = {
    1 + COMPARISON_COLUMNS.index(key): f"{key}_messages"
    for key in ("prompt", "response_a", "response_b")
}
_LABELS = ("human_labels", "lm_labels")
_FullOut = make_dataclass("_FullOut", ["_id", *COMPARISON_COLUMNS, *_LABELS])
_FullOutWithConfidence = make_dataclass(
    "_FullOutWithConfidence",
    ["_id", *COMPARISON_COLUMNS, *_LABELS, "posterior", "label_confidence"],
)


def full_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: ExportConfidence | None
) -> Iterator[bytes]:
    dumps, newline, none = orjson.dumps, orjson.OPT_APPEND_NEWLINE, ()
    batches = read_ahead_in_snapshot(
        (rows, _labels(project, rows))
        for rows in comparison_batches(comparisons, batch_size, _comparison_select)
    )
    for rows, (humans, lms) in batches:
        rows = _portable(_with_messages(rows), json=[1 + COMPARISON_COLUMNS.index("metadata")])
        if confidence is None:
            yield b"".join(
                [
                    dumps(
                        _FullOut(*row, humans.get(row[0], none), lms.get(row[0], none)),
                        option=newline,
                    )
                    for row in rows
                ]
            )
            continue
        out = _lines_with_confidence(rows, humans, lms, confidence)
        if out:
            yield b"".join(out)


def _lines_with_confidence(
    rows: list[tuple], humans: dict, lms: dict, confidence: ExportConfidence
) -> list[bytes]:
    """The lines of a batch with `posterior` and `label_confidence` (the largest posterior),
    those that `confidence` keeps."""
    dumps, newline, none = orjson.dumps, orjson.OPT_APPEND_NEWLINE, ()
    out = []
    posteriors = confidence.batch(rows)
    for row in rows:
        posterior = posteriors.get(row[0])
        value = max(posterior) if posterior else None
        if confidence.keeps(value):
            record = _FullOutWithConfidence(
                *row,
                humans.get(row[0], none),
                lms.get(row[0], none),
                posterior_dict(posterior),
                value,
            )
            out.append(dumps(record, option=newline))
    return out


def _comparison_select(comparisons: QuerySet) -> QuerySet:
    return comparisons.annotate(export_gold=_judgement("gold_choice")).values_list(
        "id", *COMPARISON_COLUMNS[:-1], "export_gold", *_MESSAGES.values()
    )


def _with_messages(rows: list[tuple]) -> list[tuple]:
    """The rows without their trailing messages columns, each text that has messages replaced
    by them (JSON text embedded as it is: a Fragment, as PostgreSQL's driver returns it)."""
    width, places = 1 + len(COMPARISON_COLUMNS), list(_MESSAGES)
    out = []
    for row in rows:
        listed = row[width:]
        if listed.count(None) == len(listed):
            out.append(row[:width])
            continue
        fixed = list(row[:width])
        for place, messages in zip(places, listed, strict=True):
            if messages is not None:
                fixed[place] = messages if isinstance(messages, Fragment) else Fragment(messages)
        out.append(tuple(fixed))
    return out


def _labels(project: Project, rows: list[tuple]) -> tuple[dict, dict]:
    """(comparison id -> its human labels, comparison id -> its LM labels) of a batch."""
    return (
        _labels_out(
            labels_in_batch(HumanLabel, project, rows),
            HUMAN_LABEL_COLUMNS,
            _HumanLabelOut,
            json=["reasons"],
        ),
        _labels_out(
            labels_in_batch(LMLabel, project, rows),
            LM_LABEL_COLUMNS,
            _LMLabelOut,
            json=["raw_output"],
            booleans=["position_consistent", "truncated"],
        ),
    )


def _labels_out(queryset, columns: dict, make, json=(), booleans=()) -> dict[int, list]:
    """comparison id -> its labels as export objects, in id order."""
    aliases = {f"export_{key}": expression for key, expression in columns.items()}
    rows = rows_fetch(queryset.annotate(**aliases).values_list("comparison_id", *aliases))
    places = list(aliases)
    rows = _portable(
        rows,
        json=[1 + places.index(f"export_{key}") for key in json],
        booleans=[1 + places.index(f"export_{key}") for key in booleans],
    )
    groups: dict[int, list] = defaultdict(list)
    for row in rows:
        groups[row[0]].append(make(*row))
    return groups


def _portable(rows: list[tuple], json=(), booleans=()) -> list[tuple]:
    """SQLite's rows as PostgreSQL's: JSON text wrapped in Fragment, 0/1 as booleans."""
    if connection.vendor == "postgresql":
        return rows
    fixed = []
    for row in rows:
        row = list(row)
        for index in json:
            row[index] = Fragment(row[index])
        for index in booleans:
            row[index] = row[index] if row[index] is None else bool(row[index])
        fixed.append(tuple(row))
    return fixed
