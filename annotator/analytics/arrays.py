"""Selectors that read a project's labels into numpy arrays for the analytics (three queries).

The database encodes every label column into a small integer code (CASE expressions, DENSE_RANK
for annotator and judge names), and the rows come straight from the cursor into one float array
(no model instances, no per-value converters): the load phase of bench/analytics.py (figures in
bench/README.md, "Analytics").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, F, FloatField, IntegerField, Value, When, Window
from django.db.models.functions import Coalesce, Collate, DenseRank, NullIf

from annotator.final_labels import latest_lm_labels
from annotator.labels import ALL_ASPECTS, Choice, Confidence, ShownOrder, Strength
from annotator.models import Comparison, HumanLabel, LMLabel, Project

CHOICES = (Choice.A.value, Choice.B.value, Choice.TIE.value)  # codes 0, 1, 2
CHOICE_CODE = {c: k for k, c in enumerate(CHOICES)}
# The 5-point scale, in order; a judgement without a known strength has no place on it.
SCALE = (
    "A-is-clearly-better",
    "A-is-slightly-better",
    "Tie",
    "B-is-slightly-better",
    "B-is-clearly-better",
)
SCALE_CODE = {
    (Choice.A.value, Strength.CLEARLY.value): 0,
    (Choice.A.value, Strength.SLIGHTLY.value): 1,
    (Choice.TIE.value, Strength.UNKNOWN.value): 2,
    (Choice.B.value, Strength.SLIGHTLY.value): 3,
    (Choice.B.value, Strength.CLEARLY.value): 4,
}
CONFIDENCES = tuple(Confidence.values)  # codes 0..2; -1 not given
CONFIDENCE_CODE = {c: k for k, c in enumerate(CONFIDENCES)}
SHOWN_CODE = {ShownOrder.AB.value: 0, ShownOrder.BA.value: 1}
MISSING = -1


@dataclass(frozen=True)
class HumanArrays:
    unit: np.ndarray  # index into ProjectArrays.comparison_ids
    annotator: np.ndarray  # index into `annotators`
    annotators: list[str]
    annotator_expert: np.ndarray  # per annotator: any label of theirs marked expert
    choice: dict[str, np.ndarray]  # aspect -> code 0..2, -1 not answered
    scale: dict[str, np.ndarray]  # aspect -> 5-point code 0..4, -1 unknown strength / not answered
    confidence: np.ndarray  # code, -1 not given
    time_spent_s: np.ndarray  # NaN when unknown
    shown: np.ndarray  # 0 A shown first, 1 B first, -1 unknown

    @property
    def size(self) -> int:
        return int(self.unit.size)


@dataclass(frozen=True)
class LMArrays:
    unit: np.ndarray
    judge: np.ndarray  # index into `judges`
    judges: list[str]
    choice: np.ndarray
    scale: np.ndarray
    p_a: np.ndarray  # NaN when unknown

    @property
    def size(self) -> int:
        return int(self.unit.size)


@dataclass(frozen=True)
class ProjectArrays:
    comparison_ids: np.ndarray  # sorted
    model_a: np.ndarray  # index into `models`, -1 when empty
    model_b: np.ndarray
    models: list[str]
    gold: np.ndarray  # choice code of the gold answer, -1 when none
    human: HumanArrays
    lm: LMArrays

    @property
    def n_units(self) -> int:
        return int(self.comparison_ids.size)


def _fetch(queryset) -> list[tuple]:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _codes(values, table: dict, *, missing: int = MISSING) -> np.ndarray:
    get = table.get
    return np.fromiter((get(v, missing) for v in values), dtype=np.int64, count=len(values))


def _code(field: str, table: dict) -> Case:
    """The column's value as its integer code, computed by the database (MISSING otherwise)."""
    return Case(
        *(When(**{field: value}, then=Value(code)) for value, code in table.items()),
        default=Value(MISSING),
        output_field=IntegerField(),
    )


def _choice_code(field: str) -> Case:
    return _code(field, CHOICE_CODE)


def _scale_code(choice: str, strength: str) -> Case:
    return Case(
        *(
            When(**{choice: c, strength: s}, then=Value(code))
            for (c, s), code in SCALE_CODE.items()
        ),
        default=Value(MISSING),
        output_field=IntegerField(),
    )


def _bytewise(expression):
    """Names compared byte by byte: sorting by PostgreSQL's locale collation costs seconds on a
    million rows, and only a consistent order is needed (SQLite compares bytes already)."""
    if connection.vendor == "postgresql":
        return Collate(expression, "C")
    return expression


def _numbers(queryset, width: int) -> np.ndarray:
    """A query of numeric columns as one float array (rows, width)."""
    rows = _fetch(queryset)
    if not rows:
        return np.zeros((0, width))
    return np.array(rows, dtype=np.float64)


def _names(values) -> tuple[np.ndarray, list[str]]:
    """Strings as indices into their sorted distinct values ('' kept as a name)."""
    if not values:
        return np.zeros(0, np.int64), []
    names, index = np.unique(np.array(values, dtype=object).astype(str), return_inverse=True)
    return index.astype(np.int64), [str(n) for n in names]


