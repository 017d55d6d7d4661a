"""Model leaderboard: a Bradley-Terry fit with ties by Davidson's model, with bootstrap intervals.

Davidson (1970): for models i and j with strengths pi = exp(theta),

    P(i beats j) = pi_i / D,  P(tie) = nu * sqrt(pi_i * pi_j) / D,
    D = pi_i + pi_j + nu * sqrt(pi_i * pi_j),

with one tie parameter nu >= 0 for all pairs (nu = 0 is plain Bradley-Terry). Ties are modelled,
not counted as half a win. The likelihood depends on the data only through the counts of
(model A, model B, outcome) cells, so it is fitted on those counts by maximum likelihood
(scipy's L-BFGS with the analytic gradient) with a tiny ridge on theta (1e-4 per comparison
scale), which fixes the scale's origin and keeps a model that never lost finite.

Bootstrap: resampling comparisons only changes the cell counts, so a resample is multinomial over
the cells (as in Chatbot Arena's bootstrap, without touching rows). The likelihood of many
resamples is a sum of independent terms, so all resamples are fitted in ONE L-BFGS call over
the stacked parameters (warm-started at the point estimate): one vectorised gradient per
iteration for all of them.

Scores are reported on Chatbot Arena's Elo-like scale: 1000 + 400 / ln(10) * theta, with theta
centred to mean 0 over the models.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

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


def _negative_log_likelihood(params: np.ndarray, cells: np.ndarray, counts: np.ndarray, m: int):
    """Sum over resamples of the Davidson NLL; params (resamples, m + 1) flattened, the last
    column log(nu). Returns (value, gradient)."""
    b = counts.shape[0]
    params = params.reshape(b, m + 1)
    theta, log_nu = params[:, :m], params[:, m]
    i, j = cells[:, 0], cells[:, 1]
    wins_i, wins_j, ties = counts[:, :, 0], counts[:, :, 1], counts[:, :, 2]
    total = wins_i + wins_j + ties
    ti, tj = theta[:, i], theta[:, j]
    tie_logit = log_nu[:, None] + (ti + tj) / 2.0
    stacked = np.stack([ti, tj, tie_logit])
    top = stacked.max(axis=0)
    exps = np.exp(stacked - top)
    denominator = exps.sum(axis=0)
    log_d = top + np.log(denominator)
    p_i, p_j, p_t = exps / denominator
    log_likelihood = (wins_i * ti + wins_j * tj + ties * tie_logit - total * log_d).sum()
    n_scale = max(float(counts.sum()) / b, 1.0)
    ridge = RIDGE * n_scale
    value = -log_likelihood + 0.5 * ridge * (theta**2).sum()

    grad_i = wins_i + ties / 2.0 - total * (p_i + p_t / 2.0)  # d loglik / d theta_i per cell
    grad_j = wins_j + ties / 2.0 - total * (p_j + p_t / 2.0)
    gradient = np.empty((b, m + 1))
    incidence = np.eye(m)
    gradient[:, :m] = grad_i @ incidence[i] + grad_j @ incidence[j]
    gradient[:, m] = (ties - total * p_t).sum(axis=1)
    gradient = -gradient
    gradient[:, :m] += ridge * theta
    return value, gradient.ravel()


def davidson_fit(
    cells: np.ndarray, counts: np.ndarray, n_models: int, start: np.ndarray | None = None
) -> np.ndarray:
    """Fit theta and log(nu) for each row of `counts` (resamples, pairs, 3); returns
    (resamples, n_models + 1), theta centred to mean 0."""
    counts = np.asarray(counts, dtype=np.float64)
    b = counts.shape[0]
    x0 = np.zeros((b, n_models + 1)) if start is None else np.tile(start, (b, 1))
    if start is None:
        x0[:, n_models] = math.log(0.5)
    result = minimize(
        _negative_log_likelihood,
        x0.ravel(),
        args=(cells, counts, n_models),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-7, "ftol": 1e-13},
    )
    params = result.x.reshape(b, n_models + 1)
    params[:, :n_models] -= params[:, :n_models].mean(axis=1, keepdims=True)
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
    n = int(counts.sum())
    flat = counts.ravel()
    ranks_low = ranks_high = None
    score_ci = [None] * m
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        resampled = rng.multinomial(n, flat / n, size=n_bootstrap).reshape(
            n_bootstrap, *counts.shape
        )
        fits = davidson_fit(pair_index, resampled, m, start=point)
        scores = ELO_BASE + ELO_SCALE * fits[:, :m]
        score_ci = [percentile_interval(scores[:, k]) for k in range(m)]
        # Rank 1 is the best; a model's rank interval comes from its ranks across resamples.
        ranks = (-scores).argsort(axis=1).argsort(axis=1) + 1
        ranks_low = np.percentile(ranks, 2.5, axis=0)
        ranks_high = np.percentile(ranks, 97.5, axis=0)
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
    theta = point[:m]
    order = np.argsort(-theta, kind="stable")
    rows = []
    for rank, k in enumerate(order, start=1):
        rows.append(
            {
                "model": names[present[k]],
                "rank": rank,
                "rank_ci": [int(ranks_low[k]), int(ranks_high[k])]
                if ranks_low is not None
                else None,
                "theta": float(theta[k]),
                "score": float(ELO_BASE + ELO_SCALE * theta[k]),
                "score_ci": list(score_ci[k]) if score_ci[k] else None,
                "wins": int(wins[k]),
                "losses": int(losses[k]),
                "ties": int(ties[k]),
                "comparisons": int(wins[k] + losses[k] + ties[k]),
            }
        )
    nu = math.exp(point[m])
    return {
        "method": "davidson",
        "n_comparisons": n,
        "tie_parameter": nu,
        "tie_share_between_equals": nu / (2.0 + nu),
        "models": rows,
    }
