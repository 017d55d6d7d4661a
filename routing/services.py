"""Routing a project: run a strategy under a human budget, store the run and its append-only
decisions, and set `Comparison.route` (which the annotator queue reads). Also the LM tagger's
configuration: saving it (its version) and naming a project's tagger."""

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotator.models import Comparison, HumanLabel, Project, Route
from routing.models import DecidedRoute, ProjectTagger, RoutingDecision, RoutingRun, Tagger
from routing.problem import RoutingProblem, problem_build
from routing.selectors import ProjectRouting, routing_inputs
from routing.strategies import (
    MIN_LABELLED,
    STRATEGIES,
    Routing,
    Strategy,
    StrategyError,
    StrategyOptions,
)

WRITE_BATCH = 5000


class RoutingError(ValueError):
    """The project cannot be routed as asked (unknown strategy, bad budget, missing inputs)."""


@dataclass(frozen=True)
class Budget:
    """A human budget: a share of the comparisons (0-1) or a number of comparisons. Each
    human-routed comparison costs the project's labels_per_item labels."""

    fraction: float | None = None
    count: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """'0.25' or '25%' is a fraction, '300' a count (an integer is always a count: write
        '1.0' for everything)."""
        raw = str(text).strip()
        try:
            if raw.endswith("%"):
                return cls.of(fraction=float(raw[:-1]) / 100)
            if raw.isdigit():
                return cls.of(count=int(raw))
            return cls.of(fraction=float(raw))
        except ValueError as exc:
            raise RoutingError(f"budget {text!r}: {exc}") from None

    @classmethod
    def of(cls, *, fraction: float | None = None, count: int | None = None) -> "Budget":
        if (fraction is None) == (count is None):
            raise ValueError("give the budget as a fraction or as a count, not both or neither")
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a fraction must be between 0 and 1, got {fraction}")
        if count is not None and count < 0:
            raise ValueError(f"a count cannot be negative, got {count}")
        return cls(fraction=fraction, count=count)

    def comparisons(self, n: int) -> int:
        if self.fraction is not None:
            return min(n, round(self.fraction * n))
        return min(n, self.count)


def _reasons(strategy, routing, problem, human, kept, budget) -> list[str]:
    reasons = []
    name = strategy.name
    for i in range(problem.n):
        if kept[i]:
            reasons.append("already human-labelled: stays human")
            continue
        if name in ("all_human", "all_lm"):
            reasons.append(f"{name}: {strategy.description}")
            continue
        score = routing.score[i]
        where = "within the budget" if human[i] else f"outside the budget of {budget}"
        detail = f"{routing.basis} {score:.3f}" if not np.isnan(score) else routing.basis
        if name == "judge_confidence":
            if np.isnan(problem.p_a[i]):
                detail = "no LM label"
            else:
                state = {0.0: "orders disagree", 1.0: "orders agree"}.get(
                    problem.consistent[i], "consistency unknown"
                )
                detail = f"LM {state}, |p_a - 0.5| = {abs(problem.p_a[i] - 0.5):.2f}"
        reasons.append(f"{name}: {detail}; {where}"[:300])
    return reasons


def _expected_accuracy(problem, human, options) -> float | None:
    """Expected agreement of the routed labels with human consensus: human-routed comparisons
    at the humans' measured accuracy (bought label vs the others' consensus), LM-routed ones at
    1 - P(LM wrong) from the cross-fitted classifier. None without enough labelled ones."""
    t = problem.targets
    if t.labelled.sum() < MIN_LABELLED:
        return None
    lm_rows = ~human
    p_right = np.ones(problem.n)
    if lm_rows.any():
        p_right[lm_rows] = 1.0 - STRATEGIES["learned"].scores(problem, lm_rows, options)[lm_rows]
    human_acc = float(np.nanmean(t.human_right[t.labelled]))
    return float(np.where(human, human_acc, p_right).mean())


