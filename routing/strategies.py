"""Routing strategies: pure functions from a RoutingProblem (and, for the learning ones, the labels
it holds) to a routing. No ORM; every strategy has a version, stored with each decision.

A strategy routes the `candidates` (a boolean mask over the problem's comparisons) under a
budget of `budget` human comparisons and returns which candidates go to humans and each one's
score (higher: humans first). Ranking strategies also expose their scores alone, so that an
evaluation over many budgets ranks once.

Strategies that learn from labels are cross-fitted: the labelled comparisons are split into the
problem's folds, and a comparison of fold g is scored only by a model fitted on the other folds;
comparisons without labels are scored by a model fitted on all labelled ones. No comparison is
ever scored by a model that saw its label.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from routing.ppm import algorithm1_select, extend_bins, ppm_train, tag_counts
from routing.problem import RoutingProblem
from routing.router import router_fit, router_score

# Fewest labelled comparisons a learning strategy trains on.
MIN_LABELLED = 10


class StrategyError(ValueError):
    """A strategy cannot route this problem (e.g. too few labelled comparisons to learn from)."""


@dataclass
class Routing:
    human: np.ndarray  # bool (n,): routed to humans
    score: np.ndarray  # float (n,): priority for humans, NaN outside the candidates
    basis: str  # what the score means, for the decisions' reasons


@dataclass(frozen=True)
class StrategyOptions:
    seed: int = 0
    ppm_candidates: int = 300
    simulated_candidates: int = 500
    threads: int = 1
    # Fitted models by (strategy, problem, fold): an evaluation routes the same problem at many
    # budgets, and a PPM does not depend on the budget. Not part of the options' identity.
    memo: dict = field(default_factory=dict, compare=False, repr=False)


def top_k(score: np.ndarray, candidates: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The k candidates with the highest scores, ties broken at random (seeded): a stable order
    would otherwise favour whatever the input order correlates with."""
    idx = np.flatnonzero(candidates)
    k = min(max(int(k), 0), idx.size)
    human = np.zeros(candidates.shape[0], dtype=bool)
    if k == 0:
        return human
    jitter = np.random.default_rng([seed, 7]).random(idx.size)
    order = np.lexsort((jitter, -score[idx]))
    human[idx[order[:k]]] = True
    return human


