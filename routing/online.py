"""Online routing: the live loop's decisions as pure functions, and its replay on a labelled
project (the evaluation's online protocol; docs/architecture.md, "Evaluating a router"). Pure
numpy; no ORM.

The loop spends a human budget in rounds. Round 0 releases a seed (a seeded random draw, or one
stratified by a tag); every later round releases the comparisons that the router ranks first.
The router (routing.router) is refitted on the comparisons released so far, from the label that
the routed set holds for each (the bought human label), and never sees a label of a comparison
it has not released. Before the project has its own labels, a prior (a router fitted on other
projects) ranks, or, without one, the judge's confidence does.

The live loop (routing's policy task) calls `round_release` with the project's current own
model; `online_routing` replays the same loop on a labelled problem.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from routing.problem import RoutingProblem
from routing.router import (
    TRANSFERABLE_COLUMNS,
    RouterModel,
    bought_lm_wrong,
    features,
    router_fit,
    router_fit_matrix,
    router_predict,
    router_score,
    single_thread,
)
from routing.strategies import judge_confidence_score


@dataclass(frozen=True)
class OnlinePlan:
    """How the loop spends its budget. Sizes count comparisons."""

    seed_size: int  # comparisons released in the seed round (round 0)
    batch_size: int  # comparisons per later round
    refit_every: int  # refit the router after this many newly bought comparisons
    # Per comparison a stratum code (-1: none, itself one stratum) for a seed drawn in
    # proportion to the strata among the candidates; None: a plain random seed.
    seed_strata: np.ndarray | None = field(default=None, compare=False)
    prior: RouterModel | None = None  # a router fitted on other projects (TRANSFERABLE_COLUMNS)
    # Own bought comparisons (with a decided LM label) at which the project's own router takes
    # over from the prior; below it the two are blended, the own router's weight growing
    # linearly with its labels (n_own / prior_threshold).
    prior_threshold: int = 50
    seed: int = 0


@dataclass
class OnlineResult:
    """A replay of the loop over a problem's comparisons (n)."""

    human: np.ndarray  # bool: released to humans
    round: np.ndarray  # int: the round that released it, -1 not released
    score: np.ndarray  # float: its priority when released (NaN: not released)
    order: np.ndarray  # int: its position in the release order, -1 not released
    bases: list[str]  # per round, what its scores were
    fits: list[int]  # per refit, the own labels it was fitted on


def seed_order(candidates: np.ndarray, *, seed: int, strata: np.ndarray | None) -> np.ndarray:
    """The candidates' indices in seed order: a seeded random permutation or, with `strata`, an
    order whose every prefix holds each stratum in proportion to its share of the candidates
    (each member's key is (its random rank in its stratum + a uniform) / the stratum's size)."""
    idx = np.flatnonzero(candidates)
    rng = np.random.default_rng([seed, 23])
    if strata is None:
        return rng.permutation(idx)
    codes = np.asarray(strata)[idx]
    key = np.empty(idx.size)
    for code in np.unique(codes):
        members = np.flatnonzero(codes == code)
        ranks = rng.permutation(members.size)
        key[members] = (ranks + rng.random(members.size)) / members.size
    return idx[np.argsort(key, kind="stable")]


def round_scores(
    problem: RoutingProblem,
    candidates: np.ndarray,
    *,
    own: RouterModel | None,
    plan: OnlinePlan,
    n_own: int,
) -> tuple[np.ndarray, str]:
    """Priority for humans of each candidate (NaN elsewhere) and a short basis text for the
    decisions' reasons: P(LM label wrong) from the project's own router (`own`, fitted on
    `n_own` bought labels), from the plan's prior, or from the two blended while the own labels
    are fewer than `plan.prior_threshold`; with neither (or an own router that has seen one
    class only), the judge_confidence order."""
    if own is not None and own.estimator is None:
        own = None  # one class seen so far: a constant, which ranks nothing
    rows = np.flatnonzero(candidates)
    score = np.full(problem.n, np.nan)
    weight = _own_weight(own, plan, n_own)
    if own is None and plan.prior is None:
        return judge_confidence_score(problem, candidates, None), (
            "no router yet: the LM label's untrustworthiness (judge_confidence)"
        )
    p = 0.0
    if weight > 0:
        p = p + weight * router_score(own, problem, rows)
    if weight < 1:
        p = p + (1 - weight) * router_score(plan.prior, problem, rows)
    score[rows] = p
    return score, _basis(weight, n_own)


def _own_weight(own: RouterModel | None, plan: OnlinePlan, n_own: int) -> float:
    """The own router's share of the score: 1 without a prior, 0 without an own router."""
    if own is None:
        return 0.0
    if plan.prior is None:
        return 1.0
    return min(1.0, n_own / max(plan.prior_threshold, 1))


