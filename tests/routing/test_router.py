"""The router's model: fitted on known labels, scored anywhere, stored safely."""

import os

import numpy as np
import pytest
import skops.io

from routing.problem import NONE, TEXT_COLUMNS, A, B, RoutingInputs, problem_build
from routing.router import (
    TRANSFERABLE_COLUMNS,
    RouterFileError,
    features,
    router_dumps,
    router_fit,
    router_fit_matrix,
    router_loads,
    router_predict,
    router_score,
    router_sha256,
)


def _problem(n: int = 400, seed: int = 0, undecided: int = 0):
    """The LM label is wrong exactly where the judge is unsure (|p_a - 0.5| < 0.1)."""
    rng = np.random.default_rng(seed)
    p_a = rng.random(n)
    lm = np.where(p_a > 0.5, A, B).astype(np.int32)
    wrong = np.abs(p_a - 0.5) < 0.1
    gold = np.where(wrong, 1 - lm, lm)
    lm[:undecided] = 2  # a tie: no A/B answer
    inputs = RoutingInputs(
        text={c: rng.random(n) * 100 for c in TEXT_COLUMNS},
        tag_codes=np.zeros((n, 0), dtype=np.int32),
        tag_vocabulary=[],
        p_a=p_a,
        consistent=np.ones(n),
        truncated=np.zeros(n),
        lm_choice=lm,
        others_agree=np.full(n, np.nan),
        others_p_a=np.full(n, np.nan),
        votes=np.stack([gold, gold, np.full(n, NONE)], axis=1).astype(np.int32),
    )
    return problem_build(inputs, seed=seed), wrong


def test_it_learns_where_the_lm_label_is_wrong():
    problem, wrong = _problem()
    train, test = np.arange(300), np.arange(300, 400)
    model = router_fit(problem, train, wrong[train].astype(float), seed=0)
    score = router_score(model, problem, test)
    assert score[wrong[test]].mean() > score[~wrong[test]].mean() + 0.5


def test_an_undecided_lm_label_scores_one_half_and_is_not_learned_from():
    problem, wrong = _problem(undecided=50)
    model = router_fit(problem, np.arange(400), wrong.astype(float))
    assert model.n_train == 350
    assert np.all(router_score(model, problem, np.arange(50)) == 0.5)


def test_one_class_seen_gives_its_rate():
    problem, _ = _problem()
    model = router_fit(problem, np.arange(20), np.zeros(20))
    assert model.estimator is None and model.constant == 0.0
    assert np.all(router_score(model, problem, np.arange(20, 40)) == 0.0)


def test_a_prior_on_transferable_columns_scores_a_project_missing_some():
    problem, wrong = _problem()
    prior = router_fit(problem, np.arange(400), wrong.astype(float), columns=TRANSFERABLE_COLUMNS)
    assert set(prior.columns) <= set(TRANSFERABLE_COLUMNS)
    assert "judge_confidence" in prior.columns
    assert "len_a" not in prior.columns and "judge_p_a" not in prior.columns
    other, _ = _problem(seed=1)
    assert router_score(prior, other, np.arange(400)).shape == (400,)


def test_a_stored_router_round_trips():
    problem, wrong = _problem()
    model = router_fit(problem, np.arange(400), wrong.astype(float))
    data = router_dumps(model)
    loaded = router_loads(data, sha256=router_sha256(data))
    rows = np.arange(400)
    assert loaded.columns == model.columns
    assert np.array_equal(router_score(loaded, problem, rows), router_score(model, problem, rows))


def test_an_altered_router_is_refused():
    problem, wrong = _problem()
    data = router_dumps(router_fit(problem, np.arange(400), wrong.astype(float)))
    digest = router_sha256(data)
    tampered = data[:-10] + bytes(10)
    with pytest.raises(RouterFileError, match="altered"):
        router_loads(tampered, sha256=digest)


def test_a_router_holding_another_type_is_refused_even_with_a_matching_hash():
    data = skops.io.dumps(
        {
            "columns": [],
            "estimator": os.system,  # a function to call on load: never a router's
            "constant": 0.5,
            "n_train": 0,
        }
    )
    with pytest.raises(RouterFileError, match="types"):
        router_loads(data, sha256=router_sha256(data))


def test_with_few_labels_the_router_leans_on_its_linear_model():
    problem, wrong = _problem()
    few = router_fit(problem, np.arange(60), wrong[:60].astype(float))
    many = router_fit(problem, np.arange(400), wrong.astype(float))
    (_, w_few), (_, w_many) = [m.estimator.weights for m in (few, many)]
    assert w_few < 0.15 < 0.4 < w_many


def test_router_fit_matrix_fits_a_linear_prior():
    problem, wrong = _problem()
    rows = np.arange(400)
    X = features(problem, rows, TRANSFERABLE_COLUMNS)
    prior = router_fit_matrix(X, wrong.astype(float), TRANSFERABLE_COLUMNS, 0, linear_only=True)
    assert type(prior.estimator).__name__ == "Pipeline"
    p = router_predict(prior, features(problem, rows, prior.columns))
    assert p[wrong].mean() > p[~wrong].mean()
    data = router_dumps(prior)
    assert router_loads(data, sha256=router_sha256(data)).columns == prior.columns
