"""Live routing: a project's RoutingPolicy spends its human budget over time, in rounds.

A round (`policy_round`, run by a Celery task when labels commit and on beat):

1. takes the project's policy lock (a PostgreSQL advisory lock, `policy_lock`), so that rounds
   and changes of one project's policy run one at a time, while the policy row itself stays
   free for the label commits that queue the next round (they never wait for a round);
2. reads the project as it stands (routing.selectors.routing_inputs);
3. refits the router (routing.router) on the released comparisons that have their full human
   labels and an LM label, once `refit_every` more have completed, and stores it (skops);
4. when annotators are running out of released work, chooses the next batch
   (routing.online.round_release: round 0 is the seed draw, later rounds the comparisons most
   likely to carry a wrong LM label, from the project's router, its prior, or both);
5. writes a RoutingRun with one append-only decision per released comparison (round, router
   version, score, reason), sets their route to human, and adds their cost to the policy's
   committed labels, all in one transaction. The database refuses a comparison released twice by
   one policy (a unique index) and a commitment beyond the budget (a check constraint).

Comparisons that have an LM label and are not released keep it (route `lm`); comparisons the
judge has not labelled yet wait (`pending`) until it has.
"""

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotator.models import Comparison, Project, Route
from annotator.services import comparisons_label_more
from routing.adjudication import adjudication_needs
from routing.models import (
    BudgetUnit,
    DecidedRoute,
    DecisionPurpose,
    PolicyState,
    RoutingDecision,
    RoutingPolicy,
    RoutingRun,
)
from routing.online import OnlinePlan, cv_auc, round_release
from routing.priors import prior_model
from routing.problem import NONE, TIE, A, B, RoutingProblem, majority, problem_build, tag_strata
from routing.router import (
    RouterModel,
    router_dumps,
    router_fit,
    router_loads,
    router_score,
    router_sha256,
)
from routing.selectors import ProjectRouting, routing_inputs
from routing.services import routes_write
from routing.tasks import policy_round_task

logger = logging.getLogger(__name__)

POLICY_STRATEGY_VERSION = "1"


class PolicyError(ValueError):
    """A policy setting or state change that cannot be made."""


# --- settings and state -------------------------------------------------------------------


POLICY_FIELDS = (
    "strategy",
    "budget",
    "budget_unit",
    "seed_size",
    "seed_tag",
    "batch_size",
    "refit_every",
    "prior",
    "prior_threshold",
    "max_labels_per_item",
)


# The first key of the advisory locks held by live routing (the second is the project id); any
# fixed number no other part of the installation uses.
_POLICY_LOCK_SPACE = 0x68700016


def policy_lock(project_id: int) -> None:
    """Serialise this transaction with every round and change of the project's policy, until it
    ends. An advisory lock rather than the policy row's: a row lock held through a round would
    make each label commit wait for it (policy_round_queue updates that row). SQLite runs one
    writing transaction at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_POLICY_LOCK_SPACE, project_id])


def budget_in_labels(*, budget: int, unit: str, labels_per_item: int) -> int:
    """A budget in human labels: a comparison costs labels_per_item of them."""
    return budget * (labels_per_item if unit == BudgetUnit.COMPARISONS else 1)


@transaction.atomic
def policy_save(*, project: Project, **fields) -> RoutingPolicy:
    """Create or change the project's policy. The budget is held in labels (a comparison costs
    labels_per_item); it may not fall below what is already committed."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise PolicyError(f"not a policy setting: {', '.join(sorted(unknown))}")
    policy_lock(project.pk)
    policy = RoutingPolicy.objects.filter(project=project).first()
    created = policy is None
    if created:
        if "budget" not in fields:
            raise PolicyError("a new policy needs a budget")
        policy = RoutingPolicy(project=project, budget=fields["budget"], budget_labels=0)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.budget_labels = budget_in_labels(
        budget=policy.budget, unit=policy.budget_unit, labels_per_item=project.labels_per_item
    )
    if policy.budget_labels < policy.labels_committed:
        raise PolicyError(
            f"the budget ({policy.budget_labels} labels) is below what is already committed "
            f"({policy.labels_committed} labels)"
        )
    policy.updated_at = timezone.now()
    policy.full_clean(exclude=["project"])
    if created:
        policy.save()
    else:  # only what this call sets: round_queued belongs to the label commits
        policy.save(update_fields=[*fields, "budget_labels", "updated_at"])
    return policy


_MOVES = {
    "start": ({PolicyState.DRAFT, PolicyState.PAUSED}, PolicyState.RUNNING),
    "pause": ({PolicyState.RUNNING}, PolicyState.PAUSED),
}


