"""Reads for the router: a project's comparisons as RoutingInputs, its routing runs."""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db.models import Sum, Value
from django.db.models.functions import Least

from annotator.final_labels import latest_lm_labels, project_primary_judge
from annotator.models import Comparison, HumanLabel, LMLabel, Project
from routing.features import project_feature_version
from routing.models import ComparisonFeatures, RoutingRun
from routing.problem import CHOICE_CODES, NONE, TEXT_COLUMNS, RoutingInputs
from scoring.models import Judge


@dataclass
class ProjectRouting:
    """A project's routable comparisons, what the router knows about each, and their state."""

    inputs: RoutingInputs
    ids: np.ndarray  # comparison ids, in the inputs' order
    human_labelled: np.ndarray  # bool: has at least one human label (stays human)
    being_labelled: np.ndarray  # bool: no label yet but an annotator holds a lease (stays human)
    missing_features: int  # comparisons without stored features of the project's version
    feature_version: str
    primary_judge: str


def project_judges(project: Project, primary: str | None) -> list[str]:
    """The judge names whose labels count for agreement: the project's configured judges, else
    every judge that labelled in the project; the primary judge first."""
    names = list(
        Judge.objects.filter(project_settings__project=project)
        .order_by("name")
        .values_list("name", flat=True)
    )
    if not names:
        names = list(
            LMLabel.objects.filter(comparison__project=project)
            .values_list("judge_name", flat=True)
            .distinct()
            .order_by("judge_name")
        )
    if primary:
        names = [primary, *(n for n in names if n != primary)]
    return names


def _latest_labels(project: Project, judge: str) -> dict[int, tuple]:
    """comparison id -> (choice, p_a, consistent, truncated) of the judge's latest label."""
    labels = LMLabel.objects.filter(comparison__project=project, judge_name=judge)
    return {
        pk: (choice, p_a, consistent, truncated)
        for pk, choice, p_a, consistent, truncated in latest_lm_labels(labels)
        .values_list("comparison_id", "choice", "p_a", "position_consistent", "truncated")
        .iterator(chunk_size=5000)
    }


