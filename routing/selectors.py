"""Reads for the router: a project's comparisons as RoutingInputs, its routing runs, its live
policy's figures."""

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Least

from annotator.final_labels import latest_lm_labels, project_primary_judge
from annotator.models import Comparison, HumanLabel, LMLabel, Project
from routing.features import project_feature_version
from routing.models import (
    ComparisonFeatures,
    DecisionPurpose,
    PolicyState,
    PolicyStrategy,
    RouterPrior,
    RoutingDecision,
    RoutingPolicy,
    RoutingRun,
)
from routing.priors import prior_latest, prior_model
from routing.problem import CHOICE_CODES, NONE, TEXT_COLUMNS, RoutingInputs
from scoring.models import REWARD_MODEL_JUDGE, Judge


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
    # The project's reward model judges too (scoring labels with it after training), whether
    # or not the project configured its judges.
    if (
        names
        and LMLabel.objects.filter(
            comparison__project=project, judge_name=REWARD_MODEL_JUDGE
        ).exists()
    ):
        names = sorted({*names, REWARD_MODEL_JUDGE})
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
    ids, loaded = _routable(project)
    index = {pk: i for i, pk in enumerate(ids.tolist())}
    features = _stored_features(project, feature_version, index)
    judges = project_judges(project, primary)
    primary_label = _primary_label(project, primary, index)
    others = _other_judges(project, judges[1:] if primary else [], primary_label.lm_choice, index)
    votes, human_labelled = _human_votes(project, index)
    inputs = RoutingInputs(
        text=features.text,
        tag_codes=features.tag_codes,
        tag_vocabulary=features.vocabulary,
        p_a=primary_label.p_a,
        consistent=primary_label.consistent,
        truncated=primary_label.truncated,
        lm_choice=primary_label.lm_choice,
        others_agree=others.agree,
        others_p_a=others.p_a,
        votes=votes,
        other_choices=others.choices,
        ids=ids,
    )
    return ProjectRouting(
        inputs=inputs,
        ids=ids,
        human_labelled=human_labelled,
        being_labelled=loaded & ~human_labelled,
        missing_features=len(ids) - features.found,
        feature_version=feature_version,
        primary_judge=primary,
    )


def _routable(project: Project) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the project's routable comparisons, in order, and which of them have a slot
    taken (slots_taken counts labels and open leases: an annotator may be labelling it now)."""
    comparisons = list(
        Comparison.objects.filter(project=project, is_gold=False)
        .order_by("id")
        .values_list("id", "slots_taken")
    )
    ids = np.array([pk for pk, _ in comparisons], dtype=np.int64)
    loaded = np.array([load > 0 for _, load in comparisons], dtype=bool)
    return ids, loaded


@dataclass
class _StoredFeatures:
    text: dict[str, np.ndarray]  # TEXT_COLUMNS -> value per comparison, NaN when not stored
    tag_codes: np.ndarray  # (n, K) index into `vocabulary`, -1 padded
    vocabulary: list[str]
    found: int  # comparisons with a stored row of the version


def _stored_features(
    project: Project, feature_version: str, index: dict[int, int]
) -> _StoredFeatures:
    """The stored text feature values and tags of the comparisons, at `feature_version`."""
    n = len(index)
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
    tag_codes, vocabulary = _tag_codes(tag_lists)
    return _StoredFeatures(text=text, tag_codes=tag_codes, vocabulary=vocabulary, found=found)


def _tag_codes(tag_lists: list[list[str]]) -> tuple[np.ndarray, list[str]]:
    """Each comparison's tags as indices into their sorted vocabulary, -1 padded."""
    vocabulary = sorted({t for tags in tag_lists for t in tags})
    code = {t: k for k, t in enumerate(vocabulary)}
    width = max((len(t) for t in tag_lists), default=0)
    tag_codes = np.full((len(tag_lists), width), -1, dtype=np.int32)
    for i, tags in enumerate(tag_lists):
        for j, t in enumerate(tags):
            tag_codes[i, j] = code[t]
    return tag_codes, vocabulary