def routing_run_create(
    *,
    project: Project,
    strategy: str,
    budget: Budget | None,
    primary_judge: str | None = None,
    seed: int = 0,
    user=None,
) -> RoutingRun:
    """Route the project's comparisons (gold quality-control items excepted) with `strategy`.

    Comparisons that already have human labels stay human and count against the budget; the
    strategy routes the rest into what the budget leaves. Writes a RoutingRun, one
    RoutingDecision per comparison and Comparison.route, in one transaction."""
    chosen = _strategy(strategy, budget)
    data = routing_inputs(project, primary_judge=primary_judge)
    n = len(data.ids)
    if n == 0:
        raise RoutingError(f"project {project.slug!r} has no comparisons to route")
    if chosen.learns and data.missing_features:
        raise RoutingError(
            f"{data.missing_features} of {n} comparisons have no features of version "
            f"{data.feature_version}; compute them first (manage.py route --features-only)"
        )
    routed = _route(chosen, data, _allowed(strategy, budget, n), seed=seed)
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # one routing at a time
        _keep_late_labels(routed, data.ids)
        run = _run_create(project, chosen, data, routed, budget=budget, seed=seed, user=user)
        _decisions_write(run, chosen, data.ids, routed)
        routes_write(data.ids, routed.human)
    return run


def _strategy(name: str, budget: Budget | None) -> Strategy:
    if name not in STRATEGIES:
        raise RoutingError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    if budget is None and name not in ("all_human", "all_lm"):
        raise RoutingError(f"strategy {name!r} needs a budget (a fraction or a count)")
    return STRATEGIES[name]


def _allowed(strategy: str, budget: Budget | None, n: int) -> int:
    """How many of the n comparisons may go to humans."""
    if strategy == "all_human":
        return n
    if strategy == "all_lm" or budget is None:
        return 0
    return budget.comparisons(n)


@dataclass
class _Routed:
    """A strategy's routing of a project, before it is written."""

    problem: RoutingProblem
    routing: Routing
    human: np.ndarray  # bool per comparison: routed to humans (kept ones included)
    kept: np.ndarray  # bool: stays human whatever the strategy says (labelled or being labelled)
    reasons: list[str]
    expected: float | None  # expected label accuracy
    allowed: int  # the budget in comparisons
    slots: int  # what the budget leaves to the strategy after the kept ones


def _route(chosen: Strategy, data: ProjectRouting, allowed: int, *, seed: int) -> _Routed:
    """Run the strategy on the comparisons not kept human, into what the budget leaves."""
    options = StrategyOptions(
        seed=seed,
        ppm_candidates=settings.ROUTING_PPM_CANDIDATES,
        simulated_candidates=settings.ROUTING_SIMULATED_CANDIDATES,
    )
    problem = problem_build(data.inputs, seed=seed, folds=settings.ROUTING_FOLDS)
    kept = data.human_labelled | data.being_labelled
    slots = max(0, allowed - int(kept.sum()))
    try:
        routing = chosen.route(problem, ~kept, slots, options)
        human = routing.human | kept
        expected = _expected_accuracy(problem, human, options)
    except StrategyError as exc:
        raise RoutingError(f"{chosen.name}: {exc}") from None
    reasons = _reasons(chosen, routing, problem, human, kept, allowed)
    for i in np.flatnonzero(data.being_labelled):
        reasons[i] = "being labelled (an annotator holds it): stays human"
    return _Routed(problem, routing, human, kept, reasons, expected, allowed, slots)


def _keep_late_labels(routed: _Routed, ids: np.ndarray) -> None:
    """Labels may have arrived while the strategy ran: those comparisons stay human too."""
    labelled_now = set(
        HumanLabel.objects.filter(comparison_id__in=ids[~routed.human].tolist())
        .values_list("comparison_id", flat=True)
        .distinct()
    )
    if not labelled_now:
        return
    late = np.isin(ids, list(labelled_now))
    routed.human |= late
    routed.kept = routed.kept | late
    for i in np.flatnonzero(late):
        routed.reasons[i] = "already human-labelled: stays human"


