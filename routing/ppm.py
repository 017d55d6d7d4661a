"""The performance prediction model (PPM) of HyPER (docs/architecture.md, "Routing"). Pure
numpy/scikit-learn.

A candidate routing is described by how many human-routed comparisons carry each tag (counted
per comparison of the routed set, so that a PPM fitted on one set applies to a set of another
size); the PPM regresses the quality of the resulting label set on those counts with a quadratic
regression (PolynomialFeatures(2) + LinearRegression, the paper's best). Candidates come from the
paper's Algorithm 1: pick a budget, shuffle the tag order, route comparisons to humans tag by tag
until the budget is reached.

The quality target here is the cheap proxy: label accuracy of the mix against the held-out
human consensus (per comparison: the bought human label is right or not, the LM label is right
or not; see problem.targets_build).
"""

from dataclasses import dataclass

import numpy as np

QUAD_CHUNK = 50_000


def extend_bins(bins: np.ndarray, n_tags: int) -> np.ndarray:
    """Bins with -1 replaced by a sentinel index n_tags (an extra, always-empty tag)."""
    return np.where(bins < 0, n_tags, bins).astype(np.int32)


def algorithm1_select(
    bins_ext: np.ndarray, n_tags: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the k rows Algorithm 1 routes to humans: tags in a random order, each row
    taken at the position of its first tag in that order, rows of the same tag in random order,
    rows without tags last."""
    n = bins_ext.shape[0]
    k = min(max(k, 0), n)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    position = np.empty(n_tags + 1, dtype=np.float64)
    position[:n_tags] = rng.permutation(n_tags)
    position[n_tags] = n_tags  # no tag: after every tag
    key = position[bins_ext].min(axis=1) + rng.random(n)
    if k == n:
        return np.arange(n)
    return np.argpartition(key, k - 1)[:k]


def tag_counts(bins_ext: np.ndarray, rows: np.ndarray, n_tags: int, n_set: int) -> np.ndarray:
    """Per tag, the human-routed rows carrying it, divided by the size of the routed set."""
    counts = np.bincount(bins_ext[rows].ravel(), minlength=n_tags + 1)[:n_tags]
    return counts / max(n_set, 1)


@dataclass
class PPM:
    """A fitted quadratic PPM: f(x) = intercept + w.x + x'Qx over per-comparison tag counts."""

    intercept: float
    w: np.ndarray  # (T,)
    Q: np.ndarray  # (T, T), symmetric
    n_tags: int

    def predict(self, counts: np.ndarray) -> np.ndarray:
        counts = np.atleast_2d(counts)
        quad = np.einsum("ms,st,mt->m", counts, self.Q, counts)
        return self.intercept + counts @ self.w + quad

    def gains(self, bins_ext: np.ndarray, n_set: int) -> np.ndarray:
        """PPM(v_i) - PPM(0) for each row i routed alone (v_i = its tags / n_set): the per-
        instance gain top-k ranks by. Exact, in chunks (the quadratic part gathers W x W)."""
        T = self.n_tags
        w = np.append(self.w, 0.0)
        Q = np.zeros((T + 1, T + 1))
        Q[:T, :T] = self.Q
        scale = 1.0 / max(n_set, 1)
        out = np.empty(bins_ext.shape[0])
        for start in range(0, bins_ext.shape[0], QUAD_CHUNK):
            b = bins_ext[start : start + QUAD_CHUNK]
            linear = w[b].sum(axis=1) * scale
            quad = Q[b[:, :, None], b[:, None, :]].sum(axis=(1, 2)) * scale * scale
            out[start : start + QUAD_CHUNK] = linear + quad
        return out


def _fit_regression(X: np.ndarray, y: np.ndarray, *, degree: int):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    model = make_pipeline(PolynomialFeatures(degree, include_bias=False), LinearRegression())
    return model.fit(X, y)


def ppm_fit(counts: np.ndarray, scores: np.ndarray) -> PPM:
    """Fit the quadratic PPM on candidates' tag counts and their measured quality."""
    model = _fit_regression(counts, scores, degree=2)
    poly, reg = model.steps[0][1], model.steps[1][1]
    T = counts.shape[1]
    w = np.zeros(T)
    Q = np.zeros((T, T))
    for powers, coef in zip(poly.powers_, reg.coef_, strict=True):
        nz = np.flatnonzero(powers)
        if powers.sum() == 1:
            w[nz[0]] += coef
        elif nz.size == 1:  # x_t squared
            Q[nz[0], nz[0]] += coef
        else:  # x_s x_t, split over the symmetric pair
            s, t = nz
            Q[s, t] += coef / 2
            Q[t, s] += coef / 2
    return PPM(intercept=float(reg.intercept_), w=w, Q=Q, n_tags=T)


def candidates_sample(
    bins_ext: np.ndarray,
    n_tags: int,
    gain: np.ndarray,
    base: float,
    *,
    n_candidates: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 candidates over a labelled set with random budgets: (counts, quality), where
    quality = base + sum of the routed rows' gains / n (label accuracy of the mix)."""
    n = bins_ext.shape[0]
    counts = np.zeros((n_candidates, n_tags))
    quality = np.zeros(n_candidates)
    for m in range(n_candidates):
        k = int(rng.integers(0, n + 1))
        rows = algorithm1_select(bins_ext, n_tags, k, rng)
        counts[m] = tag_counts(bins_ext, rows, n_tags, n)
        quality[m] = base + gain[rows].sum() / max(n, 1)
    return counts, quality


def ppm_train(
    bins_ext: np.ndarray,
    n_tags: int,
    human_right: np.ndarray,
    lm_right: np.ndarray,
    *,
    n_candidates: int,
    rng: np.random.Generator,
) -> PPM:
    """Sample candidates on a labelled set, measure each, fit the PPM."""
    counts, quality = candidates_sample(
        bins_ext,
        n_tags,
        human_right - lm_right,
        float(lm_right.mean()),
        n_candidates=n_candidates,
        rng=rng,
    )
    return ppm_fit(counts, quality)


def ppm_cross_validated_spearman(
    bins_ext: np.ndarray,
    n_tags: int,
    human_right: np.ndarray,
    lm_right: np.ndarray,
    *,
    n_candidates: int = 500,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Spearman correlation between the PPM's out-of-fold predictions and the candidates' real
    quality (the paper's Table 2: quadratic 0.61, linear 0.41), for the quadratic PPM and the
    linear one."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(seed)
    counts, quality = candidates_sample(
        bins_ext,
        n_tags,
        human_right - lm_right,
        float(lm_right.mean()),
        n_candidates=n_candidates,
        rng=rng,
    )
    result = {}
    for name, degree in (("quadratic", 2), ("linear", 1)):
        predicted = np.zeros(n_candidates)
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(counts):
            model = _fit_regression(counts[train], quality[train], degree=degree)
            predicted[test] = model.predict(counts[test])
        result[name] = float(spearmanr(predicted, quality).statistic)
    return result
