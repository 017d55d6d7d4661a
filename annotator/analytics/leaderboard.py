"""Model leaderboard: a Bradley-Terry fit with ties by Davidson's model, with bootstrap intervals.

Davidson (1970): for models i and j with strengths pi = exp(theta),

    P(i beats j) = pi_i / D,  P(tie) = nu * sqrt(pi_i * pi_j) / D,
    D = pi_i + pi_j + nu * sqrt(pi_i * pi_j),

with one tie parameter nu >= 0 for all pairs (nu = 0 is plain Bradley-Terry). Ties are modelled,
not counted as half a win. The likelihood depends on the data only through the counts of
(model A, model B, outcome) cells, so it is fitted on those counts by maximum likelihood
(Newton's method: it is concave) with a tiny ridge (1e-4 x the number of comparisons) that
fixes the scale's origin and keeps a model that never lost finite.

Bootstrap: resampling comparisons only changes the cell counts, so a resample is multinomial over
the cells (as in Chatbot Arena's bootstrap, without touching rows), and all resamples are
fitted together, warm-started at the point estimate: one batched Newton step (einsum for the
gradients and Hessians, one batched solve) per iteration for all of them.

Scores are reported on Chatbot Arena's Elo-like scale: 1000 + 400 / ln(10) * theta, with theta
centred to mean 0 over the models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from annotator.analytics.agreement import percentile_interval

ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)
RIDGE = 1e-4
A_WINS, B_WINS, TIE = 0, 1, 2


def outcome_cells(
    model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, n_models: int
) -> np.ndarray:
    """Counts per (i, j, outcome) with i < j, as an array (pairs, 5): i, j, i wins, j wins, ties.

    Comparisons of a model with itself, or with an unknown model (index < 0), are left out.
    """
    model_a, model_b = np.asarray(model_a, np.int64), np.asarray(model_b, np.int64)
    outcome = np.asarray(outcome, np.int64)
    keep = (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
    model_a, model_b, outcome = model_a[keep], model_b[keep], outcome[keep]
    swap = model_a > model_b
    low = np.where(swap, model_b, model_a)
    high = np.where(swap, model_a, model_b)
    # In (low, high) terms: A winning while swapped means the high model won.
    won = np.where(outcome == TIE, 2, np.where(swap, 1 - outcome, outcome))
    flat = np.bincount((low * n_models + high) * 3 + won, minlength=n_models * n_models * 3)
    table = flat.reshape(n_models, n_models, 3)
    i, j = np.nonzero(table.sum(axis=2))
    return np.column_stack([i, j, table[i, j]]).astype(np.int64)


def _features(cells: np.ndarray, m: int) -> np.ndarray:
    """(pairs, 3 outcomes, m + 1 parameters): each outcome's logit is features @ params, with
    logits theta_i, theta_j and log(nu) + (theta_i + theta_j) / 2."""
    pairs = cells.shape[0]
    features = np.zeros((pairs, 3, m + 1))
    rows = np.arange(pairs)
    features[rows, 0, cells[:, 0]] = 1.0
    features[rows, 1, cells[:, 1]] = 1.0
    features[rows, 2, cells[:, 0]] = 0.5
    features[rows, 2, cells[:, 1]] = 0.5
    features[:, 2, m] = 1.0
    return features


def _log_likelihood(params, features, counts, ridge):
    pairs, outcomes, d = features.shape
    logits = (params @ features.reshape(pairs * outcomes, d).T).reshape(-1, pairs, outcomes)
    top = logits.max(axis=2, keepdims=True)
    log_p = logits - top - np.log(np.exp(logits - top).sum(axis=2, keepdims=True))
    penalty = 0.5 * ridge[:, 0] * (params**2).sum(axis=1)
    return (counts * log_p).sum(axis=(1, 2)) - penalty, log_p


def davidson_fit(
    cells: np.ndarray,
    counts: np.ndarray,
    n_models: int,
    start: np.ndarray | None = None,
    max_iterations: int = 100,
) -> np.ndarray:
    """Fit theta and log(nu) for each row of `counts` (resamples, pairs, 3) by Newton's method,
    all resamples at once (the log-likelihood is concave: each outcome's probability is a
    softmax of logits linear in the parameters). Returns (resamples, n_models + 1), theta
    centred to mean 0. A ridge of RIDGE x comparisons per resample on every parameter keeps the
    Hessian definite (theta's origin, a model that never lost, data without ties)."""
    counts = np.asarray(counts, dtype=np.float64)
    b, m = counts.shape[0], n_models
    features = _features(np.asarray(cells)[:, :2].astype(np.int64), m)
    totals = counts.sum(axis=2)  # (b, pairs)
    ridge = RIDGE * np.maximum(totals.sum(axis=1, keepdims=True), 1.0)  # (b, 1)
    params = np.zeros((b, m + 1)) if start is None else np.tile(start, (b, 1)).astype(float)
    identity = np.eye(m + 1)
    pairs, d = features.shape[0], m + 1
    flat_features = features.reshape(pairs * 3, d)
    # Per (pair, outcome): the outer product of its feature vector, for the Hessian as a matmul.
    feature_outer = np.einsum("qd,qe->qde", flat_features, flat_features).reshape(pairs * 3, d * d)
    current, log_p = _log_likelihood(params, features, counts, ridge)
    for _ in range(max_iterations):
        p = np.exp(log_p)
        expected = totals[..., None] * p  # (b, pairs, 3)
        gradient = (counts - expected).reshape(b, -1) @ flat_features - ridge * params
        mean = (p.reshape(b, pairs, 1, 3) @ features).reshape(b, pairs, d)
        second = (expected.reshape(b, -1) @ feature_outer).reshape(b, d, d)
        weighted = mean * np.sqrt(totals)[..., None]
        outer = weighted.transpose(0, 2, 1) @ weighted
        curvature = second - outer + ridge[:, :, None] * identity  # minus the Hessian
        step = np.linalg.solve(curvature, gradient[..., None])[..., 0]
        step *= np.minimum(1.0, 5.0 / np.maximum(np.abs(step).max(axis=1, keepdims=True), 1e-12))
        scale = np.ones((b, 1))
        for _halving in range(30):  # backtrack the resamples whose likelihood went down
            trial = params + scale * step
            value, trial_log_p = _log_likelihood(trial, features, counts, ridge)
            worse = value < current - 1e-9 * np.abs(current)
            if not worse.any():
                break
            scale[worse, 0] *= 0.5
        params, current, log_p = trial, value, trial_log_p
        if np.abs(scale * step).max() < 1e-9:
            break
    params[:, :m] -= params[:, :m].mean(axis=1, keepdims=True)
    return params


def leaderboard(
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    names: list[str],
    *,
    n_bootstrap: int,
    seed: int,
) -> dict:
    """The leaderboard of the models in `names` from comparisons given as index arrays and
    outcomes (0: A won, 1: B won, 2: tie). Models that appear in no usable comparison are left
    out. Rows sorted by score, with bootstrap 95% intervals of score and rank."""
    m_all = len(names)
    cells = outcome_cells(model_a, model_b, outcome, m_all) if m_all else np.zeros((0, 5))
    if len(cells) == 0:
        return {"method": "davidson", "n_comparisons": 0, "tie_parameter": None, "models": []}
    # Keep only the models that were compared, re-indexed.
    present = np.unique(cells[:, :2])
    remap = np.full(m_all, -1)
    remap[present] = np.arange(present.size)
    pair_index = np.column_stack([remap[cells[:, 0]], remap[cells[:, 1]]])
    counts = cells[:, 2:]
    m = present.size
    point = davidson_fit(pair_index, counts[None], m)[0]
    intervals = _bootstrap(pair_index, counts, m, point, n_bootstrap=n_bootstrap, seed=seed)
    wins, losses, ties = _tallies(pair_index, counts, m)
    theta = point[:m]
    rows = []
    for rank, k in enumerate(np.argsort(-theta, kind="stable"), start=1):
        rows.append(
            {
                "model": names[present[k]],
                "rank": rank,
                "rank_ci": intervals.rank(k),
                "theta": float(theta[k]),
                "score": float(ELO_BASE + ELO_SCALE * theta[k]),
                "score_ci": intervals.score(k),
                "wins": int(wins[k]),
                "losses": int(losses[k]),
                "ties": int(ties[k]),
                "comparisons": int(wins[k] + losses[k] + ties[k]),
            }
        )
    nu = math.exp(point[m])
    return {
        "method": "davidson",
        "n_comparisons": int(counts.sum()),
        "tie_parameter": nu,
        "tie_share_between_equals": nu / (2.0 + nu),
        "models": rows,
    }


@dataclass(frozen=True)
class _Intervals:
    """Bootstrap 95% intervals per model (None without resamples)."""

    score_ci: list  # per model: (low, high) or None
    ranks_low: np.ndarray | None
    ranks_high: np.ndarray | None

    def score(self, k: int) -> list[float] | None:
        return list(self.score_ci[k]) if self.score_ci[k] else None

    def rank(self, k: int) -> list[int] | None:
        if self.ranks_low is None:
            return None
        return [int(self.ranks_low[k]), int(self.ranks_high[k])]


def _bootstrap(
    pair_index: np.ndarray,
    counts: np.ndarray,
    m: int,
    point: np.ndarray,
    *,
    n_bootstrap: int,
    seed: int,
) -> _Intervals:
    """Score and rank intervals from multinomial resamples of the cell counts, all fitted at
    once from the point estimate."""
    if n_bootstrap <= 0:
        return _Intervals(score_ci=[None] * m, ranks_low=None, ranks_high=None)
    n = int(counts.sum())
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(n, counts.ravel() / n, size=n_bootstrap).reshape(
        n_bootstrap, *counts.shape
    )
    fits = davidson_fit(pair_index, resampled, m, start=point)
    scores = ELO_BASE + ELO_SCALE * fits[:, :m]
    # Rank 1 is the best; a model's rank interval comes from its ranks across resamples.
    ranks = (-scores).argsort(axis=1).argsort(axis=1) + 1
    return _Intervals(
        score_ci=[percentile_interval(scores[:, k]) for k in range(m)],
        ranks_low=np.percentile(ranks, 2.5, axis=0),
        ranks_high=np.percentile(ranks, 97.5, axis=0),
    )


def _tallies(
    pair_index: np.ndarray, counts: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each model's wins, losses and ties over its cells."""
    wins = np.zeros(m, np.int64)
    losses = np.zeros(m, np.int64)
    ties = np.zeros(m, np.int64)
    for (i, j), (wi, wj, t) in zip(pair_index, counts, strict=True):
        wins[i] += wi
        wins[j] += wj
        losses[i] += wj
        losses[j] += wi
        ties[i] += t
        ties[j] += t
    return wins, losses, ties