def _run_create(
    project: Project,
    chosen: Strategy,
    data: ProjectRouting,
    routed: _Routed,
    *,
    budget: Budget | None,
    seed: int,
    user,
) -> RoutingRun:
    n = len(data.ids)
    n_human = int(routed.human.sum())
    return RoutingRun.objects.create(
        project=project,
        strategy=chosen.name,
        strategy_version=chosen.version,
        feature_version=data.feature_version,
        primary_judge=data.primary_judge,
        budget_fraction=budget.fraction if budget else None,
        budget_count=budget.count if budget else None,
        budget=routed.allowed,
        labels_per_item=project.labels_per_item,
        total=n,
        human=n_human,
        lm=n - n_human,
        kept_human=int(routed.kept.sum()),
        human_label_cost=n_human * project.labels_per_item,
        expected_label_accuracy=routed.expected,
        options={"seed": seed, "folds": settings.ROUTING_FOLDS, "slots": routed.slots},
        summary={
            "labelled": int(routed.problem.targets.labelled.sum()),
            "over_budget": max(0, n_human - routed.allowed),
        },
        created_by=user,
    )


def _decisions_write(run: RoutingRun, chosen: Strategy, ids: np.ndarray, routed: _Routed) -> None:
    score = routed.routing.score
    decisions = [
        RoutingDecision(
            run=run,
            comparison_id=int(pk),
            route=DecidedRoute.HUMAN if routed.human[i] else DecidedRoute.LM,
            strategy=chosen.name,
            strategy_version=chosen.version,
            score=None if np.isnan(score[i]) else float(score[i]),
            reason=routed.reasons[i],
            budget=routed.allowed,
        )
        for i, pk in enumerate(ids.tolist())
    ]
    RoutingDecision.objects.bulk_create(decisions, batch_size=WRITE_BATCH)


def routes_write(ids: np.ndarray, human: np.ndarray) -> None:
    """Set Comparison.route (which the annotator queue reads), writing only the changed rows."""
    for route, mask in ((Route.HUMAN, human), (Route.LM, ~human)):
        chosen_ids = ids[mask].tolist()
        for start in range(0, len(chosen_ids), WRITE_BATCH):
            Comparison.objects.filter(id__in=chosen_ids[start : start + WRITE_BATCH]).exclude(
                route=route
            ).update(route=route)


# Fields that change a tagger's answers (with the prompts and dimensions): a change is a new
# version, hence a new feature-set version for the projects that use it.
TAGGER_VERSIONED_FIELDS = ("backend", "model_path", "gguf_file", "base_url", "model_name")


def tagger_version_of(tagger: Tagger) -> str:
    from routing.tagging import tagger_version

    config = {name: getattr(tagger, name) for name in TAGGER_VERSIONED_FIELDS}
    # The order dimensions are listed in changes nothing; the set does.
    config["dimensions"] = sorted(tagger.dimensions or [])
    return tagger_version(config)


@transaction.atomic
def tagger_save(*, tagger: Tagger) -> Tagger:
    """Validate and save a tagger configuration; its version follows what changes its answers."""
    tagger.version = tagger_version_of(tagger)
    tagger.updated_at = timezone.now()
    tagger.full_clean()
    tagger.save()
    return tagger


@transaction.atomic
def project_tagger_set(*, project: Project, tagger: Tagger | None) -> None:
    """Name the project's LM tagger (None: no LM tags). The project's feature rows then have a
    new feature-set version and are recomputed by the next features computation."""
    if tagger is None:
        ProjectTagger.objects.filter(project=project).delete()
        return
    ProjectTagger.objects.update_or_create(
        project=project, defaults={"tagger": tagger, "assigned_at": timezone.now()}
    )
