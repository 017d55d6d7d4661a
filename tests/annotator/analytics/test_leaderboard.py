import math

import choix
import numpy as np
import pytest

from annotator.analytics.leaderboard import ELO_SCALE, davidson_fit, leaderboard, outcome_cells


def _davidson_sample(seed: int, theta, nu: float, n: int):
    rng = np.random.default_rng(seed)
    m = len(theta)
    a, b = rng.integers(0, m, n), rng.integers(0, m, n)
    pi = np.exp(theta)
    tie = nu * np.sqrt(pi[a] * pi[b])
    total = pi[a] + pi[b] + tie
    u = rng.random(n)
    outcome = np.where(u < pi[a] / total, 0, np.where(u < (pi[a] + pi[b]) / total, 1, 2))
    return a, b, outcome


def test_two_models_by_hand():
    # With two models Davidson's MLE is closed-form: theta_1 - theta_2 = log(w / l) and
    # nu = t / sqrt(w * l). 30 wins, 10 losses, 20 ties.
    a = np.zeros(60, int)
    b = np.ones(60, int)
    outcome = np.array([0] * 30 + [1] * 10 + [2] * 20)
    board = leaderboard(a, b, outcome, ["x", "y"], n_bootstrap=0, seed=0)
    x, y = board["models"]
    assert (x["model"], y["model"]) == ("x", "y")
    assert x["theta"] - y["theta"] == pytest.approx(math.log(3), abs=0.01)
    assert board["tie_parameter"] == pytest.approx(20 / math.sqrt(300), rel=0.01)
    assert (x["wins"], x["losses"], x["ties"]) == (30, 10, 20)
    assert x["score"] - y["score"] == pytest.approx(ELO_SCALE * math.log(3), abs=1)


def test_recovers_planted_strengths_and_ties():
    theta = np.array([-1.0, -0.5, 0.0, 0.3, 1.2])
    a, b, outcome = _davidson_sample(0, theta, 0.4, 20000)
    board = leaderboard(a, b, outcome, [f"m{k}" for k in range(5)], n_bootstrap=300, seed=0)
    fitted = {row["model"]: row for row in board["models"]}
    for k, planted in enumerate(theta - theta.mean()):
        row = fitted[f"m{k}"]
        assert row["theta"] == pytest.approx(planted, abs=0.05)
        low, high = row["score_ci"]
        assert low < row["score"] < high
    assert board["tie_parameter"] == pytest.approx(0.4, abs=0.04)
    assert [row["model"] for row in board["models"]] == ["m4", "m3", "m2", "m1", "m0"]
    assert board["models"][0]["rank_ci"] == [1, 1]


def test_matches_choix_without_ties():
    theta = np.array([0.5, -0.2, 0.1, -0.4])
    a, b, outcome = _davidson_sample(1, theta, 0.0, 5000)
    keep = (outcome != 2) & (a != b)
    won = zip(a[keep], b[keep], outcome[keep], strict=True)
    pairs = [(x, y) if o == 0 else (y, x) for x, y, o in won]
    reference = choix.opt_pairwise(4, pairs, alpha=0.0)
    cells = outcome_cells(a[keep], b[keep], outcome[keep], 4)
    ours = davidson_fit(cells[:, :2], cells[None, :, 2:], 4)[0, :4]
    np.testing.assert_allclose(ours, reference - reference.mean(), atol=0.01)


def test_self_comparisons_and_unknown_models_are_left_out():
    a = np.array([0, 0, -1, 1])
    b = np.array([0, 1, 1, 2])
    cells = outcome_cells(a, b, np.array([0, 0, 0, 2]), 3)
    assert cells.tolist() == [[0, 1, 1, 0, 0], [1, 2, 0, 0, 1]]
    empty = leaderboard(np.array([0]), np.array([0]), np.array([0]), ["x"], n_bootstrap=10, seed=0)
    assert empty["models"] == [] and empty["n_comparisons"] == 0


def test_every_resample_reaches_its_own_maximum():
    # Resamples fitted together must each match a fit on their own (the backtracking and the
    # convergence test are per resample).
    a, b, outcome = _davidson_sample(2, np.array([0.0, 0.4, -0.3]), 0.5, 300)
    cells = outcome_cells(a, b, outcome, 3)
    rng = np.random.default_rng(0)
    counts = cells[:, 2:]
    resampled = rng.multinomial(counts.sum(), counts.ravel() / counts.sum(), size=50)
    resampled = resampled.reshape(50, *counts.shape)
    together = davidson_fit(cells, resampled, 3)
    alone = np.vstack([davidson_fit(cells, r[None], 3) for r in resampled])
    np.testing.assert_allclose(together, alone, atol=1e-6)
