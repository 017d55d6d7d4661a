import numpy as np
import pytest

from routing.ppm import (
    algorithm1_select,
    extend_bins,
    ppm_cross_validated_spearman,
    ppm_fit,
    tag_counts,
)


def test_quadratic_ppm_recovers_a_known_function_and_its_per_item_gains():
    rng = np.random.default_rng(0)
    counts = rng.random((200, 3))

    def truth(x):
        x = np.atleast_2d(x)
        return 1 + 2 * x[:, 0] - x[:, 1] + 3 * x[:, 0] * x[:, 2] + 0.5 * x[:, 1] ** 2

    ppm = ppm_fit(counts, truth(counts))
    probe = rng.random((5, 3))
    assert ppm.predict(probe) == pytest.approx(truth(probe), abs=1e-6)
    # A row carrying tags 0 and 2 (and the -1 padding) routed alone in a set of 4 rows.
    bins_ext = extend_bins(np.array([[0, 2, -1]]), 3)
    v = np.array([[1, 0, 1]]) / 4
    assert ppm.gains(bins_ext, 4)[0] == pytest.approx((truth(v) - truth(np.zeros(3)))[0])


def test_algorithm1_routes_tag_by_tag():
    # Three tags with five rows each: a budget of five always takes one whole tag.
    bins = extend_bins(np.repeat(np.arange(3), 5)[:, None], 3)
    first_tags = set()
    for seed in range(20):
        chosen = algorithm1_select(bins, 3, 5, np.random.default_rng(seed))
        tags = set(bins[chosen, 0].tolist())
        assert len(chosen) == 5 and len(tags) == 1
        first_tags |= tags
    assert first_tags == {0, 1, 2}  # the tag order is shuffled
    counts = tag_counts(bins, np.arange(5), 3, 15)
    assert counts.tolist() == [5 / 15, 0, 0]


def test_rows_without_tags_come_last():
    bins = extend_bins(np.array([[-1], [0], [-1], [1]]), 2)
    chosen = algorithm1_select(bins, 2, 2, np.random.default_rng(0))
    assert sorted(chosen.tolist()) == [1, 3]


def test_cross_validated_spearman_is_high_when_tags_explain_the_gain():
    rng = np.random.default_rng(3)
    n = 200
    bad = rng.random(n) < 0.3
    bins = extend_bins(np.column_stack([np.where(bad, 0, 1), 2 + rng.integers(0, 2, n)]), 4)
    result = ppm_cross_validated_spearman(
        bins, 4, np.ones(n), (~bad).astype(float), n_candidates=100, folds=5, seed=0
    )
    assert set(result) == {"quadratic", "linear"}
    assert result["quadratic"] > 0.8
