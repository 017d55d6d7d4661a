"""Streaming exports: JSON Lines, one comparison per line, memory flat in the project's size.

Comparisons are read in keyset-paginated batches (id > last, ordered by id) and their labels with
one query per batch and label kind, so a million-row export never holds more than a few batches.
Outside a transaction the batches are read by threads on their own connections, in one read-only
snapshot of the export's start, while the caller sends what is ready.

- `full` on PostgreSQL: the database writes each comparison and each label as JSON text
  (pg_json: the bytes the Python path writes) and Python only joins a comparison with its labels;
  EXPORT_READERS threads read batches in parallel, so the export runs on that many database
  cores. Python writing the JSON itself, as on SQLite, is bound to one core at about half the
  speed. On SQLite the database does what it does cheaply (label texts by CASE, ISO timestamps)
  and each label becomes a dataclass that orjson writes field by field.
- `trl` on PostgreSQL: a batch is one query (each comparison's votes as one text, the primary
  judge's latest label by LATERAL) and a majority is computed once per distinct vote text.

- `full`: the native import format with every label; `export -> import` into a new project and
  export again gives the same bytes (platform labels come back as imported ones, by annotator name).
- `trl`: `prompt`, `chosen`, `rejected` plus `external_id`, `label_source`, `strength`,
  `agreement` for every comparison that has a final label: the majority of its human labels if it
  has any (a tied vote or a Tie majority gives no pair), else its LM label from the project's
  primary judge (its latest version); ties are dropped.

With `with_confidence`, each line also has `posterior` (the Dawid-Skene posterior over A / B /
tie from the project's cached analytics, null for a comparison without human labels) and
`label_confidence` (trl: the posterior of the exported preference, or the primary judge's own
probability for an LM pair; full: the largest posterior). `min_confidence` keeps only lines whose
label_confidence is known and at least that. The posteriors are read once from the cache, keyed
by comparison id (a sorted id array looked up per batch).
"""

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import make_dataclass
from functools import cache, partial
from queue import Queue
from typing import TypeVar

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Func, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, NullIf
from orjson import Fragment
from psycopg.adapt import Loader

from annotator.dataio.pg_json import json_object_sql
from annotator.dataio.readahead import map_ahead, read_ahead
from annotator.final_labels import (
    human_majority,
    latest_first_sql,
    latest_lm_labels,
    project_primary_judge,
)
from annotator.labels import ALL_ASPECTS, Choice, Strength, label_format
from annotator.models import Comparison, HumanLabel, LMLabel, Project

EXPORT_KINDS = ("full", "trl")
T = TypeVar("T")
_END = object()

_TRL_COLUMNS = ("id", "external_id", "prompt", "response_a", "response_b")


def dataset_export_lines(
    *,
    project: Project,
    kind: str = "full",
    batch_size: int | None = None,
    comparisons: QuerySet | None = None,
    with_confidence: bool = False,
    min_confidence: float | None = None,
) -> Iterator[bytes]:
    """Yield the export of `project` as JSON Lines, in newline-terminated chunks of bytes.

    `comparisons` narrows the export to a filtered queryset of the project's comparisons (the
    REST API's filters); it is read in the same keyset batches.
    """
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export kind {kind!r}; expected one of {', '.join(EXPORT_KINDS)}")
    batch_size = batch_size or settings.EXPORT_BATCH_SIZE
    if comparisons is None:
        comparisons = Comparison.objects.all()
    comparisons = comparisons.filter(project=project)
    confidence = _Confidence.load(project, with_confidence, min_confidence)
    if kind == "full":
        if _full_in_sql():
            return _full_lines_sql(batch_size, comparisons, confidence)
        return _full_lines(project, batch_size, comparisons, confidence)
    return _trl_lines(project, batch_size, comparisons, confidence)