def _basis(weight: float, n_own: int) -> str:
    if weight == 1:
        return f"P(LM label wrong) from the project's router ({n_own} bought labels)"
    if weight == 0:
        return "P(LM label wrong) from the prior router (no own labels yet)"
    return (
        f"P(LM label wrong): {weight:.0%} the project's router ({n_own} bought labels), "
        f"{1 - weight:.0%} the prior"
    )


def round_release(
    problem: RoutingProblem,
    *,
    candidates: np.ndarray,
    k: int,
    round_index: int,
    own: RouterModel | None,
    plan: OnlinePlan,
    n_own: int,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(indices to release, in release order; their scores; basis). Round 0 is the seed draw
    (the first k of `seed_order`, scored 0: chosen by lot, not by rank); later rounds the top-k
    candidates of `round_scores`, ties broken at random (seeded by the plan's seed and the
    round)."""
    k = max(0, min(int(k), int(np.count_nonzero(candidates))))
    if round_index == 0:
        chosen = seed_order(candidates, seed=plan.seed, strata=plan.seed_strata)[:k]
        basis = "seed: stratified random draw" if plan.seed_strata is not None else "seed: draw"
        return chosen, np.zeros(chosen.size), basis
    score, basis = round_scores(problem, candidates, own=own, plan=plan, n_own=n_own)
    idx = np.flatnonzero(candidates)
    jitter = np.random.default_rng([plan.seed, 7, round_index]).random(idx.size)
    chosen = idx[np.lexsort((jitter, -score[idx]))[:k]]
    return chosen, score[chosen], basis


def online_routing(
    problem: RoutingProblem,
    *,
    budget: int,
    plan: OnlinePlan,
    candidates: np.ndarray | None = None,
) -> OnlineResult:
    """Replays the live loop: rounds until `budget` comparisons are released (the seed counts),
    every label bought as soon as it is released. The router is refitted (router_fit) whenever
    `plan.refit_every` comparisons have been bought since the last fit, only on comparisons it
    has released, seeing for each only the label the routed set would contain (the bought
    label, never the held-out gold) and never any label of a comparison it has not released.
    Each prefix of the release order is the release of a smaller budget (the rounds do not
    depend on the budget)."""
    replay = _Replay(problem, plan, candidates)
    with single_thread():
        while replay.released < budget and replay.open.any():
            replay.step(budget)
    return replay.result


class _Replay:
    """The loop's state during a replay: what is released, the own router, the labels bought
    since it was fitted."""

    def __init__(self, problem: RoutingProblem, plan: OnlinePlan, candidates):
        n = problem.n
        self.problem, self.plan = problem, plan
        self.open = np.ones(n, dtype=bool) if candidates is None else candidates.copy()
        self.lm_wrong = bought_lm_wrong(problem)
        self.own: RouterModel | None = None
        self.n_own = 0
        self.unfitted = 0
        self.released = 0
        self.result = OnlineResult(
            human=np.zeros(n, dtype=bool),
            round=np.full(n, -1, dtype=np.int32),
            score=np.full(n, np.nan),
            order=np.full(n, -1, dtype=np.int64),
            bases=[],
            fits=[],
        )

    def step(self, budget: int) -> None:
        index = len(self.result.bases)
        size = max(self.plan.seed_size, 0) if index == 0 else max(self.plan.batch_size, 1)
        k = min(size, budget - self.released)
        chosen, scores, basis = round_release(
            self.problem,
            candidates=self.open,
            k=k,
            round_index=index,
            own=self.own,
            plan=self.plan,
            n_own=self.n_own,
        )
        r = self.result
        r.human[chosen], r.round[chosen], r.score[chosen] = True, index, scores
        r.order[chosen] = self.released + np.arange(chosen.size)
        r.bases.append(basis)
        self.open[chosen] = False
        self.released += chosen.size
        self.unfitted += chosen.size
        if self.unfitted >= max(self.plan.refit_every, 1) and self.released < budget:
            self._refit()

    def _refit(self) -> None:
        """Fit on every released comparison with a bought A/B label (router_fit leaves out
        those whose LM label is undecided)."""
        rows = np.flatnonzero(self.result.human & ~np.isnan(self.lm_wrong))
        self.own = router_fit(self.problem, rows, self.lm_wrong[rows], seed=self.plan.seed)
        self.n_own = self.own.n_train
        self.unfitted = 0
        self.result.fits.append(self.n_own)


# --- the router's quality, and priors ------------------------------------------------------


def cv_auc(
    problem: RoutingProblem,
    rows: np.ndarray,
    lm_wrong: np.ndarray,
    *,
    seed: int = 0,
    folds: int = 5,
) -> float | None:
    """Cross-validated AUC of "LM label wrong" of the router fitted on `rows` (`lm_wrong`
    aligned with them, NaN: unknown): each comparison scored by a router (router_fit) fitted on
    the other folds (stratified), one AUC over all of them. None while either class has fewer
    than `folds` members."""
    lm_wrong = np.asarray(lm_wrong, dtype=float)
    keep = ~problem.lm_undecided[rows] & ~np.isnan(lm_wrong)
    rows = rows[keep]
    names = tuple(problem.columns)
    return _matrix_cv_auc(features(problem, rows, names), lm_wrong[keep], names, seed, folds)


def _matrix_cv_auc(
    X: np.ndarray,
    y: np.ndarray,
    names: tuple[str, ...],
    seed: int,
    folds: int,
    *,
    linear_only: bool = False,
) -> float | None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = y.astype(int)
    if min(np.count_nonzero(y == 0), np.count_nonzero(y == 1)) < max(folds, 2):
        return None
    predicted = np.empty(y.size)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    with single_thread():
        for train, test in split:
            model = router_fit_matrix(X[train], y[train], names, seed, linear_only=linear_only)
            at = [names.index(name) for name in model.columns]
            predicted[test] = router_predict(model, X[test][:, at])
    return float(roc_auc_score(y, predicted))


def prior_fit(
    problems: Sequence[RoutingProblem], *, seed: int = 0, folds: int = 5
) -> tuple[RouterModel, dict]:
    """A prior: one router fitted on the bought labels (`bought_lm_wrong`) of several labelled
    problems (other projects), on TRANSFERABLE_COLUMNS only, and its metrics: `n` (comparisons
    learned from), `problems`, `columns` (those it uses), `lm_wrong_rate`, and the AUC of "LM
    label wrong" on comparisons it did not learn from. With two problems or more the AUC is
    leave-one-problem-out (each problem scored by a prior fitted on the others: how it ranks
    within a project it has never seen), `auc` their mean and `auc_per_problem` each (None
    where a problem has one class); with one problem, `folds`-fold cross-validation within it."""
    parts = [_prior_part(problem) for problem in problems]
    X = np.vstack([x for x, _ in parts]) if parts else np.zeros((0, len(TRANSFERABLE_COLUMNS)))
    y = np.concatenate([y for _, y in parts]) if parts else np.zeros(0)
    with single_thread():
        model = router_fit_matrix(X, y, TRANSFERABLE_COLUMNS, seed, linear_only=True)
        metrics = {
            "n": int(y.size),
            "problems": len(parts),
            "columns": list(model.columns),
            "lm_wrong_rate": float(y.mean()) if y.size else None,
        }
        if len(parts) > 1:
            metrics.update(_leave_one_problem_out(parts, seed))
        elif parts:
            auc = _matrix_cv_auc(X, y, TRANSFERABLE_COLUMNS, seed, folds, linear_only=True)
            metrics.update({"auc": auc, "validation": f"{folds}-fold"})
    return model, metrics


def _prior_part(problem: RoutingProblem) -> tuple[np.ndarray, np.ndarray]:
    """A problem's transferable features and targets, on its comparisons with a bought A/B
    label and a decided LM label."""
    lm_wrong = bought_lm_wrong(problem)
    rows = np.flatnonzero(~np.isnan(lm_wrong) & ~problem.lm_undecided)
    return features(problem, rows, TRANSFERABLE_COLUMNS), lm_wrong[rows]


def _leave_one_problem_out(parts: list[tuple[np.ndarray, np.ndarray]], seed: int) -> dict:
    from sklearn.metrics import roc_auc_score

    aucs: list[float | None] = []
    for k, (X_k, y_k) in enumerate(parts):
        others = [part for j, part in enumerate(parts) if j != k]
        model = router_fit_matrix(
            np.vstack([x for x, _ in others]),
            np.concatenate([y for _, y in others]),
            TRANSFERABLE_COLUMNS,
            seed,
            linear_only=True,
        )
        one_class = y_k.size == 0 or y_k.min() == y_k.max()
        at = [TRANSFERABLE_COLUMNS.index(name) for name in model.columns]
        scored = None if one_class else router_predict(model, X_k[:, at])
        aucs.append(None if one_class else float(roc_auc_score(y_k.astype(int), scored)))
    known = [a for a in aucs if a is not None]
    return {
        "auc": float(np.mean(known)) if known else None,
        "auc_per_problem": aucs,
        "validation": "leave one problem out",
    }
