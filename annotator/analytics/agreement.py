"""Inter-rater agreement with bootstrap intervals, as pure functions over count arrays.

A comparison's labels for one aspect are a row of counts over the scale's values (how many
raters gave each value): `counts` has shape (units, values). Every statistic here depends only on
how often each distinct row occurs, so rows are first collapsed into patterns with their
frequencies (with 3 raters and 5 values there are at most 35 patterns, whatever the number of
comparisons). Resampling comparisons with replacement then only changes the pattern frequencies,
so a bootstrap resample is drawn as multinomial counts over the patterns: the same distribution
as resampling rows, in memory and time independent of the number of comparisons.

- Krippendorff's alpha (nominal or ordinal) from the coincidence matrix; the point estimate is the
  `krippendorff` package's, the bootstrap reuses the same formula vectorised over resamples (the
  tests check both against each other and against hand-computed cases).
- Fleiss' kappa, in the form that allows a different number of raters per unit (each unit's
  observed agreement is the share of its rater pairs that agree); with the same number everywhere
  it is Fleiss (1971). Written here rather than taken from statsmodels, whose `fleiss_kappa`
  needs the same number of raters on every unit and one call per resample, and which is a heavy
  runtime dependency for one formula; the tests check it against statsmodels.
- Pairwise agreement: the share of pairs of labels on the same comparison that agree, all pairs
  pooled.
- Rater-vs-group agreement (an LM judge against the humans on the same comparisons): the share of
  (judge, human) label pairs that agree and Cohen's kappa over those pairs, next to the same two
  figures for (human, human) pairs.

Units with fewer than two values are not pairable and carry no information here; callers drop
them (`pairable`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import krippendorff
import numpy as np

CONFIDENCE = 0.95
Interval = tuple[float, float]


# --- Patterns and resampling -------------------------------------------------------------------


def patterns_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, how often each occurs) of an integer array of shape (units, k)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape[0] == 0:
        return rows.reshape(0, rows.shape[1] if rows.ndim == 2 else 0), np.zeros(0, np.int64)
    base = int(rows.max()) + 1
    if rows.min() >= 0 and rows.shape[1] * np.log2(base) < 62:
        # Rows of small counts as one integer each (mixed radix): a 1-d unique is much faster
        # than np.unique(axis=0), and gives the same lexicographic order.
        radix = base ** np.arange(rows.shape[1] - 1, -1, -1, dtype=np.int64)
        keys, frequency = np.unique(rows @ radix, return_counts=True)
        return (keys[:, None] // radix) % base, frequency.astype(np.int64)
    patterns, frequency = np.unique(rows, axis=0, return_counts=True)
    return patterns, frequency.astype(np.int64)


def bootstrap_frequencies(frequency: np.ndarray, *, n_bootstrap: int, seed: int) -> np.ndarray:
    """Pattern frequencies of `n_bootstrap` resamples of the units: (n_bootstrap, patterns)."""
    frequency = np.asarray(frequency, dtype=np.int64)
    n = int(frequency.sum())
    if n == 0 or n_bootstrap <= 0:
        return np.zeros((0, frequency.size), np.int64)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, frequency / n, size=n_bootstrap)


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Interval | None:
    """The percentile interval of bootstrap values, ignoring NaN; None when all are NaN."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def pairable(counts: np.ndarray) -> np.ndarray:
    """The rows of `counts` with at least two values."""
    counts = np.asarray(counts, dtype=np.int64)
    return counts[counts.sum(axis=1) >= 2]


def finite_or_none(value) -> float | None:
    """The value as a float, or None where it is NaN or infinite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _first(values: np.ndarray) -> float | None:
    return finite_or_none(values[0]) if values.size else None


# --- Krippendorff's alpha ----------------------------------------------------------------------


def coincidences(counts: np.ndarray) -> np.ndarray:
    """Per unit, its coincidence matrix: o[c, k] = n_c (n_k - [c == k]) / (m - 1), where m is
    the unit's number of values. Shape (units, values, values); zero for units with m < 2."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    pairs = counts[:, :, None] * counts[:, None, :]
    diagonal = np.arange(counts.shape[1])
    pairs[:, diagonal, diagonal] -= counts
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(m >= 2, 1.0 / (m - 1), 0.0)
    return pairs * scale[:, None, None]