def cross_fit(
    problem: RoutingProblem,
    candidates: np.ndarray,
    fit: Callable[[np.ndarray], object],
    predict: Callable[[object, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Scores for the candidates, each from a model fitted without it (see module docstring).
    `fit(train_indices)` returns a model; `predict(model, indices)` its scores."""
    labelled = require_labelled(problem)
    score = np.full(problem.n, np.nan)
    for group in np.unique(problem.folds[candidates]):
        train = np.flatnonzero(labelled & (problem.folds != group))
        rows = np.flatnonzero(candidates & (problem.folds == group))
        model = fit(train)
        score[rows] = predict(model, rows)
    return score


def require_labelled(problem: RoutingProblem) -> np.ndarray:
    labelled = problem.targets.labelled
    if labelled.sum() < MIN_LABELLED:
        raise StrategyError(
            f"needs at least {MIN_LABELLED} comparisons with both a human and an LM label "
            f"(a human consensus to learn from); this project has {int(labelled.sum())}"
        )
    return labelled


# --- strategies without labels ------------------------------------------------------------


def all_human(problem, candidates, budget, options) -> Routing:
    return Routing(candidates.copy(), np.where(candidates, 1.0, np.nan), "every comparison")


def all_lm(problem, candidates, budget, options) -> Routing:
    return Routing(
        np.zeros(problem.n, dtype=bool), np.where(candidates, 0.0, np.nan), "no comparison"
    )


def random_score(problem, candidates, options) -> np.ndarray:
    rng = np.random.default_rng([options.seed, 11])
    return np.where(candidates, rng.random(problem.n), np.nan)


def judge_confidence_score(problem, candidates, options) -> np.ndarray:
    """Least trustworthy LM label first: no LM label, then order-inconsistent labels, then
    labels of unknown consistency, then consistent ones; within each, least confident first."""
    unsure = 0.5 - np.abs(problem.p_a - 0.5)  # in [0, 0.5], NaN without a label
    level = np.where(np.isnan(problem.consistent), 1.0, np.where(problem.consistent == 0, 2.0, 0.0))
    score = np.where(np.isnan(problem.p_a), 3.0, level + np.nan_to_num(unsure))
    return np.where(candidates, score, np.nan)


# --- learned: a classifier of "the LM label disagrees with the human label" ---------------


def learned_score(problem, candidates, options) -> np.ndarray:
    """P(the LM label is wrong) from routing.router, cross-fitted over the labelled comparisons."""
    lm_wrong = 1.0 - problem.targets.lm_right

    def fit(train):
        return router_fit(problem, train, lm_wrong[train], seed=options.seed)

    return cross_fit(
        problem, candidates, fit, lambda model, rows: router_score(model, problem, rows)
    )


# --- HyPER: the performance prediction model ---------------------------------------------


def _ppm_fit(problem, options, bins_ext):
    t = problem.targets

    def fit(train):
        key = ("ppm", id(problem), hashlib.blake2b(train.tobytes()).hexdigest())
        if key not in options.memo:
            rng = np.random.default_rng([options.seed, 13, train.size])
            options.memo[key] = ppm_train(
                bins_ext[train],
                problem.n_tags,
                t.human_right[train],
                t.lm_right[train],
                n_candidates=options.ppm_candidates,
                rng=rng,
            )
        return options.memo[key]

    return fit


def hyper_topk_score(problem, candidates, options) -> np.ndarray:
    """Per-comparison gain PPM(v_i) - PPM(0), with v_i the comparison's own tags."""
    bins_ext = extend_bins(problem.bins, problem.n_tags)
    n_set = max(int(candidates.sum()), 1)
    return cross_fit(
        problem,
        candidates,
        _ppm_fit(problem, options, bins_ext),
        lambda ppm, rows: ppm.gains(bins_ext[rows], n_set),
    )


def hyper_simulated(problem, candidates, budget, options) -> Routing:
    """Sample candidate routings by Algorithm 1 at the budget, score them with the PPM, keep the
    best. Cross-fitted: each fold's comparisons are routed, with the fold's share of the budget,
    by a PPM fitted on the other folds."""
    bins_ext = extend_bins(problem.bins, problem.n_tags)
    fit = _ppm_fit(problem, options, bins_ext)
    labelled = require_labelled(problem)
    groups = np.unique(problem.folds[candidates])
    members = [np.flatnonzero(candidates & (problem.folds == g)) for g in groups]
    shares = _split_budget(budget, [m.size for m in members])
    human = np.zeros(problem.n, dtype=bool)
    score = np.full(problem.n, np.nan)
    for group, rows, k in zip(groups, members, shares, strict=True):
        ppm = fit(np.flatnonzero(labelled & (problem.folds != group)))
        rng = np.random.default_rng([options.seed, 17, int(group) + 1])
        sub = bins_ext[rows]
        chosen = [
            algorithm1_select(sub, problem.n_tags, k, rng)
            for _ in range(options.simulated_candidates)
        ]
        if not chosen:
            continue
        counts = np.stack([tag_counts(sub, c, problem.n_tags, rows.size) for c in chosen])
        predicted = ppm.predict(counts)
        best = int(np.argmax(predicted))
        human[rows[chosen[best]]] = True
        score[rows] = predicted[best]
    return Routing(human, score, "predicted label accuracy of the best sampled routing")


def _split_budget(budget: int, sizes: list[int]) -> list[int]:
    """The budget over groups in proportion to their sizes (largest remainder)."""
    total = sum(sizes)
    if total == 0:
        return [0] * len(sizes)
    budget = min(budget, total)
    exact = [budget * s / total for s in sizes]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(sizes)), key=lambda i: exact[i] - shares[i], reverse=True):
        if sum(shares) >= budget:
            break
        if shares[i] < sizes[i]:
            shares[i] += 1
    return shares


# --- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    name: str
    version: str
    description: str
    basis: str = ""
    score: Callable | None = None  # ranking strategies: (problem, candidates, options) -> scores
    route_fn: Callable | None = None  # others: (problem, candidates, budget, options) -> Routing
    learns: bool = False

    def route(
        self, problem: RoutingProblem, candidates: np.ndarray, budget: int, options
    ) -> Routing:
        with _threads(options):
            if self.route_fn is not None:
                return self.route_fn(problem, candidates, budget, options)
            score = self.score(problem, candidates, options)
        return Routing(top_k(score, candidates, budget, options.seed), score, self.basis)

    def scores(self, problem: RoutingProblem, candidates: np.ndarray, options) -> np.ndarray:
        """A ranking strategy's scores alone (route = top-k of them)."""
        with _threads(options):
            return self.score(problem, candidates, options)


def _threads(options):
    """Limit BLAS/OpenMP threads: the models here are small, and spinning OpenMP threads on
    cores that the web, the workers and the database also use made fits far slower than one
    thread (bench/README.md, "Routing")."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(options.threads)


STRATEGIES = {
    s.name: s
    for s in (
        Strategy(
            "all_human", "1", "every comparison to humans (ignores the budget)", route_fn=all_human
        ),
        Strategy("all_lm", "1", "every comparison keeps the LM label", route_fn=all_lm),
        Strategy("random", "1", "a seeded random sample", "random draw", score=random_score),
        Strategy(
            "judge_confidence",
            "1",
            "least confident LM labels first, order-inconsistent before consistent",
            "LM label's untrustworthiness (no label 3, inconsistent 2+, unknown 1+, "
            "consistent 0+; plus 0.5-|p_a-0.5|)",
            score=judge_confidence_score,
        ),
        Strategy(
            "learned",
            "1",
            "a classifier of LM-human disagreement, cross-fitted",
            "predicted probability that the LM label disagrees with humans",
            score=learned_score,
            learns=True,
        ),
        Strategy(
            "hyper_topk",
            "1",
            "HyPER top-k: per-comparison gain predicted by the PPM, cross-fitted",
            "PPM gain of routing it alone",
            score=hyper_topk_score,
            learns=True,
        ),
        Strategy(
            "hyper_simulated",
            "1",
            "HyPER simulated: the best of sampled routings under the PPM, cross-fitted",
            route_fn=hyper_simulated,
            learns=True,
        ),
    )
}