class _Confidence:
    """The optional `posterior` / `label_confidence` fields and the `min_confidence` filter."""

    def __init__(self, posteriors, minimum: float | None):
        self.posteriors, self.minimum = posteriors, minimum

    @classmethod
    def load(cls, project: Project, wanted: bool, minimum: float | None):
        if not wanted and minimum is None:
            return None
        from annotator.analytics.report import project_posteriors

        posteriors, _ = project_posteriors(project=project)
        if posteriors is None:
            raise ValueError(
                f"project {project.slug!r} has no analytics report yet "
                "(run `manage.py project_report` first)"
            )
        return cls(posteriors, minimum)

    def batch(self, rows: list[tuple]) -> dict[int, list[float]]:
        """comparison id -> its posterior [A, B, tie], for the batch's comparisons that have one."""
        ids = [row[0] for row in rows]
        found = self.posteriors.lookup(ids)
        return {
            pk: [round(float(p), 4) for p in probabilities]
            for pk, probabilities in zip(ids, found, strict=True)
            if probabilities[0] == probabilities[0]  # not NaN
        }

    def keeps(self, value: float | None) -> bool:
        return self.minimum is None or (value is not None and value >= self.minimum)


def _posterior_dict(posterior: list[float] | None) -> dict | None:
    if posterior is None:
        return None
    return {"A": posterior[0], "B": posterior[1], "tie": posterior[2]}


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