def policy_state_set(*, project: Project, action: str) -> RoutingPolicy:
    """`start` (a draft or paused policy) or `pause` (a running one). Starting queues a round."""
    if action not in _MOVES:
        raise PolicyError(f"unknown action {action!r}; expected start or pause")
    allowed, target = _MOVES[action]
    with transaction.atomic():
        policy_lock(project.pk)
        policy = RoutingPolicy.objects.filter(project=project).first()
        if policy is None:
            raise PolicyError(f"project {project.slug!r} has no routing policy")
        if policy.state not in allowed:
            raise PolicyError(f"cannot {action} a policy that is {policy.state}")
        policy.state, policy.updated_at = target, timezone.now()
        policy.save(update_fields=["state", "updated_at"])
        if target == PolicyState.RUNNING:
            policy_round_queue(project_id=project.pk, countdown=0)
    return policy


def policy_round_queue(*, project_id: int, countdown: float | None = None) -> bool:
    """Queue one round of the project's running policy once this transaction commits; a burst
    of calls queues one (the policy's round_queued flag). True when this call queued it."""
    queued = RoutingPolicy.objects.filter(
        pk=project_id, state=PolicyState.RUNNING, round_queued=False
    ).update(round_queued=True)
    if queued:
        delay = settings.ROUTING_ROUND_DEBOUNCE_SECONDS if countdown is None else countdown
        transaction.on_commit(lambda: policy_round_task.apply_async((project_id,), countdown=delay))
    return bool(queued)


def policies_tick() -> int:
    """Queue a round of every running policy that has none queued; returns how many."""
    running = RoutingPolicy.objects.filter(state=PolicyState.RUNNING, round_queued=False)
    return sum(
        policy_round_queue(project_id=pk, countdown=0)
        for pk in running.values_list("pk", flat=True)
    )


# --- a round ------------------------------------------------------------------------------


@dataclass
class _Standing:
    """The project as a round finds it."""

    data: ProjectRouting
    problem: RoutingProblem
    released: np.ndarray  # bool: released by this policy before
    done: np.ndarray  # int: human labels it has
    complete: np.ndarray  # bool: released and with all the human labels it wants
    lm_wrong: np.ndarray  # float: 1 where the human majority contradicts the LM label (complete)
    candidates: np.ndarray  # bool: may be released now
    outstanding: int  # released comparisons still waiting for labels


@dataclass(frozen=True)
class RoundOutcome:
    round: int
    released: int
    adjudicated: int
    refitted: bool
    router_version: str
    run_id: int | None


def policy_round(*, project_id: int) -> RoundOutcome | None:
    """One round of the project's policy (see the module docstring); None when it is not
    running. Safe to run twice at once: the second waits for the first and sees its releases.
    A round that fails writes nothing and leaves its error on the policy."""
    # Cleared first, outside the round's transaction: a failed round must not leave the flag
    # set, or no later label would queue another.
    RoutingPolicy.objects.filter(pk=project_id).update(round_queued=False)
    try:
        with transaction.atomic():
            return _round(project_id)
    except Exception as exc:
        logger.exception("routing round of project %s failed", project_id)
        RoutingPolicy.objects.filter(pk=project_id).update(
            error=f"{type(exc).__name__}: {exc}"[:2000], last_round_at=timezone.now()
        )
        raise


def _round(project_id: int) -> RoundOutcome | None:
    policy_lock(project_id)
    policy = RoutingPolicy.objects.select_related("project", "prior").filter(pk=project_id).first()
    if policy is None or policy.state != PolicyState.RUNNING:
        return None
    standing = _standing(policy)
    model, refitted = _router(policy, standing)
    release, scores, basis = _choose(policy, standing, model, _round_size(policy, standing))
    per_item = policy.project.labels_per_item
    again, reasons = _adjudications(policy, standing, policy.labels_left - release.size * per_item)
    run = None
    if release.size or again.size:
        run = _round_write(policy, standing, release, scores, basis)
        _adjudications_write(policy, standing, run, again, reasons)
    _policy_update(policy, standing, model, release, cost=release.size * per_item + again.size)
    return RoundOutcome(
        round=policy.rounds,
        released=int(release.size),
        adjudicated=int(again.size),
        refitted=refitted,
        router_version=policy.router_version,
        run_id=run.pk if run else None,
    )