def routing_inputs(project: Project, *, primary_judge: str | None = None) -> ProjectRouting:
    """Everything the router may use for the project's comparisons (gold items for quality
    control are not routed): stored text features, descriptive tags, the primary judge's label,
    the other judges' agreement, and the human votes (for learning and evaluation only)."""
    primary = primary_judge or project_primary_judge(project) or ""
    feature_version = project_feature_version(project)
    comparisons = list(
        Comparison.objects.filter(project=project, is_gold=False)
        .order_by("id")
        .values_list("id", "slots_taken")
    )
    ids = np.array([pk for pk, _ in comparisons], dtype=np.int64)
    # slots_taken counts labels and open leases: an annotator may be labelling it right now.
    loaded = np.array([load > 0 for _, load in comparisons], dtype=bool)
    index = {pk: i for i, pk in enumerate(ids.tolist())}
    n = len(ids)

    text = {c: np.full(n, np.nan) for c in TEXT_COLUMNS}
    tag_lists: list[list[str]] = [[] for _ in range(n)]
    found = 0
    for pk, values, tags in (
        ComparisonFeatures.objects.filter(
            comparison__project=project,
            comparison__is_gold=False,
            version=feature_version,
        )
        .values_list("comparison_id", "values", "tags")
        .iterator(chunk_size=5000)
    ):
        i = index[pk]
        found += 1
        for c in TEXT_COLUMNS:
            v = values.get(c)
            text[c][i] = np.nan if v is None else float(v)
        tag_lists[i] = list(tags)
    vocabulary = sorted({t for tags in tag_lists for t in tags})
    code = {t: k for k, t in enumerate(vocabulary)}
    width = max((len(t) for t in tag_lists), default=0)
    tag_codes = np.full((n, width), -1, dtype=np.int32)
    for i, tags in enumerate(tag_lists):
        for j, t in enumerate(tags):
            tag_codes[i, j] = code[t]

    p_a = np.full(n, np.nan)
    consistent = np.full(n, np.nan)
    truncated = np.zeros(n)
    lm_choice = np.full(n, NONE, dtype=np.int32)
    judges = project_judges(project, primary)
    if primary:
        for pk, (choice, pa, cons, trunc) in _latest_labels(project, primary).items():
            i = index.get(pk)
            if i is None:
                continue
            lm_choice[i] = CHOICE_CODES[choice]
            # A label without a probability still says which side it took.
            p_a[i] = pa if pa is not None else {"A": 1.0, "B": 0.0, "tie": 0.5}[choice]
            consistent[i] = np.nan if cons is None else float(cons)
            truncated[i] = float(trunc)
    agree_sum, agree_n = np.zeros(n), np.zeros(n)
    other_p, other_n = np.zeros(n), np.zeros(n)
    other_choices: dict[str, np.ndarray] = {}
    for judge in judges[1:] if primary else []:
        choices = other_choices.setdefault(judge, np.full(n, NONE, dtype=np.int32))
        for pk, (choice, pa, _, _) in _latest_labels(project, judge).items():
            i = index.get(pk)
            if i is None:
                continue
            choices[i] = CHOICE_CODES[choice]
            if choice != "tie" and lm_choice[i] in (0, 1):
                agree_sum[i] += CHOICE_CODES[choice] == lm_choice[i]
                agree_n[i] += 1
            if pa is not None:
                other_p[i] += pa
                other_n[i] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        others_agree = np.where(agree_n > 0, agree_sum / agree_n, np.nan)
        others_p_a = np.where(other_n > 0, other_p / other_n, np.nan)

    votes_by: dict[int, list[int]] = defaultdict(list)
    for pk, choice in (
        HumanLabel.objects.filter(comparison__project=project, comparison__is_gold=False)
        .order_by("comparison_id", "id")
        .values_list("comparison_id", "overall_choice")
        .iterator(chunk_size=5000)
    ):
        votes_by[pk].append(CHOICE_CODES[choice])
    width = max((len(v) for v in votes_by.values()), default=0)
    votes = np.full((n, width), NONE, dtype=np.int32)
    human_labelled = np.zeros(n, dtype=bool)
    for pk, codes in votes_by.items():
        i = index[pk]
        votes[i, : len(codes)] = codes
        human_labelled[i] = True

    inputs = RoutingInputs(
        text=text,
        tag_codes=tag_codes,
        tag_vocabulary=vocabulary,
        p_a=p_a,
        consistent=consistent,
        truncated=truncated,
        lm_choice=lm_choice,
        others_agree=others_agree,
        others_p_a=others_p_a,
        votes=votes,
        other_choices=other_choices,
        ids=ids,
    )
    return ProjectRouting(
        inputs=inputs,
        ids=ids,
        human_labelled=human_labelled,
        being_labelled=loaded & ~human_labelled,
        missing_features=n - found,
        feature_version=feature_version,
        primary_judge=primary,
    )


def latest_routing_run(project: Project) -> RoutingRun | None:
    return RoutingRun.objects.filter(project=project).order_by("-id").first()


def routing_panel_data(project: Project) -> dict:
    """The latest routing run of the project, its budget use and human-label progress, and the
    runs before it."""

    runs = list(RoutingRun.objects.filter(project=project).order_by("-id")[:5])
    latest = runs[0] if runs else None
    labels_collected = 0
    if latest is not None:
        # Labels that count towards the routed cost: at most labels_per_item per comparison.
        labels_collected = (
            Comparison.objects.filter(project=project, route="human", is_gold=False).aggregate(
                n=Sum(Least("labels_done", Value(latest.labels_per_item)))
            )["n"]
            or 0
        )
    return {"latest": latest, "earlier": runs[1:], "labels_collected": labels_collected}


def comparison_texts(ids: list[int]) -> list[tuple[str, str, str]]:
    """(prompt, response A, response B) of the comparisons, in the order of `ids`."""
    by_id = {
        pk: (prompt, a, b)
        for pk, prompt, a, b in Comparison.objects.filter(id__in=ids)
        .values_list("id", "prompt", "response_a", "response_b")
        .iterator(chunk_size=2000)
    }
    return [by_id[pk] for pk in ids]