@dataclass
class _PrimaryLabel:
    """The primary judge's latest label per comparison (NaN / NONE where it has none)."""

    p_a: np.ndarray
    consistent: np.ndarray
    truncated: np.ndarray
    lm_choice: np.ndarray


def _primary_label(project: Project, primary: str, index: dict[int, int]) -> _PrimaryLabel:
    n = len(index)
    label = _PrimaryLabel(
        p_a=np.full(n, np.nan),
        consistent=np.full(n, np.nan),
        truncated=np.zeros(n),
        lm_choice=np.full(n, NONE, dtype=np.int32),
    )
    if not primary:
        return label
    for pk, (choice, pa, cons, trunc) in _latest_labels(project, primary).items():
        i = index.get(pk)
        if i is None:
            continue
        label.lm_choice[i] = CHOICE_CODES[choice]
        # A label without a probability still says which side it took.
        label.p_a[i] = pa if pa is not None else {"A": 1.0, "B": 0.0, "tie": 0.5}[choice]
        label.consistent[i] = np.nan if cons is None else float(cons)
        label.truncated[i] = float(trunc)
    return label


@dataclass
class _OtherJudges:
    agree: np.ndarray  # share of the other judges that chose as the primary; NaN: none
    p_a: np.ndarray  # their mean P(A better); NaN: none
    choices: dict[str, np.ndarray]  # judge name -> choice code per comparison (NONE: no label)


def _other_judges(
    project: Project, judges: list[str], lm_choice: np.ndarray, index: dict[int, int]
) -> _OtherJudges:
    """The other judges' latest labels: their choices, agreement with the primary judge's
    choice (where it chose a side) and mean p_a."""
    n = len(index)
    agree_sum, agree_n = np.zeros(n), np.zeros(n)
    other_p, other_n = np.zeros(n), np.zeros(n)
    other_choices: dict[str, np.ndarray] = {}
    for judge in judges:
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
        return _OtherJudges(
            agree=np.where(agree_n > 0, agree_sum / agree_n, np.nan),
            p_a=np.where(other_n > 0, other_p / other_n, np.nan),
            choices=other_choices,
        )