def _standing(policy: RoutingPolicy) -> _Standing:
    project = policy.project
    data = routing_inputs(project)
    problem = problem_build(data.inputs, seed=0)
    released_ids = set(
        RoutingDecision.objects.filter(policy=policy, purpose=DecisionPurpose.RELEASE).values_list(
            "comparison_id", flat=True
        )
    )
    released = np.isin(data.ids, list(released_ids))
    votes = data.inputs.votes
    done = (votes != NONE).sum(axis=1) if votes.size else np.zeros(len(data.ids), dtype=int)
    extra = dict(
        Comparison.objects.filter(id__in=list(released_ids), extra_labels__gt=0).values_list(
            "id", "extra_labels"
        )
    )
    wanted = project.labels_per_item + np.array([extra.get(int(pk), 0) for pk in data.ids])
    complete = released & (done >= wanted)
    lm_wrong = _lm_wrong(data.inputs.votes, data.inputs.lm_choice, complete)
    has_lm = np.isin(data.inputs.lm_choice, (A, B, TIE))
    candidates = ~released & ~data.human_labelled & ~data.being_labelled & has_lm
    return _Standing(
        data=data,
        problem=problem,
        released=released,
        done=done,
        complete=complete,
        lm_wrong=lm_wrong,
        candidates=candidates,
        outstanding=int((released & ~complete).sum()),
    )


def _lm_wrong(votes: np.ndarray, lm_choice: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """1 where the human majority (A or B) contradicts the LM label, 0 where it agrees, NaN where
    it cannot tell (not complete, a tie or a split vote)."""
    out = np.full(len(lm_choice), np.nan)
    for i in np.flatnonzero(complete):
        gold = majority(votes[i]) if votes.size else NONE
        if gold in (A, B):
            out[i] = float(lm_choice[i] != gold)
    return out


def _router(policy: RoutingPolicy, standing: _Standing) -> tuple[RouterModel | None, bool]:
    """The policy's own router, refitted when `refit_every` more released comparisons have
    completed since it was last fitted (stored on the policy)."""
    learned = np.flatnonzero(standing.complete & ~np.isnan(standing.lm_wrong))
    due = learned.size - policy.router_trained_on >= policy.refit_every or (
        policy.router is None and learned.size > 0
    )
    if not due:
        stored = policy.router
        if stored is None:
            return None, False
        return router_loads(bytes(stored), sha256=policy.router_sha256), False
    model = router_fit(standing.problem, learned, standing.lm_wrong[learned])
    data = router_dumps(model)
    policy.router, policy.router_sha256 = data, router_sha256(data)
    policy.router_version = policy.router_sha256[:12]
    policy.router_trained_on = int(learned.size)
    policy.router_auc = cv_auc(standing.problem, learned, standing.lm_wrong[learned], seed=0)
    return model, True


def _round_size(policy: RoutingPolicy, standing: _Standing) -> int:
    """Comparisons to release now: the seed in round 0; later, a batch once fewer than a batch
    of released comparisons still wait for labels (annotators never run dry, and the router
    never gets far ahead of what it has learned); never beyond the budget."""
    per_item = policy.project.labels_per_item
    affordable = policy.labels_left // per_item
    if policy.rounds == 0 and not standing.released.any():
        wanted = policy.seed_size
    elif standing.outstanding < policy.batch_size:
        wanted = policy.batch_size
    else:
        wanted = 0
    return int(min(wanted, affordable, standing.candidates.sum()))


def _choose(policy, standing: _Standing, model, k: int):
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), ""
    plan = OnlinePlan(
        seed_size=policy.seed_size,
        batch_size=policy.batch_size,
        refit_every=policy.refit_every,
        seed_strata=(
            tag_strata(standing.data.inputs, policy.seed_tag) if policy.seed_tag else None
        ),
        prior=prior_model(policy.prior) if policy.prior_id else None,
        prior_threshold=policy.prior_threshold,
        seed=policy.rounds,
    )
    n_own = int((standing.complete & ~np.isnan(standing.lm_wrong)).sum())
    return round_release(
        standing.problem,
        candidates=standing.candidates,
        k=k,
        round_index=policy.rounds,
        own=model if policy.strategy == "learned" else None,
        plan=plan,
        n_own=n_own,
    )


def _adjudications(policy, standing: _Standing, labels_left: int) -> tuple[np.ndarray, list[str]]:
    """Released comparisons with all their labels that deserve one more (routing.adjudication),
    as many as the budget left allows."""
    if not policy.max_labels_per_item or labels_left <= 0:
        return np.zeros(0, dtype=np.int64), []
    inputs = standing.data.inputs
    chosen, reasons = adjudication_needs(
        votes=inputs.votes,
        lm_choice=inputs.lm_choice,
        p_a=inputs.p_a,
        consistent=inputs.consistent,
        eligible=standing.complete,
        done=standing.done,
        cap=policy.max_labels_per_item,
    )
    return chosen[:labels_left], reasons[:labels_left]