def _squared_distances(marginals: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's delta^2 between values, for one or many (..., V) marginals."""
    marginals = np.asarray(marginals, dtype=np.float64)
    v = marginals.shape[-1]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(v), (*marginals.shape[:-1], v, v))
    if level == "ordinal":
        # delta^2(c, k) = (sum of n_g for g from c to k - (n_c + n_k) / 2)^2
        cumulative = np.concatenate(
            [np.zeros((*marginals.shape[:-1], 1)), np.cumsum(marginals, axis=-1)], axis=-1
        )
        low = np.minimum.outer(np.arange(v), np.arange(v))
        high = np.maximum.outer(np.arange(v), np.arange(v))
        between = cumulative[..., high + 1] - cumulative[..., low]
        ends = (marginals[..., :, None] + marginals[..., None, :]) / 2.0
        return (between - ends) ** 2
    raise ValueError(f"unknown level of measurement {level!r}; expected nominal or ordinal")


def alpha_from_coincidences(coincidence: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's alpha of one or many (..., V, V) summed coincidence matrices; NaN where
    undefined (fewer than two pairable values, or a single value used throughout)."""
    coincidence = np.asarray(coincidence, dtype=np.float64)
    marginals = coincidence.sum(axis=-1)
    n = marginals.sum(axis=-1)
    delta = _squared_distances(marginals, level)
    observed = (coincidence * delta).sum(axis=(-2, -1))
    expected = (marginals[..., :, None] * marginals[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1.0 - (n - 1.0) * observed / expected, np.nan)


def krippendorff_alpha(counts: np.ndarray, level: str) -> float | None:
    """Alpha of units x values counts, by the `krippendorff` package; None when undefined."""
    counts = pairable(counts)
    if counts.shape[0] == 0 or np.count_nonzero(counts.sum(axis=0)) < 2:
        return None
    return finite_or_none(
        krippendorff.alpha(
            value_counts=counts,
            value_domain=list(range(counts.shape[1])),
            level_of_measurement=level,
        )
    )


# --- Fleiss' kappa and pairwise agreement ------------------------------------------------------


def _agreeing_pairs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: ordered pairs of its labels that agree, and all its ordered pairs."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=-1)
    return (counts * (counts - 1.0)).sum(axis=-1), m * (m - 1.0)


def fleiss_from_patterns(patterns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of units given as distinct count rows with frequencies (one weight row, or
    a (resamples, patterns) array of them). Units need at least two raters."""
    patterns = np.asarray(patterns, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    agree, pairs = _agreeing_pairs(patterns)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_agreement = np.where(pairs > 0, agree / pairs, np.nan)
        units = weights.sum(axis=1)
        observed = weights @ np.nan_to_num(unit_agreement) / units
        shares = (weights @ patterns) / (weights @ patterns.sum(axis=1))[:, None]
        chance = (shares**2).sum(axis=1)
        return np.where((units > 0) & (chance < 1), (observed - chance) / (1 - chance), np.nan)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of units x categories counts (units with fewer than 2 raters dropped)."""
    patterns, frequency = patterns_of(pairable(counts))
    if frequency.size == 0:
        return None
    return finite_or_none(fleiss_from_patterns(patterns, frequency)[0])


def pairwise_from_patterns(patterns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share of agreeing label pairs, all pairs of all units pooled."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    agree, pairs = _agreeing_pairs(patterns)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = weights @ pairs
        return np.where(total > 0, (weights @ agree) / total, np.nan)


def pairwise_agreement(counts: np.ndarray) -> float | None:
    patterns, frequency = patterns_of(pairable(counts))
    if frequency.size == 0:
        return None
    return finite_or_none(pairwise_from_patterns(patterns, frequency)[0])


# --- Cohen's kappa over pooled pairs -----------------------------------------------------------


def kappa_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Cohen's kappa of one or many (..., K, K) confusion matrices; NaN where undefined."""
    confusion = np.asarray(confusion, dtype=np.float64)
    total = confusion.sum(axis=(-2, -1))
    agree = np.trace(confusion, axis1=-2, axis2=-1)
    chance = (confusion.sum(axis=-1) * confusion.sum(axis=-2)).sum(axis=-1)
    denominator = total**2 - chance
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (total * agree - chance) / denominator, np.nan)


def rater_confusions(rater: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per unit, the confusion of one rater's value (rows) against each label of the group
    (columns): a (units, K, K) array with the unit's counts in the rater's row."""
    counts = np.asarray(counts, dtype=np.float64)
    confusion = np.zeros((counts.shape[0], counts.shape[1], counts.shape[1]))
    confusion[np.arange(counts.shape[0]), np.asarray(rater, dtype=np.int64)] = counts
    return confusion


# --- Reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci: Interval | None

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": list(self.ci) if self.ci else None}


def _estimate(point: float | None, resampled: np.ndarray) -> Estimate:
    return Estimate(point, percentile_interval(resampled) if point is not None else None)


def agreement_summary(
    choice_counts: np.ndarray,
    scale_counts: np.ndarray | None,
    *,
    n_bootstrap: int,
    seed: int,
) -> dict:
    """Human-human agreement for one aspect: alpha (ordinal on the 5-point scale, nominal on the
    choice), Fleiss' kappa and pairwise agreement on the choice, each with a bootstrap 95%
    interval (comparisons resampled; the same resamples for every choice statistic).

    `choice_counts`: units x {A, B, tie}. `scale_counts`: units x the 5-point scale, counting
    only labels with a known strength (None to skip the ordinal alpha).
    """
    choices = pairable(choice_counts)
    patterns, frequency = patterns_of(choices)
    resampled = bootstrap_frequencies(frequency, n_bootstrap=n_bootstrap, seed=seed)
    k = choices.shape[1]
    per_pattern = coincidences(patterns).reshape(len(patterns), k * k)
    summary = {
        "n_units": int(choices.shape[0]),
        "n_labels": int(choices.sum()),
        "alpha_nominal": _estimate(
            krippendorff_alpha(choices, "nominal"),
            alpha_from_coincidences((resampled @ per_pattern).reshape(-1, k, k), "nominal"),
        ).to_dict(),
        "fleiss_kappa": _estimate(
            _first(fleiss_from_patterns(patterns, frequency)),
            fleiss_from_patterns(patterns, resampled),
        ).to_dict(),
        "pairwise": _estimate(
            _first(pairwise_from_patterns(patterns, frequency)),
            pairwise_from_patterns(patterns, resampled),
        ).to_dict(),
    }
    if scale_counts is not None:
        scale = pairable(scale_counts)
        s_patterns, s_frequency = patterns_of(scale)
        s_resampled = bootstrap_frequencies(s_frequency, n_bootstrap=n_bootstrap, seed=seed + 1)
        v = scale.shape[1]
        s_per_pattern = coincidences(s_patterns).reshape(len(s_patterns), v * v)
        summary["n_units_ordinal"] = int(scale.shape[0])
        summary["alpha_ordinal"] = _estimate(
            krippendorff_alpha(scale, "ordinal"),
            alpha_from_coincidences((s_resampled @ s_per_pattern).reshape(-1, v, v), "ordinal"),
        ).to_dict()
    return summary


def rater_vs_group(rater: np.ndarray, counts: np.ndarray, *, n_bootstrap: int, seed: int) -> dict:
    """One rater (an LM judge) against a group (the humans) on the same units, next to the
    group against itself, so "is the judge as good as another human?" reads off directly.

    `rater`: the rater's value per unit; `counts`: units x values of the group's labels. Units
    need two group labels (so that human-human pairs exist on exactly the same units).
    Returns pairwise agreement and Cohen's kappa over pooled pairs for (rater, human) and
    (human, human), each with a bootstrap 95% interval, and the difference in agreement.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rater = np.asarray(rater, dtype=np.int64)
    keep = counts.sum(axis=1) >= 2
    counts, rater = counts[keep], rater[keep]
    k = counts.shape[1]
    patterns, frequency = patterns_of(np.column_stack([rater, counts]))
    p_rater, p_counts = patterns[:, 0], patterns[:, 1:]
    resampled = bootstrap_frequencies(frequency, n_bootstrap=n_bootstrap, seed=seed)
    weights = np.vstack([frequency[None, :], resampled])

    group_confusion = coincidences(p_counts).reshape(len(patterns), k * k)
    # Coincidences count each unordered pair twice, divided by (m - 1); undo that division so
    # the pooled pairs weigh as pairs, as in `pairwise_from_patterns`.
    m = p_counts.sum(axis=1).astype(np.float64)
    group_confusion = group_confusion * np.maximum(m - 1, 1)[:, None]
    rater_confusion = rater_confusions(p_rater, p_counts).reshape(len(patterns), k * k)
    hh = (weights @ group_confusion).reshape(-1, k, k)
    jh = (weights @ rater_confusion).reshape(-1, k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        hh_agree = np.trace(hh, axis1=1, axis2=2) / hh.sum(axis=(1, 2))
        jh_agree = np.trace(jh, axis1=1, axis2=2) / jh.sum(axis=(1, 2))
    hh_kappa, jh_kappa = kappa_from_confusion(hh), kappa_from_confusion(jh)
    gap = jh_agree - hh_agree

    def estimate(values: np.ndarray) -> dict:
        point = finite_or_none(values[0]) if values.size else None
        return _estimate(point, values[1:]).to_dict()

    return {
        "n_units": int(counts.shape[0]),
        "human_human": {"agreement": estimate(hh_agree), "kappa": estimate(hh_kappa)},
        "judge_human": {"agreement": estimate(jh_agree), "kappa": estimate(jh_kappa)},
        "agreement_gap": estimate(gap),
    }