def _human_votes(project: Project, index: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(n, V) human choice codes in label order, NONE padded; which comparisons have any."""
    votes_by: dict[int, list[int]] = defaultdict(list)
    for pk, choice in (
        HumanLabel.objects.filter(comparison__project=project, comparison__is_gold=False)
        .order_by("comparison_id", "id")
        .values_list("comparison_id", "overall_choice")
        .iterator(chunk_size=5000)
    ):
        votes_by[pk].append(CHOICE_CODES[choice])
    n = len(index)
    width = max((len(v) for v in votes_by.values()), default=0)
    votes = np.full((n, width), NONE, dtype=np.int32)
    human_labelled = np.zeros(n, dtype=bool)
    for pk, codes in votes_by.items():
        i = index[pk]
        votes[i, : len(codes)] = codes
        human_labelled[i] = True
    return votes, human_labelled


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


# The strategies a live policy may use (RoutingPolicy's check constraint allows the same).
POLICY_STRATEGIES = tuple(PolicyStrategy.values)


@dataclass(frozen=True)
class PolicyFigures:
    """A project's live routing policy as the panel, the API and the CLI show it: one reading,
    so that they show the same figures. Labels are human labels; a released comparison costs
    the labels its decisions asked for (labels_per_item, plus any adjudication)."""

    state: str
    strategy: str
    budget: int  # in budget_unit
    budget_unit: str
    labels_per_item: int
    budget_labels: int
    labels_committed: int  # asked for by the releases so far
    labels_spent: int  # collected on the released comparisons (at most what each asked for)
    labels_left: int  # budget_labels - labels_committed
    budget_comparisons: int  # the budget in comparisons at the current labels_per_item
    comparisons_released: int
    comparisons_complete: int  # released, with every label asked for
    comparisons_outstanding: int  # released, still waiting for labels
    comparisons_left: int  # comparisons the labels left can still release
    seed_size: int
    seed_tag: str
    batch_size: int
    refit_every: int
    prior: str | None  # name@version
    prior_threshold: int
    max_labels_per_item: int
    rounds: int
    router_version: str
    router_trained_on: int
    router_auc: float | None  # cross-validated AUC of "LM label wrong"
    expected_label_accuracy: float | None
    round_queued: bool
    last_round_at: datetime | None
    error: str

    @property
    def live(self) -> bool:
        """Whether the figures still move by themselves: rounds run, or labels come in."""
        return (
            self.state == PolicyState.RUNNING
            or self.round_queued
            or (self.comparisons_outstanding > 0)
        )

    def as_dict(self) -> dict:
        """JSON-ready (the API's body and `routing_policy --show`)."""
        figures = asdict(self)
        if self.last_round_at is not None:
            figures["last_round_at"] = self.last_round_at.isoformat()
        return figures


def policy_figures(project: Project) -> PolicyFigures | None:
    """The project's routing policy and where its budget stands; None without a policy."""
    policy = RoutingPolicy.objects.select_related("prior").filter(project=project).first()
    if policy is None:
        return None
    released = _released(policy)
    per_item = max(project.labels_per_item, 1)
    return PolicyFigures(
        state=policy.state,
        strategy=policy.strategy,
        budget=policy.budget,
        budget_unit=policy.budget_unit,
        labels_per_item=project.labels_per_item,
        budget_labels=policy.budget_labels,
        labels_committed=policy.labels_committed,
        labels_spent=released["spent"] or 0,
        labels_left=policy.labels_left,
        budget_comparisons=policy.budget_labels // per_item,
        comparisons_released=released["released"],
        comparisons_complete=released["complete"],
        comparisons_outstanding=released["released"] - released["complete"],
        comparisons_left=policy.labels_left // per_item,
        seed_size=policy.seed_size,
        seed_tag=policy.seed_tag,
        batch_size=policy.batch_size,
        refit_every=policy.refit_every,
        prior=str(policy.prior) if policy.prior_id else None,
        prior_threshold=policy.prior_threshold,
        max_labels_per_item=policy.max_labels_per_item,
        rounds=policy.rounds,
        router_version=policy.router_version,
        router_trained_on=policy.router_trained_on,
        router_auc=policy.router_auc,
        expected_label_accuracy=policy.expected_label_accuracy,
        round_queued=policy.round_queued,
        last_round_at=policy.last_round_at,
        error=policy.error,
    )


def _released(policy: RoutingPolicy) -> dict[str, int]:
    """The comparisons the policy released: how many, how many have every label their
    decisions asked for, and the labels collected on them (capped at what each asked for)."""
    asked = (
        RoutingDecision.objects.filter(policy=policy, comparison=OuterRef("pk"))
        .order_by()
        .values("comparison")
        .annotate(n=Sum("labels"))
        .values("n")
    )
    return (
        Comparison.objects.filter(
            routing_decisions__policy=policy,
            routing_decisions__purpose=DecisionPurpose.RELEASE,
        )
        .annotate(asked=Subquery(asked, output_field=IntegerField()))
        .aggregate(
            released=Count("id"),
            complete=Count("id", filter=Q(labels_done__gte=F("asked"))),
            spent=Sum(Least("labels_done", "asked")),
        )
    )


def prior_checked(name: str) -> RouterPrior:
    """The latest version of the router prior `name`, its stored model checked against its
    SHA-256 (PriorError when unknown or altered): what a policy may be set to use."""
    prior = prior_latest(name)
    prior_model(prior)
    return prior