def _adjudications_write(policy, standing: _Standing, run, chosen, reasons) -> None:
    ids = standing.data.ids[chosen].tolist()
    RoutingDecision.objects.bulk_create(
        RoutingDecision(
            run=run,
            comparison_id=pk,
            route=DecidedRoute.HUMAN,
            strategy=run.strategy,
            strategy_version=run.strategy_version,
            reason=f"round {policy.rounds}: {reason}"[:300],
            budget=policy.budget_labels,
            policy=policy,
            round=policy.rounds,
            router_version=policy.router_version,
            purpose=DecisionPurpose.ADJUDICATE,
            labels=1,
        )
        for pk, reason in zip(ids, reasons, strict=True)
    )
    comparisons_label_more(comparison_ids=ids)


def _round_write(policy, standing: _Standing, release, scores, basis: str) -> RoutingRun:
    project = policy.project
    ids = standing.data.ids[release]
    per_item = project.labels_per_item
    run = RoutingRun.objects.create(
        project=project,
        strategy=f"live:{policy.strategy}",
        strategy_version=POLICY_STRATEGY_VERSION,
        feature_version=standing.data.feature_version,
        primary_judge=standing.data.primary_judge,
        budget_count=int(release.size),
        budget=int(release.size),
        labels_per_item=per_item,
        total=int(release.size),
        human=int(release.size),
        human_label_cost=int(release.size) * per_item,
        options={"round": policy.rounds, "router_version": policy.router_version},
        summary={"basis": basis, "outstanding_before": standing.outstanding},
    )
    RoutingDecision.objects.bulk_create(
        RoutingDecision(
            run=run,
            comparison_id=int(pk),
            route=DecidedRoute.HUMAN,
            strategy=run.strategy,
            strategy_version=run.strategy_version,
            score=None if np.isnan(score) else float(score),
            reason=f"round {policy.rounds}: {basis}"[:300],
            budget=policy.budget_labels,
            policy=policy,
            round=policy.rounds,
            router_version=policy.router_version,
            purpose=DecisionPurpose.RELEASE,
            labels=per_item,
        )
        for pk, score in zip(ids.tolist(), scores.tolist(), strict=True)
    )
    routes_write(ids, np.ones(ids.size, dtype=bool))
    return run


def _policy_update(policy: RoutingPolicy, standing: _Standing, model, release, *, cost) -> None:
    """The round's labels charged to the budget (the database refuses going beyond it), the
    router and the figures; the LM label stands for the rest of what the judge labelled."""
    per_item = policy.project.labels_per_item
    rest = np.setdiff1d(standing.data.ids[standing.candidates], standing.data.ids[release])
    Comparison.objects.filter(id__in=rest.tolist(), route=Route.PENDING).update(route=Route.LM)
    cost = int(cost)
    spent = policy.budget_labels - (policy.labels_committed + cost) < per_item
    RoutingPolicy.objects.filter(pk=policy.pk).update(
        labels_committed=F("labels_committed") + cost,
        rounds=F("rounds") + (1 if cost else 0),
        state=PolicyState.SPENT if spent else policy.state,
        router=policy.router,
        router_sha256=policy.router_sha256,
        router_version=policy.router_version,
        router_trained_on=policy.router_trained_on,
        router_auc=policy.router_auc,
        expected_label_accuracy=_expected_accuracy(standing, model),
        last_round_at=timezone.now(),
        error="",
    )


def _expected_accuracy(standing: _Standing, model) -> float | None:
    """The project's label accuracy as it stands: human-labelled comparisons at the humans'
    agreement with their majority, the others at 1 - P(LM label wrong) from the router. None
    before the router has learned anything."""
    if model is None:
        return None
    problem, data = standing.problem, standing.data
    votes = data.inputs.votes
    humans = np.flatnonzero(data.human_labelled)
    agree = [
        float(np.mean(votes[i][votes[i] != NONE] == majority(votes[i])))
        for i in humans
        if majority(votes[i]) in (A, B)
    ]
    human_acc = float(np.mean(agree)) if agree else 1.0
    rest = np.flatnonzero(~data.human_labelled)
    p_right = 1.0 - router_score(model, problem, rest) if rest.size else np.zeros(0)
    n = humans.size + rest.size
    return round((human_acc * humans.size + float(p_right.sum())) / n, 4) if n else None
