"""The `full` export on PostgreSQL: the database writes the JSON, the bytes of python_full.

The database writes each comparison and each label as JSON text (pg_json) and Python only joins
a comparison with its labels: per comparison six strings to handle instead of some eighty values
turned into Python objects and back. EXPORT_READERS threads read batches in parallel, each on its
own connection and all in the snapshot of the export's start, so the export runs on that many
database cores while the batches still come out in order; Python writing the JSON itself is
bound to one core.
"""

from collections import defaultdict
from collections.abc import Iterator
from functools import cache, partial

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from annotator.dataio.export.confidence import ExportConfidence, posterior_dict
from annotator.dataio.export.snapshot import in_snapshot_of, shared_snapshot
from annotator.dataio.pg_json import json_object_sql
from annotator.dataio.readahead import map_ahead
from annotator.labels import ALL_ASPECTS, Strength
from annotator.models import Comparison, HumanLabel, LMLabel


def _columns(model, alias: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{alias}.{model._meta.get_field(name).column}" for name in names)


# The keys of python_full's COMPARISON_COLUMNS, HUMAN_LABEL_COLUMNS and LM_LABEL_COLUMNS, in
# their order, as (key, kind, columns).
COMPARISON_FIELDS = (
    ("external_id", "text", _columns(Comparison, "c", "external_id")),
    # A conversation goes out as its list of messages, plain text as a string.
    *(
        (key, "messages", _columns(Comparison, "c", f"{key}_messages", key))
        for key in ("prompt", "response_a", "response_b")
    ),
    *((key, "text", _columns(Comparison, "c", key)) for key in ("model_a", "model_b")),
    ("metadata", "json", _columns(Comparison, "c", "metadata")),
    ("route", "choice", _columns(Comparison, "c", "route")),
    ("gold", "label", (*_columns(Comparison, "c", "gold_choice"), f"'{Strength.UNKNOWN}'")),
)
HUMAN_LABEL_FIELDS = (
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
LM_LABEL_FIELDS = (
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


def full_lines(
    batch_size: int, comparisons: QuerySet, confidence: ExportConfidence | None
) -> Iterator[bytes]:
    """The `full` export written by PostgreSQL: the same bytes as python_full.full_lines.

    Inside a transaction (a caller's atomic block, a test) the batches are read in turn on the
    caller's connection. Otherwise EXPORT_READERS threads read them in the snapshot of the
    export's start.
    """
    chunk = partial(_chunk, comparisons, confidence)
    if connection.in_atomic_block:
        yield from filter(None, map(chunk, _id_ranges(comparisons, batch_size)))
        return
    with shared_snapshot(partial(_id_ranges, comparisons, batch_size)) as (snapshot, ranges):
        yield from filter(
            None,
            map_ahead(
                chunk,
                ranges,
                workers=settings.EXPORT_READERS,
                depth=1,
                around=partial(in_snapshot_of, snapshot),
                name="export-reader",
            ),
        )


@cache
def _batch_sql() -> tuple[str, str, str]:
    """The three queries of a batch (comparisons, human labels, LM labels), each giving
    (comparison id, JSON text) in order; a comparison's object is left open for its labels.
    `{ours}` stands for the filtered comparisons' ids, then come the range's bounds."""
    quote = connection.ops.quote_name
    user = HumanLabel._meta.get_field("annotator")
    where = "BETWEEN %s AND %s AND {} IN ({{ours}}) ORDER BY {}, {}.id"
    return (
        f"SELECT c.id, {json_object_sql(COMPARISON_FIELDS, close=False)}"
        f" FROM {quote(Comparison._meta.db_table)} c WHERE c.id "
        + where.format("c.id", "c.id", "c"),
        f"SELECT h.comparison_id, {json_object_sql(HUMAN_LABEL_FIELDS)}"
        f" FROM {quote(HumanLabel._meta.db_table)} h LEFT JOIN"
        f" {quote(user.related_model._meta.db_table)} u ON u.id = h.{user.column}"
        " WHERE h.comparison_id " + where.format("h.comparison_id", "h.comparison_id", "h"),
        f"SELECT l.comparison_id, {json_object_sql(LM_LABEL_FIELDS)}"
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


def _chunk(
    comparisons: QuerySet, confidence: ExportConfidence | None, bounds: tuple[int, int]
) -> bytes:
    """The lines of the filtered comparisons with ids in `bounds`, from JSON that PostgreSQL
    wrote; Python only joins each comparison with its labels."""
    low, high = bounds
    ours = comparisons.filter(id__gte=low, id__lte=high).order_by().values("id")
    ours, params = ours.query.sql_with_params()
    with connection.cursor() as cursor:
        fetched = []
        for sql in _batch_sql():
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
                f',"posterior":{dumps(posterior_dict(posterior)).decode()}'
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
