import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotator.analytics import agreement as ag

# Two categories, two raters per unit: (2, 0), (0, 2), (1, 1). By hand: coincidences
# o00 = 2, o11 = 2, o01 = o10 = 1; n_c = (3, 3), n = 6; alpha = 1 - (n - 1) * 2 / (2 * 3 * 3).
TWO_BY_TWO = np.array([[2, 0], [0, 2], [1, 1]])


def test_nominal_alpha_by_hand():
    assert ag.krippendorff_alpha(TWO_BY_TWO, "nominal") == pytest.approx(4 / 9)


def test_ordinal_alpha_by_hand():
    # Values 0 < 1 < 2, units (2,0,0), (0,0,2), (1,1,0): n_c = (3, 1, 2), n = 6.
    # delta^2(0,1) = (3 + 1 - 2)^2 = 4, delta^2(0,2) = (6 - 2.5)^2 = 12.25, delta^2(1,2) = 2.25.
    # Observed sum o * delta^2 = 2 * 4 = 8; expected sum n_c n_k delta^2 = 2 * (12 + 73.5 + 4.5).
    counts = np.array([[2, 0, 0], [0, 0, 2], [1, 1, 0]])
    assert ag.krippendorff_alpha(counts, "ordinal") == pytest.approx(1 - 5 * 8 / 180)
    # Nominal treats the (1, 1) unit's disagreement as a full one: a lower alpha.
    assert ag.krippendorff_alpha(counts, "nominal") < ag.krippendorff_alpha(counts, "ordinal")


def test_fleiss_and_pairwise_by_hand():
    # Per-unit agreement 1, 1, 0 -> 2/3; category shares 1/2, 1/2 -> chance 1/2.
    assert ag.fleiss_kappa(TWO_BY_TWO) == pytest.approx((2 / 3 - 1 / 2) / (1 / 2))
    assert ag.pairwise_agreement(TWO_BY_TWO) == pytest.approx(2 / 3)


def test_fleiss_wikipedia_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert ag.fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    assert ag.fleiss_kappa(table) == pytest.approx(statsmodels_fleiss(table))


def _noisy_ratings(seed: int, units: int, raters: int, values: int) -> np.ndarray:
    """raters x units ratings near a true value, with some missing (NaN)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, values, units)
    ratings = np.clip(truth + rng.integers(-1, 2, (raters, units)), 0, values - 1).astype(float)
    ratings[rng.random((raters, units)) < 0.2] = np.nan
    return ratings


def _counts(ratings: np.ndarray, values: int) -> np.ndarray:
    counts = np.zeros((ratings.shape[1], values), dtype=np.int64)
    for rater in ratings:
        known = ~np.isnan(rater)
        np.add.at(counts, (np.flatnonzero(known), rater[known].astype(int)), 1)
    return counts


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_matches_the_package_from_reliability_data(level):
    ratings = _noisy_ratings(1, 300, 4, 5)
    expected = krippendorff.alpha(
        reliability_data=ratings, value_domain=list(range(5)), level_of_measurement=level
    )
    counts = _counts(ratings, 5)
    assert ag.krippendorff_alpha(counts, level) == pytest.approx(expected)
    # The vectorised formula behind the bootstrap gives the same number on the data itself.
    patterns, frequency = ag.patterns_of(ag.pairable(counts))
    summed = frequency @ ag.coincidences(patterns).reshape(len(patterns), -1)
    assert float(ag.alpha_from_coincidences(summed.reshape(5, 5), level)) == pytest.approx(expected)


def test_fleiss_matches_statsmodels_on_random_data():
    rng = np.random.default_rng(2)
    counts = rng.multinomial(3, [0.5, 0.3, 0.2], size=500)
    assert ag.fleiss_kappa(counts) == pytest.approx(statsmodels_fleiss(counts))


def test_undefined_statistics_are_none():
    assert ag.krippendorff_alpha(np.array([[2, 0], [3, 0]]), "nominal") is None  # one value
    assert ag.krippendorff_alpha(np.array([[1, 0], [0, 1]]), "nominal") is None  # no pairs
    assert ag.fleiss_kappa(np.zeros((0, 3))) is None


def test_summary_intervals_cover_the_estimate_and_narrow_with_more_data():
    rng = np.random.default_rng(3)

    def data(units):
        truth = rng.integers(0, 5, units)
        scale = np.array(
            [np.bincount(np.clip(t + rng.integers(-1, 2, 3), 0, 4), minlength=5) for t in truth]
        )
        choice = np.column_stack([scale[:, :2].sum(1), scale[:, 3:].sum(1), scale[:, 2]])
        return choice, scale

    small = ag.agreement_summary(*data(100), n_bootstrap=500, seed=0)
    large = ag.agreement_summary(*data(2000), n_bootstrap=500, seed=0)
    for key in ("alpha_nominal", "alpha_ordinal", "fleiss_kappa", "pairwise"):
        low, high = small[key]["ci"]
        assert low <= small[key]["value"] <= high
        assert large[key]["ci"][1] - large[key]["ci"][0] < high - low
    again = ag.agreement_summary(*data(100), n_bootstrap=500, seed=0)
    assert again["n_units"] == small["n_units"]


def test_bootstrap_is_seeded():
    counts = np.random.default_rng(4).multinomial(3, [0.6, 0.3, 0.1], size=200)
    first = ag.agreement_summary(counts, None, n_bootstrap=200, seed=7)
    second = ag.agreement_summary(counts, None, n_bootstrap=200, seed=7)
    assert first == second
    assert "alpha_ordinal" not in first


def test_rater_vs_group_by_hand_and_against_sklearn():
    # Humans (A, A) and (A, B); the judge says A on both.
    counts = np.array([[2, 0, 0], [1, 1, 0]])
    judge = np.array([0, 0])
    result = ag.rater_vs_group(judge, counts, n_bootstrap=100, seed=0)
    assert result["n_units"] == 2
    assert result["human_human"]["agreement"]["value"] == pytest.approx(2 / 4)
    assert result["judge_human"]["agreement"]["value"] == pytest.approx(3 / 4)
    assert result["agreement_gap"]["value"] == pytest.approx(0.25)

    # Kappa over pooled (judge, human) pairs is Cohen's kappa of the expanded pairs.
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, 400)
    humans = [np.where(rng.random(400) < 0.7, truth, rng.integers(0, 3, 400)) for _ in range(3)]
    judge = np.where(rng.random(400) < 0.6, truth, rng.integers(0, 3, 400))
    counts = np.column_stack([sum(h == c for h in humans) for c in range(3)])
    result = ag.rater_vs_group(judge, counts, n_bootstrap=0, seed=0)
    pairs_judge = np.concatenate([judge] * 3)
    pairs_human = np.concatenate(humans)
    assert result["judge_human"]["kappa"]["value"] == pytest.approx(
        cohen_kappa_score(pairs_judge, pairs_human)
    )
    assert result["judge_human"]["agreement"]["value"] == pytest.approx(
        np.mean(pairs_judge == pairs_human)
    )