def _fetch(queryset) -> list[tuple]:
    """Rows as the driver returns them, skipping the ORM's per-value converters.

    Timestamps come back formatted by IsoTimestamp, judgements as their text (a CASE), JSON
    columns as their text: on PostgreSQL already wrapped in orjson.Fragment by the driver, so
    they are embedded as they are; elsewhere `_portable` wraps them. This is what makes exports
    fast.
    """
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in ("json", "jsonb"):
                cursor.cursor.adapters.register_loader(name, _FragmentLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


class _FragmentLoader(Loader):
    """A JSON column's text as an orjson.Fragment: written out as it is, never parsed."""

    def load(self, data) -> Fragment:
        return Fragment(bytes(data))


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


def _comparison_batches(
    comparisons: QuerySet, batch_size: int, select=lambda rows: rows.values_list("id")
) -> Iterator[list[tuple]]:
    """Keyset batches of `select(comparisons)`, whose first column is the id."""
    last = 0
    while True:
        rows = _fetch(select(comparisons.filter(id__gt=last).order_by("id"))[:batch_size])
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _in_batch(model, project: Project, rows: list[tuple]):
    """Labels of the batch's comparisons: an id range, restricted to the project's own ids.

    The range on both sides lets PostgreSQL merge two index range scans; a plain join on the
    project would scan every comparison of the project for each batch.
    """
    low, high = rows[0][0], rows[-1][0]
    ours = Comparison.objects.filter(project=project, id__gte=low, id__lte=high).values("id")
    return model.objects.filter(
        comparison_id__gte=low, comparison_id__lte=high, comparison_id__in=ours
    ).order_by("comparison_id", "id")


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
_HUMAN_COLUMNS = {
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
_LM_COLUMNS = {
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
_HumanLabelOut = make_dataclass("_HumanLabelOut", ["_comparison", *_HUMAN_COLUMNS])
_LMLabelOut = make_dataclass("_LMLabelOut", ["_comparison", *_LM_COLUMNS])
_FULL_COLUMNS = (
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
_FULL_LABELS = ("human_labels", "lm_labels")
_FullOut = make_dataclass("_FullOut", ["_id", *_FULL_COLUMNS, *_FULL_LABELS])
_FullOutWithConfidence = make_dataclass(
    "_FullOutWithConfidence",
    ["_id", *_FULL_COLUMNS, *_FULL_LABELS, "posterior", "label_confidence"],
)


def _full_select(comparisons: QuerySet) -> QuerySet:
    return comparisons.annotate(export_gold=_judgement("gold_choice")).values_list(
        "id", *_FULL_COLUMNS[:-1], "export_gold"
    )


def _labels_out(queryset, columns: dict, make, json=(), booleans=()) -> dict[int, list]:
    """comparison id -> its labels as export objects, in id order."""
    aliases = {f"export_{key}": expression for key, expression in columns.items()}
    rows = _fetch(queryset.annotate(**aliases).values_list("comparison_id", *aliases))
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


def _read_batches(comparisons: QuerySet, batch_size: int, fetch_labels) -> Iterator[tuple]:
    """(comparison rows, fetch_labels(rows)) per batch; in a reader thread when possible."""
    return _read_ahead(
        (rows, fetch_labels(rows))
        for rows in _comparison_batches(comparisons, batch_size, _trl_select)
    )


def _trl_select(comparisons: QuerySet) -> QuerySet:
    return comparisons.values_list(*_TRL_COLUMNS)


def _read_ahead(batches: Iterator) -> Iterator:
    """`batches`, read in a thread when possible.

    Outside a transaction, a thread reads the next batch on its own connection, in one read-only
    snapshot, while this thread turns the current one into JSON. Inside a transaction (a caller's
    atomic block, a test) the caller's connection must do the reading, so it runs inline.
    """
    if connection.in_atomic_block:
        return batches
    return read_ahead(_in_snapshot(batches), name="export-reader")


def _in_snapshot(batches: Iterator[tuple]) -> Iterator[tuple]:
    try:
        if connection.vendor == "sqlite":
            # In WAL mode a deferred transaction reads one snapshot and leaves writers alone;
            # atomic() begins IMMEDIATE here (settings), which would lock out every write
            # (an annotator's submit) for the whole export.
            with connection.cursor() as cursor:
                cursor.execute("BEGIN DEFERRED")
                try:
                    yield from batches
                finally:
                    cursor.execute("COMMIT")
            return
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield from batches
    finally:
        connection.close()  # this thread's own connection


def _full_labels(project: Project):
    def fetch(rows: list[tuple]) -> tuple[dict, dict]:
        return (
            _labels_out(
                _in_batch(HumanLabel, project, rows),
                _HUMAN_COLUMNS,
                _HumanLabelOut,
                json=["reasons"],
            ),
            _labels_out(
                _in_batch(LMLabel, project, rows),
                _LM_COLUMNS,
                _LMLabelOut,
                json=["raw_output"],
                booleans=["position_consistent", "truncated"],
            ),
        )

    return fetch


def _full_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: _Confidence | None
) -> Iterator[bytes]:
    dumps, newline, none = orjson.dumps, orjson.OPT_APPEND_NEWLINE, ()
    batches = _read_ahead(
        (rows, _full_labels(project)(rows))
        for rows in _comparison_batches(comparisons, batch_size, _full_select)
    )
    for rows, (humans, lms) in batches:
        rows = _portable(rows, json=[1 + _FULL_COLUMNS.index("metadata")])
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
                    _posterior_dict(posterior),
                    value,
                )
                out.append(dumps(record, option=newline))
        if out:
            yield b"".join(out)


def _full_in_sql() -> bool:
    """PostgreSQL writes the `full` export's JSON itself (pg_json); elsewhere Python does."""
    return connection.vendor == "postgresql"


def _columns(model, alias: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{alias}.{model._meta.get_field(name).column}" for name in names)


# The same keys as _FULL_COLUMNS, _HUMAN_COLUMNS and _LM_COLUMNS, as (key, kind, columns).
_FULL_SQL_FIELDS = (
    *((key, "text", _columns(Comparison, "c", key)) for key in _FULL_COLUMNS[:-3]),
    ("metadata", "json", _columns(Comparison, "c", "metadata")),
    ("route", "choice", _columns(Comparison, "c", "route")),
    ("gold", "label", (*_columns(Comparison, "c", "gold_choice"), f"'{Strength.UNKNOWN}'")),
)
_HUMAN_SQL_FIELDS = (
    ("annotator", "text", ("COALESCE(NULLIF(h.annotator_name, ''), u.username)",)),
    ("annotator_type", "choice", _columns(HumanLabel, "h", "annotator_type")),
    *(
        (aspect, "label", _columns(HumanLabel, "h", f"{aspect}_choice", f"{aspect}_strength"))
        for aspect in ALL_ASPECTS
    ),
    ("confidence", "choice", _columns(HumanLabel, "h", "confidence")),
    ("reasons", "json", _columns(HumanLabel, "h", "reasons")),
    ("rationale", "text", _columns(HumanLabel, "h", "rationale")),
    ("time_spent_s", "float", _columns(HumanLabel, "h", "time_spent_s")),
    ("shown_order", "choice", _columns(HumanLabel, "h", "shown_order")),
    ("guidelines_version", "int", _columns(HumanLabel, "h", "guidelines_version")),
    ("source", "choice", _columns(HumanLabel, "h", "source")),
    ("created_at", "time", _columns(HumanLabel, "h", "created_at")),
)
_LM_SQL_FIELDS = (
    ("judge", "text", _columns(LMLabel, "l", "judge_name")),
    ("judge_version", "text", _columns(LMLabel, "l", "judge_version")),
    ("overall", "label", _columns(LMLabel, "l", "choice", "strength")),
    *((key, "float", _columns(LMLabel, "l", key)) for key in ("p_a", "p_a_ab", "p_a_ba")),
    ("position_consistent", "bool", _columns(LMLabel, "l", "position_consistent")),
    ("rationale", "text", _columns(LMLabel, "l", "rationale")),
    ("raw_output", "json", _columns(LMLabel, "l", "raw_output")),
    ("truncated", "bool", _columns(LMLabel, "l", "truncated")),
    ("source", "choice", _columns(LMLabel, "l", "source")),
    ("created_at", "time", _columns(LMLabel, "l", "created_at")),
)


@cache
def _full_sql() -> tuple[str, str, str]:
    """The three queries of a `full` batch (comparisons, human labels, LM labels), each giving
    (comparison id, JSON text) in order; a comparison's object is left open for its labels.
    `{ours}` stands for the filtered comparisons' ids, then come the range's bounds."""
    quote = connection.ops.quote_name
    user = HumanLabel._meta.get_field("annotator")
    where = "BETWEEN %s AND %s AND {} IN ({{ours}}) ORDER BY {}, {}.id"
    return (
        f"SELECT c.id, {json_object_sql(_FULL_SQL_FIELDS, close=False)}"
        f" FROM {quote(Comparison._meta.db_table)} c WHERE c.id "
        + where.format("c.id", "c.id", "c"),
        f"SELECT h.comparison_id, {json_object_sql(_HUMAN_SQL_FIELDS)}"
        f" FROM {quote(HumanLabel._meta.db_table)} h LEFT JOIN"
        f" {quote(user.related_model._meta.db_table)} u ON u.id = h.{user.column}"
        " WHERE h.comparison_id " + where.format("h.comparison_id", "h.comparison_id", "h"),
        f"SELECT l.comparison_id, {json_object_sql(_LM_SQL_FIELDS)}"
        f" FROM {quote(LMLabel._meta.db_table)} l"
        " WHERE l.comparison_id " + where.format("l.comparison_id", "l.comparison_id", "l"),
    )


def _id_ranges(comparisons: QuerySet, batch_size: int) -> Iterator[tuple[int, int]]:
    """(first id, last id) of each batch of `batch_size` filtered comparisons, in id order: one
    small keyset query per batch."""
    last = 0
    while True:
        ids = comparisons.filter(id__gt=last).order_by("id").values("id")[:batch_size]
        sql, params = ids.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(id), max(id) FROM ({sql}) batch", params)
            low, high = cursor.fetchone()
        if low is None:
            return
        yield low, high
        last = high


def _full_sql_chunk(
    comparisons: QuerySet, confidence: _Confidence | None, bounds: tuple[int, int]
) -> bytes:
    """The lines of the filtered comparisons with ids in `bounds`, from JSON that PostgreSQL
    wrote; Python only joins each comparison with its labels."""
    low, high = bounds
    ours = comparisons.filter(id__gte=low, id__lte=high).order_by().values("id")
    ours, params = ours.query.sql_with_params()
    with connection.cursor() as cursor:
        fetched = []
        for sql in _full_sql():
            cursor.execute(sql.replace("{ours}", ours), (low, high, *params))
            fetched.append(cursor.fetchall())
    rows, humans, lms = fetched[0], _grouped(fetched[1]), _grouped(fetched[2])
    posteriors = confidence.batch(rows) if confidence else None
    dumps, none, out = orjson.dumps, (), []
    for pk, head in rows:
        tail = ""
        if posteriors is not None:
            posterior = posteriors.get(pk)
            value = max(posterior) if posterior else None
            if not confidence.keeps(value):
                continue
            tail = (
                f',"posterior":{dumps(_posterior_dict(posterior)).decode()}'
                f',"label_confidence":{dumps(value).decode()}'
            )
        out.append(
            f'{head},"human_labels":[{",".join(humans.get(pk, none))}]'
            f',"lm_labels":[{",".join(lms.get(pk, none))}]{tail}}}\n'
        )
    return "".join(out).encode()


def _grouped(rows: list[tuple]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for pk, text in rows:
        groups[pk].append(text)
    return groups


def _full_lines_sql(
    batch_size: int, comparisons: QuerySet, confidence: _Confidence | None
) -> Iterator[bytes]:
    """The `full` export written by PostgreSQL: the same bytes as `_full_lines`.

    Inside a transaction (a caller's atomic block, a test) the batches are read in turn on the
    caller's connection. Otherwise EXPORT_READERS threads read the batches, each on its own
    connection and all in the snapshot of the export's start: the database writes JSON on as
    many cores while the batches still come out in order.
    """
    chunk = partial(_full_sql_chunk, comparisons, confidence)
    if connection.in_atomic_block:
        yield from filter(None, map(chunk, _id_ranges(comparisons, batch_size)))
        return
    with _shared_snapshot(partial(_id_ranges, comparisons, batch_size)) as (snapshot, ranges):
        yield from filter(
            None,
            map_ahead(
                chunk,
                ranges,
                workers=settings.EXPORT_READERS,
                depth=1,
                around=partial(_in_snapshot_of, snapshot),
                name="export-reader",
            ),
        )


@contextmanager
def _shared_snapshot(read: Callable[[], Iterator[T]]) -> Iterator[tuple[str, Iterator[T]]]:
    """(id of a read-only PostgreSQL snapshot that other connections can join, what `read()`
    yields in it, as it comes). The transaction that exports the snapshot must stay open while
    they join: a thread of its own holds it, on its own connection, until the block ends.
    (Holding it on the caller's connection would put the caller's own writes into it.)"""
    received: Queue = Queue()
    done = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                received.put((cursor.fetchone()[0], None))
                for item in read():
                    if done.is_set():
                        break
                    received.put((item, None))
                received.put((_END, None))
                done.wait()
        except BaseException as exc:  # handed to the caller, which re-raises it
            received.put((_END, exc))
        finally:
            connection.close()  # this thread's own connection

    def items() -> Iterator:
        while True:
            item, exc = received.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item

    thread = threading.Thread(target=hold, name="export-snapshot", daemon=True)
    thread.start()
    stream = items()
    try:
        yield next(stream), stream
    finally:
        done.set()
        thread.join()


@contextmanager
def _in_snapshot_of(snapshot: str) -> Iterator[None]:
    """A read-only transaction on this thread's own connection that sees `snapshot`."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            yield
    finally:
        connection.close()


# --- TRL export ------------------------------------------------------------------------------


def _sql_batches(
    comparisons: QuerySet, batch_size: int, columns: str, joins: str = "", params=()
) -> Iterator[list[tuple]]:
    """(comparison id, *columns) per comparison `c`, in keyset batches of the filtered queryset."""
    table = connection.ops.quote_name(Comparison._meta.db_table)
    last = 0
    while True:
        ids = comparisons.filter(id__gt=last).order_by("id").values_list("id")[:batch_size]
        sql, ids_params = ids.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH batch AS MATERIALIZED ({sql}) SELECT c.id, {columns}"
                f" FROM batch JOIN {table} c ON c.id = batch.id {joins} ORDER BY c.id",
                (*ids_params, *params),
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _trl_labels(project: Project, judge: str | None):
    def fetch(rows: list[tuple]) -> tuple[dict, dict]:
        humans: dict[int, list[tuple]] = defaultdict(list)
        for row in _fetch(
            _in_batch(HumanLabel, project, rows).values_list(
                "comparison_id", "overall_choice", "overall_strength"
            )
        ):
            humans[row[0]].append(row)
        lm: dict[int, tuple] = {}
        if judge:
            for row in _fetch(
                latest_lm_labels(_in_batch(LMLabel, project, rows).filter(judge_name=judge))
                .order_by()
                .values_list("comparison_id", "choice", "strength", "p_a")
            ):
                lm[row[0]] = row
        return humans, lm

    return fetch


def _trl_in_one_query() -> bool:
    """PostgreSQL reads a TRL batch in one query (string_agg, LATERAL); others in three."""
    return connection.vendor == "postgresql"


# A comparison without human votes (human_majority gives None for a tied vote).
_NO_VOTES = ("no votes",)
# Distinct vote texts whose majority is remembered (a few hundred with 3 votes per comparison).
_MAJORITIES_KEPT = 10_000


def _trl_rows_python(
    project: Project, batch_size: int, comparisons: QuerySet, judge: str | None
) -> Iterator[list[tuple]]:
    fetch = _trl_labels(project, judge)
    for rows, (humans, lm) in _read_batches(comparisons, batch_size, fetch):
        batch = []
        for pk, ext, prompt, a, b, *_ in rows:
            votes, label = humans.get(pk), lm.get(pk)
            majority = human_majority([v[1:] for v in votes]) if votes else _NO_VOTES
            batch.append((pk, ext, prompt, a, b, majority, label[1:] if label else None))
        yield batch


def _trl_rows_sql(batch_size: int, comparisons: QuerySet, judge: str | None):
    """The comparisons with their votes as one text (`choice strength,...`) and the judge's
    latest label, in one query per batch; majorities are computed once per distinct vote."""
    votes = (
        "(SELECT string_agg(h.overall_choice || ' ' || h.overall_strength, ',')"
        f" FROM {connection.ops.quote_name(HumanLabel._meta.db_table)} h"
        " WHERE h.comparison_id = c.id)"
    )
    columns = f"c.external_id, c.prompt, c.response_a, c.response_b, {votes}"
    joins, params = "", ()
    if judge:
        columns += ", l.choice, l.strength, l.p_a"
        # The judge's latest label (annotator.final_labels).
        joins = (
            "LEFT JOIN LATERAL (SELECT choice, strength, p_a"
            f" FROM {connection.ops.quote_name(LMLabel._meta.db_table)}"
            f" WHERE comparison_id = c.id AND judge_name = %s ORDER BY {latest_first_sql()}"
            " LIMIT 1) l ON true"
        )
        params = (judge,)
    else:
        columns += ", NULL, NULL, NULL"
    majorities: dict[str | None, tuple | None] = {None: _NO_VOTES}
    for rows in _read_ahead(_sql_batches(comparisons, batch_size, columns, joins, params)):
        batch = []
        for pk, ext, prompt, a, b, voted, choice, strength, p_a in rows:
            try:
                majority = majorities[voted]
            except KeyError:
                majority = human_majority([tuple(v.split(" ")) for v in voted.split(",")])
                if len(majorities) >= _MAJORITIES_KEPT:  # memory stays flat
                    majorities = {None: _NO_VOTES}
                majorities[voted] = majority
            label = None if choice is None else (choice, strength, p_a)
            batch.append((pk, ext, prompt, a, b, majority, label))
        yield batch


def _trl_lines(
    project: Project, batch_size: int, comparisons: QuerySet, confidence: _Confidence | None
) -> Iterator[bytes]:
    dumps = orjson.dumps
    judge = project_primary_judge(project)
    if _trl_in_one_query():
        batches = _trl_rows_sql(batch_size, comparisons, judge)
    else:
        batches = _trl_rows_python(project, batch_size, comparisons, judge)
    for rows in batches:
        out = []
        posteriors = confidence.batch(rows) if confidence else {}
        for pk, ext, prompt, a, b, majority, label in rows:
            if majority is not _NO_VOTES:
                if majority is None:
                    continue
                choice, strength, agreement = majority
                source = "human"
            elif label is not None and label[0] != Choice.TIE:
                choice, strength, p_a = label
                agreement, source = None, "lm"
            else:
                continue
            chosen, rejected = (a, b) if choice == Choice.A else (b, a)
            line = {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "external_id": ext,
                "label_source": source,
                "strength": strength,
                "agreement": agreement,
            }
            if confidence:
                posterior = posteriors.get(pk)
                if source == "human":
                    value = posterior[0 if choice == Choice.A else 1] if posterior else None
                else:  # the judge's own probability of its verdict
                    value = None if p_a is None else (p_a if choice == Choice.A else 1 - p_a)
                if not confidence.keeps(value):
                    continue
                line["posterior"] = _posterior_dict(posterior)
                line["label_confidence"] = value if value is None else round(value, 4)
            out.append(dumps(line))
        if out:
            yield b"\n".join(out) + b"\n"
