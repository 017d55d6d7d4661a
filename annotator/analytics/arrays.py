"""Selectors that read a project's labels into numpy arrays for the analytics (three queries).

Rows come straight from the database cursor (no model instances, no per-value converters) and
are encoded column by column into small integer codes, so a million labels load in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Coalesce, NullIf

from annotator.labels import ALL_ASPECTS, Choice, Confidence, ShownOrder, Strength
from annotator.models import Comparison, HumanLabel, Project
from scoring.models import LMLabel

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


def _scale_codes(choices, strengths) -> np.ndarray:
    get = SCALE_CODE.get
    return np.fromiter(
        (get((c, s), MISSING) for c, s in zip(choices, strengths, strict=True)),
        dtype=np.int64,
        count=len(choices),
    )


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _names(values) -> tuple[np.ndarray, list[str]]:
    """Strings as indices into their sorted distinct values ('' kept as a name)."""
    if not values:
        return np.zeros(0, np.int64), []
    names, index = np.unique(np.array(values, dtype=object).astype(str), return_inverse=True)
    return index.astype(np.int64), [str(n) for n in names]


def project_arrays(*, project: Project) -> ProjectArrays:
    """The project's comparisons, human labels and LM labels as arrays (see the dataclasses).

    LM labels: the latest label (by time, then id) of each judge name per comparison, whatever
    its version, as in the judge report.
    """
    comparisons = _fetch(
        Comparison.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "model_a", "model_b", "gold_choice")
    )
    ids, model_a, model_b, gold = (
        (list(c) for c in zip(*comparisons, strict=True)) if comparisons else ([], [], [], [])
    )
    comparison_ids = np.array(ids, dtype=np.int64)
    model_index, models = _names(model_a + model_b)
    if models and models[0] == "":  # no model named: '' sorts first, and becomes MISSING
        model_index, models = model_index - 1, models[1:]
    n = len(ids)

    columns = {
        "annotator": Coalesce(NullIf("annotator_name", Value("")), "annotator__username"),
        "kind": F("annotator_type"),
        **{
            f"{aspect}_{part}": F(f"{aspect}_{part}")
            for aspect in ALL_ASPECTS
            for part in ("choice", "strength")
        },
        "conf": F("confidence"),
        "seconds": F("time_spent_s"),
        "shown": F("shown_order"),
    }
    aliases = {f"a_{key}": value for key, value in columns.items()}
    human_rows = _fetch(
        HumanLabel.objects.filter(comparison__project=project)
        .annotate(**aliases)
        .values_list("comparison_id", *aliases)
    )
    human_columns = list(zip(*human_rows, strict=True)) if human_rows else [()] * (len(aliases) + 1)
    unit = np.searchsorted(comparison_ids, np.array(human_columns[0], dtype=np.int64))
    annotator, annotators = _names(list(human_columns[1]))
    expert_label = np.array([k == "expert" for k in human_columns[2]], dtype=bool)
    annotator_expert = np.zeros(len(annotators), dtype=bool)
    np.logical_or.at(annotator_expert, annotator, expert_label)
    choice, scale = {}, {}
    for k, aspect in enumerate(ALL_ASPECTS):
        choices, strengths = human_columns[3 + 2 * k], human_columns[4 + 2 * k]
        choice[aspect] = _codes(choices, CHOICE_CODE)
        scale[aspect] = _scale_codes(choices, strengths)
    rest = 3 + 2 * len(ALL_ASPECTS)
    human = HumanArrays(
        unit=unit,
        annotator=annotator,
        annotators=annotators,
        annotator_expert=annotator_expert,
        choice=choice,
        scale=scale,
        confidence=_codes(human_columns[rest], CONFIDENCE_CODE),
        time_spent_s=_floats(human_columns[rest + 1]),
        shown=_codes(human_columns[rest + 2], SHOWN_CODE),
    )

    lm_rows = _fetch(
        LMLabel.objects.filter(comparison__project=project)
        .order_by("created_at", "id")
        .values_list("comparison_id", "judge_name", "choice", "strength", "p_a")
    )
    lm_columns = list(zip(*lm_rows, strict=True)) if lm_rows else [()] * 5
    lm_unit = np.searchsorted(comparison_ids, np.array(lm_columns[0], dtype=np.int64))
    judge, judges = _names(list(lm_columns[1]))
    # Latest label per (judge, comparison): the last row of each key in time order.
    key = judge * max(n, 1) + lm_unit
    _, last_reversed = np.unique(key[::-1], return_index=True)
    latest = np.sort(key.size - 1 - last_reversed)
    lm_choice = _codes(lm_columns[2], CHOICE_CODE)
    lm_scale = _scale_codes(lm_columns[2], lm_columns[3])
    lm = LMArrays(
        unit=lm_unit[latest],
        judge=judge[latest],
        judges=judges,
        choice=lm_choice[latest],
        scale=lm_scale[latest],
        p_a=_floats(lm_columns[4])[latest],
    )
    return ProjectArrays(
        comparison_ids=comparison_ids,
        model_a=model_index[:n],
        model_b=model_index[n:],
        models=models,
        gold=_codes(gold, CHOICE_CODE),
        human=human,
        lm=lm,
    )
