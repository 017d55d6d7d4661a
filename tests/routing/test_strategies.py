"""Each strategy on a hand-made problem whose right answer is known."""

import numpy as np
import pytest

from routing.problem import RoutingProblem, Targets
from routing.strategies import (
    STRATEGIES,
    StrategyError,
    StrategyOptions,
    cross_fit,
    top_k,
)


def make_problem(
    *,
    n: int,
    bad: np.ndarray,
    labelled: np.ndarray,
    p_a=None,
    consistent=None,
    folds: int = 5,
    seed: int = 0,
) -> RoutingProblem:
    """n comparisons; the LM label is wrong exactly on `bad`. One informative feature column
    (1 on bad items) and one noise column; PPM tags: 'bad' and 'good' plus a noise tag."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([bad.astype(float), rng.random(n)])
    noise_tag = rng.integers(0, 2, size=n)
    bins = np.column_stack([np.where(bad, 0, 1), 2 + noise_tag]).astype(np.int32)
    human_right = np.where(labelled, 1.0, np.nan)
    lm_right = np.where(labelled, (~bad).astype(float), np.nan)
    fold_ids = np.full(n, -1, dtype=np.int32)
    idx = np.flatnonzero(labelled)
    fold_ids[rng.permutation(idx)] = np.arange(idx.size) % folds
    return RoutingProblem(
        X=X,
        columns=["signal", "noise"],
        bins=bins,
        tag_names=["bad", "good", "noise0", "noise1"],
        p_a=np.full(n, 0.9) if p_a is None else p_a,
        consistent=np.ones(n) if consistent is None else consistent,
        targets=Targets(labelled=labelled, human_right=human_right, lm_right=lm_right),
        folds=fold_ids,
        lm_undecided=np.zeros(n, dtype=bool),
    )


def route(name, problem, candidates, budget, seed=0, **kw):
    return STRATEGIES[name].route(problem, candidates, budget, StrategyOptions(seed=seed, **kw))


def test_every_strategy_has_a_version():
    assert set(STRATEGIES) == {
        "all_human",
        "all_lm",
        "random",
        "judge_confidence",
        "learned",
        "hyper_topk",
        "hyper_simulated",
    }
    assert all(s.version for s in STRATEGIES.values())


def test_all_human_and_all_lm_ignore_the_budget():
    n = 10
    problem = make_problem(n=n, bad=np.zeros(n, bool), labelled=np.zeros(n, bool))
    candidates = np.ones(n, bool)
    candidates[0] = False
    assert route("all_human", problem, candidates, 2).human.tolist() == candidates.tolist()
    assert not route("all_lm", problem, candidates, 8).human.any()


def test_random_is_seeded_and_respects_the_budget():
    n = 100
    problem = make_problem(n=n, bad=np.zeros(n, bool), labelled=np.zeros(n, bool))
    candidates = np.arange(n) % 2 == 0
    first = route("random", problem, candidates, 10, seed=1).human
    assert first.sum() == 10 and not first[~candidates].any()
    assert (route("random", problem, candidates, 10, seed=1).human == first).all()
    assert (route("random", problem, candidates, 10, seed=2).human != first).any()


def test_judge_confidence_takes_missing_then_inconsistent_then_least_confident():
    p_a = np.array([np.nan, 0.5, 0.9, 0.55, 1.0, 0.6])
    consistent = np.array([np.nan, 0.0, 0.0, 1.0, 1.0, np.nan])
    n = len(p_a)
    problem = make_problem(
        n=n, bad=np.zeros(n, bool), labelled=np.zeros(n, bool), p_a=p_a, consistent=consistent
    )
    everything = np.ones(n, bool)
    order = [
        np.flatnonzero(route("judge_confidence", problem, everything, k).human) for k in range(7)
    ]
    picked = [sorted(set(order[k + 1]) - set(order[k])) for k in range(6)]
    # no label; inconsistent (least confident first); unknown consistency; consistent 0.55, 1.0
    assert picked == [[0], [1], [2], [5], [3], [4]]


def test_top_k_breaks_ties_at_random_not_by_position():
    score = np.zeros(1000)
    chosen = top_k(score, np.ones(1000, bool), 100, seed=0)
    assert chosen.sum() == 100
    assert chosen[:500].sum() not in (0, 100)


@pytest.mark.parametrize("name", ["learned", "hyper_topk", "hyper_simulated"])
def test_learning_strategies_find_the_items_the_lm_gets_wrong(name):
    n = 300
    rng = np.random.default_rng(0)
    bad = rng.random(n) < 0.2
    labelled = np.arange(n) < 200
    problem = make_problem(n=n, bad=bad, labelled=labelled)
    candidates = ~labelled
    budget = int(bad[candidates].sum())
    routing = route(name, problem, candidates, budget, ppm_candidates=200, simulated_candidates=200)
    assert routing.human.sum() == budget
    assert not routing.human[labelled].any()
    assert (routing.human[candidates] == bad[candidates]).all()


@pytest.mark.parametrize("name", ["learned", "hyper_topk", "hyper_simulated"])
def test_learning_strategies_cross_fit_over_labelled_candidates(name):
    # Evaluation routes the labelled comparisons themselves: the answer is still found, by
    # models that never saw the comparison they score.
    n = 400
    rng = np.random.default_rng(1)
    bad = rng.random(n) < 0.25
    labelled = np.ones(n, bool)
    problem = make_problem(n=n, bad=bad, labelled=labelled)
    routing = route(
        name, problem, labelled, int(bad.sum()), ppm_candidates=200, simulated_candidates=300
    )
    assert (routing.human == bad).mean() > 0.95


def test_learning_strategies_refuse_without_labels():
    n = 50
    problem = make_problem(n=n, bad=np.zeros(n, bool), labelled=np.arange(n) < 5)
    for name in ("learned", "hyper_topk", "hyper_simulated"):
        with pytest.raises(StrategyError, match="at least 10 comparisons"):
            route(name, problem, np.arange(n) >= 5, 10)


def test_cross_fitting_never_scores_an_item_with_a_model_that_saw_it():
    n = 120
    labelled = np.arange(n) < 100  # 100 labelled in 5 folds, 20 unlabelled
    problem = make_problem(n=n, bad=np.zeros(n, bool), labelled=labelled)
    trained_on: dict[int, set] = {}

    def fit(train):
        model = len(trained_on)
        trained_on[model] = set(train.tolist())
        return model

    scored_by = {}

    def predict(model, rows):
        for i in rows.tolist():
            assert i not in scored_by, "scored twice"
            scored_by[i] = model
        return np.zeros(rows.size)

    everything = np.ones(n, bool)
    scores = cross_fit(problem, everything, fit, predict)
    assert not np.isnan(scores).any()
    assert set(scored_by) == set(range(n))
    for item, model in scored_by.items():
        assert item not in trained_on[model]
    # Each labelled item's model saw every other fold: nothing is wasted either.
    for item in range(100):
        assert len(trained_on[scored_by[item]]) == 80
    assert all(len(trained_on[scored_by[i]]) == 100 for i in range(100, n))


def test_learned_scores_do_not_leak_the_items_own_label():
    # The label is pure noise, and a duplicate-free feature identifies each item: a model that
    # saw an item would score its own label; cross-fitted scores carry no such signal.
    n = 400
    rng = np.random.default_rng(5)
    bad = rng.random(n) < 0.5
    problem = make_problem(n=n, bad=bad, labelled=np.ones(n, bool))
    problem.X = np.column_stack([np.arange(n, dtype=float), rng.random(n)])
    scores = STRATEGIES["learned"].scores(problem, np.ones(n, bool), StrategyOptions())
    gap = scores[bad].mean() - scores[~bad].mean()
    assert abs(gap) < 0.1