def project_arrays(*, project: Project) -> ProjectArrays:
    """The project's comparisons, human labels and LM labels as arrays (see the dataclasses),
    read in one snapshot.

    LM labels: the latest label (by time, then id) of each judge name per comparison, whatever
    its version, as in the judge report.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if outermost:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                # One large read: sort the annotator names in memory rather than on disk, and
                # skip JIT compilation, which costs more than it saves on these plain scans.
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL jit = off")
        return _project_arrays(project)


def _project_arrays(project: Project) -> ProjectArrays:
    comparison_ids, model_index, models, gold = _comparisons(project)
    n = comparison_ids.size
    return ProjectArrays(
        comparison_ids=comparison_ids,
        model_a=model_index[:n],
        model_b=model_index[n:],
        models=models,
        gold=gold,
        human=_human_arrays(project, comparison_ids),
        lm=_lm_arrays(project, comparison_ids),
    )


def _comparisons(project: Project) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The comparison ids (sorted); model A's then model B's index into the model names (-1
    when empty); the model names; each comparison's gold choice code."""
    comparisons = _fetch(
        Comparison.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "model_a", "model_b", "gold_choice")
    )
    ids, model_a, model_b, gold = (
        (list(c) for c in zip(*comparisons, strict=True)) if comparisons else ([], [], [], [])
    )
    model_index, models = _names(model_a + model_b)
    if models and models[0] == "":  # no model named: '' sorts first, and becomes MISSING
        model_index, models = model_index - 1, models[1:]
    return np.array(ids, dtype=np.int64), model_index, models, _codes(gold, CHOICE_CODE)


def _human_columns(who) -> dict:
    """Every human label column the arrays need, as a database expression of its code."""
    return {
        # Same order as the annotator names (both sort by the database's collation).
        "annotator": Window(DenseRank(), order_by=who.asc()),
        "expert": Case(When(annotator_type="expert", then=Value(1)), default=Value(0)),
        **{
            name: expression
            for aspect in ALL_ASPECTS
            for name, expression in (
                (f"{aspect}_c", _choice_code(f"{aspect}_choice")),
                (f"{aspect}_s", _scale_code(f"{aspect}_choice", f"{aspect}_strength")),
            )
        },
        "conf": _code("confidence", CONFIDENCE_CODE),
        "seconds": Coalesce("time_spent_s", Value(-1.0), output_field=FloatField()),
        "shown": _code("shown_order", SHOWN_CODE),
    }


def _human_arrays(project: Project, comparison_ids: np.ndarray) -> HumanArrays:
    labels = HumanLabel.objects.filter(comparison__project=project)
    who = _bytewise(Coalesce(NullIf("annotator_name", Value("")), "annotator__username"))
    annotators = list(
        labels.annotate(who=who).order_by("who").values_list("who", flat=True).distinct()
    )
    aliases = {f"a_{key}": value for key, value in _human_columns(who).items()}
    rows = _numbers(
        # No ORDER BY: the rows' order does not matter, and sorting them costs a second.
        labels.order_by().annotate(**aliases).values_list("comparison_id", *aliases),
        len(aliases) + 1,
    )
    annotator = rows[:, 1].astype(np.int64) - 1
    annotator_expert = np.zeros(len(annotators), dtype=bool)
    np.logical_or.at(annotator_expert, annotator, rows[:, 2] > 0)
    choice, scale = {}, {}
    for k, aspect in enumerate(ALL_ASPECTS):
        choice[aspect] = rows[:, 3 + 2 * k].astype(np.int64)
        scale[aspect] = rows[:, 4 + 2 * k].astype(np.int64)
    rest = 3 + 2 * len(ALL_ASPECTS)
    seconds = rows[:, rest + 1]
    return HumanArrays(
        unit=np.searchsorted(comparison_ids, rows[:, 0].astype(np.int64)),
        annotator=annotator,
        annotators=annotators,
        annotator_expert=annotator_expert,
        choice=choice,
        scale=scale,
        confidence=rows[:, rest].astype(np.int64),
        time_spent_s=np.where(seconds >= 0, seconds, np.nan),
        shown=rows[:, rest + 2].astype(np.int64),
    )


def _lm_arrays(project: Project, comparison_ids: np.ndarray) -> LMArrays:
    lm_labels = LMLabel.objects.filter(comparison__project=project)
    judge_name = _bytewise(F("judge_name"))
    judges = list(
        lm_labels.annotate(j=judge_name).order_by("j").values_list("j", flat=True).distinct()
    )
    # Each judge's latest label per comparison (annotator.final_labels).
    rows = _numbers(
        latest_lm_labels(
            lm_labels.annotate(
                a_judge=Window(DenseRank(), order_by=judge_name.asc()),
                a_choice=_choice_code("choice"),
                a_scale=_scale_code("choice", "strength"),
                a_p_a=Coalesce("p_a", Value(-1.0), output_field=FloatField()),
            )
        )
        .order_by("comparison_id", "a_judge")
        .values_list("comparison_id", "a_judge", "a_choice", "a_scale", "a_p_a"),
        5,
    )
    p_a = rows[:, 4]
    return LMArrays(
        unit=np.searchsorted(comparison_ids, rows[:, 0].astype(np.int64)),
        judge=rows[:, 1].astype(np.int64) - 1,
        judges=judges,
        choice=rows[:, 2].astype(np.int64),
        scale=rows[:, 3].astype(np.int64),
        p_a=np.where(p_a >= 0, p_a, np.nan),
    )
