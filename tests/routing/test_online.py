"""The live loop's decisions and their replay (routing.online): what the router may see, the
seed, the budget, the refit cadence, the prior."""

import numpy as np
import pytest

from routing.online import (
    OnlinePlan,
    cv_auc,
    online_routing,
    prior_fit,
    round_release,
    round_scores,
    seed_order,
)
from routing.problem import NONE, TEXT_COLUMNS, A, B, RoutingInputs, problem_build
from routing.router import TRANSFERABLE_COLUMNS, bought_lm_wrong, router_fit, router_score
from routing.strategies import judge_confidence_score


def inputs_for(n: int = 600, seed: int = 0, votes_per_item: int = 3) -> RoutingInputs:
    """The LM label is wrong mostly where the judge is unsure (|p_a - 0.5| < 0.15); humans
    give the gold label with probability 0.9."""
    rng = np.random.default_rng(seed)
    p_a = rng.random(n)
    lm = np.where(p_a > 0.5, A, B).astype(np.int32)
    wrong = (np.abs(p_a - 0.5) < 0.15) ^ (rng.random(n) < 0.05)
    gold = np.where(wrong, 1 - lm, lm)
    right = rng.random((n, votes_per_item)) < 0.9
    votes = np.where(right, gold[:, None], 1 - gold[:, None]).astype(np.int32)
    return RoutingInputs(
        text={c: rng.random(n) * 100 for c in TEXT_COLUMNS},
        tag_codes=np.zeros((n, 0), dtype=np.int32),
        tag_vocabulary=[],
        p_a=p_a,
        consistent=(rng.random(n) < 0.8).astype(float),
        truncated=np.zeros(n),
        lm_choice=lm,
        others_agree=np.full(n, np.nan),
        others_p_a=np.full(n, np.nan),
        votes=votes,
    )


def plan_for(**kw) -> OnlinePlan:
    return OnlinePlan(**{"seed_size": 30, "batch_size": 40, "refit_every": 40, "seed": 3, **kw})


def test_the_router_never_sees_a_label_it_has_not_bought():
    inputs = inputs_for()
    problem = problem_build(inputs, seed=1)
    plan = plan_for()
    first = online_routing(problem, budget=250, plan=plan)
    # Flip every human label of every comparison the loop did not send to humans: if the
    # router saw any of them, some round would decide differently.
    flipped = inputs_for()
    unseen = ~first.human
    flipped.votes[unseen] = np.where(flipped.votes[unseen] == NONE, NONE, 1 - flipped.votes[unseen])
    other = problem_build(flipped, seed=1)
    assert not np.array_equal(
        other.targets.lm_right[unseen], problem.targets.lm_right[unseen]
    )  # the flip changed what a peeking router would learn
    second = online_routing(other, budget=250, plan=plan)
    assert np.array_equal(first.round, second.round)
    assert np.array_equal(first.order, second.order)
    assert np.array_equal(first.score, second.score, equal_nan=True)
    assert (first.bases, first.fits) == (second.bases, second.fits)


def test_the_router_learns_from_the_labels_it_bought():
    # The converse: flipping the bought labels changes later rounds (the test above is not
    # passing because the router ignores labels altogether).
    inputs = inputs_for()
    problem = problem_build(inputs, seed=1)
    plan = plan_for()
    first = online_routing(problem, budget=250, plan=plan)
    seen = first.round == 0
    inputs.votes[seen] = 1 - inputs.votes[seen]
    second = online_routing(problem_build(inputs, seed=1), budget=250, plan=plan)
    assert np.array_equal(first.round == 0, second.round == 0)
    assert not np.array_equal(first.order, second.order)


def test_the_router_learns_from_the_bought_label_not_the_gold():
    # One bought label per comparison, the others held out as gold: the router's target is
    # whether the bought label differs from the LM label.
    problem = problem_build(inputs_for(), seed=1)
    t = problem.targets
    target = bought_lm_wrong(problem)
    assert np.array_equal(target[t.labelled], (t.bought != t.lm)[t.labelled].astype(float))
    assert (t.bought != t.gold)[t.labelled].any()  # bought and gold differ somewhere
    assert np.isnan(target[~t.labelled]).all()


def test_the_budget_is_never_exceeded_and_nothing_is_released_twice():
    problem = problem_build(inputs_for(), seed=0)
    candidates = np.ones(problem.n, dtype=bool)
    candidates[::7] = False  # already human, or gold items: never released
    result = online_routing(problem, budget=157, plan=plan_for(), candidates=candidates)
    assert result.human.sum() == 157
    assert not result.human[~candidates].any()
    assert sorted(result.order[result.human]) == list(range(157))
    assert (result.order[~result.human] == -1).all()
    sizes = np.bincount(result.round[result.human])
    assert sizes.tolist() == [30, 40, 40, 40, 7]  # the seed counts; the last round is cut
    assert all(b.startswith("seed") for b in result.bases[:1])


def test_a_budget_above_the_candidates_releases_each_once():
    problem = problem_build(inputs_for(n=100), seed=0)
    result = online_routing(problem, budget=500, plan=plan_for())
    assert result.human.all()
    assert sorted(result.order) == list(range(100))


def test_a_smaller_budget_releases_a_prefix_of_a_larger_ones_order():
    problem = problem_build(inputs_for(), seed=0)
    big = online_routing(problem, budget=300, plan=plan_for())
    for budget in (10, 30, 95, 200):
        small = online_routing(problem, budget=budget, plan=plan_for())
        assert np.array_equal(small.human, (big.order >= 0) & (big.order < budget))


def test_the_router_is_refitted_at_its_cadence():
    problem = problem_build(inputs_for(), seed=0)
    every_round = online_routing(problem, budget=230, plan=plan_for())
    # Bought after each round: 30 (under 40 since no fit: none), 70, 110, 150, 190 (a refit
    # after each), 230 (the budget is spent: none).
    assert len(every_round.fits) == 4
    assert "router (" not in every_round.bases[1]  # after the seed, under 40 bought: no model
    every_other = online_routing(problem, budget=230, plan=plan_for(refit_every=80))
    # 30+40 = 70 < 80, 110 >= 80: refit; then 40 more (150): not; 190: refit.
    assert len(every_other.fits) == 2
    assert every_other.fits[0] < every_other.fits[1]
    seed_first = online_routing(problem, budget=230, plan=plan_for(refit_every=30))
    assert "project's router" in seed_first.bases[1]


def test_without_a_router_the_judges_confidence_orders_the_round():
    problem = problem_build(inputs_for(), seed=0)
    candidates = np.ones(problem.n, dtype=bool)
    score, basis = round_scores(problem, candidates, own=None, plan=plan_for(), n_own=0)
    assert np.array_equal(score, judge_confidence_score(problem, candidates, None))
    assert "judge_confidence" in basis


def _prior_and_own(problem):
    target = bought_lm_wrong(problem)
    rows = np.flatnonzero(~np.isnan(target))
    prior = router_fit(problem, rows[:300], target[rows[:300]], seed=0)
    own = router_fit(problem, rows[300:], target[rows[300:]], seed=0)
    return prior, own


def test_the_prior_gives_way_to_the_own_router_as_its_labels_grow():
    problem = problem_build(inputs_for(), seed=0)
    prior, own = _prior_and_own(problem)
    candidates = np.zeros(problem.n, dtype=bool)
    candidates[:50] = True
    rows = np.arange(50)
    plan = plan_for(prior=prior, prior_threshold=100)
    p_prior, p_own = router_score(prior, problem, rows), router_score(own, problem, rows)
    alone, basis = round_scores(problem, candidates, own=None, plan=plan, n_own=0)
    assert np.allclose(alone[rows], p_prior) and "prior" in basis
    assert np.isnan(alone[50:]).all()
    half, basis = round_scores(problem, candidates, own=own, plan=plan, n_own=50)
    assert np.allclose(half[rows], 0.5 * p_prior + 0.5 * p_own) and "50%" in basis
    over, basis = round_scores(problem, candidates, own=own, plan=plan, n_own=150)
    assert np.allclose(over[rows], p_own) and "prior" not in basis


def test_a_prior_ranks_the_first_round_after_the_seed():
    problem = problem_build(inputs_for(), seed=0)
    prior, _ = _prior_and_own(problem)
    plan = plan_for(prior=prior)
    result = online_routing(problem, budget=70, plan=plan)
    assert "prior" in result.bases[1]
    released = np.flatnonzero(result.round == 1)
    assert np.allclose(result.score[released], router_score(prior, problem, released))


def test_a_later_round_releases_its_top_scores_with_ties_at_random():
    problem = problem_build(inputs_for(), seed=0)
    candidates = np.ones(problem.n, dtype=bool)
    plan = plan_for()
    chosen, scores, _ = round_release(
        problem, candidates=candidates, k=60, round_index=2, own=None, plan=plan, n_own=0
    )
    score, _ = round_scores(problem, candidates, own=None, plan=plan, n_own=0)
    assert np.all(np.diff(scores) <= 0)
    assert scores[-1] >= np.sort(score)[::-1][60]
    again, _, _ = round_release(
        problem, candidates=candidates, k=60, round_index=2, own=None, plan=plan, n_own=0
    )
    assert np.array_equal(chosen, again)


def test_the_seed_is_a_seeded_random_draw():
    problem = problem_build(inputs_for(), seed=0)
    candidates = np.ones(problem.n, dtype=bool)
    kw = {"candidates": candidates, "k": 50, "round_index": 0, "own": None, "n_own": 0}
    first, scores, basis = round_release(problem, plan=plan_for(), **kw)
    same, _, _ = round_release(problem, plan=plan_for(), **kw)
    other, _, _ = round_release(problem, plan=plan_for(seed=4), **kw)
    assert np.array_equal(first, same) and not np.array_equal(first, other)
    assert len(set(first.tolist())) == 50 and (scores == 0).all() and basis == "seed: draw"


def test_a_stratified_seed_holds_each_stratum_in_proportion_at_every_prefix():
    strata = np.repeat([0, 1, 2, -1], [500, 300, 150, 50])
    rng = np.random.default_rng(0)
    strata = strata[rng.permutation(strata.size)]
    candidates = np.ones(strata.size, dtype=bool)
    order = seed_order(candidates, seed=5, strata=strata)
    assert sorted(order.tolist()) == list(range(strata.size))
    for k in (20, 100, 333):
        counts = {c: int((strata[order[:k]] == c).sum()) for c in (0, 1, 2, -1)}
        for code, share in ((0, 0.5), (1, 0.3), (2, 0.15), (-1, 0.05)):
            assert abs(counts[code] - share * k) <= 1.0, (k, counts)
    assert not np.array_equal(order, seed_order(candidates, seed=6, strata=strata))


def test_a_stratified_seed_draws_only_candidates():
    strata = np.repeat([0, 1], [100, 100])
    candidates = np.ones(200, dtype=bool)
    candidates[:50] = False
    order = seed_order(candidates, seed=0, strata=strata)
    assert set(order.tolist()) == set(range(50, 200))
    counts = np.bincount(strata[order[:60]])
    assert counts.tolist() == [20, 40]  # 50 of stratum 0 left, 100 of stratum 1


@pytest.mark.parametrize("budget", [0, 1])
def test_a_tiny_budget(budget):
    problem = problem_build(inputs_for(n=50), seed=0)
    result = online_routing(problem, budget=budget, plan=plan_for())
    assert result.human.sum() == budget and result.fits == []


def test_cv_auc_of_a_router_that_can_learn():
    problem = problem_build(inputs_for(), seed=0)
    target = bought_lm_wrong(problem)
    rows = np.arange(problem.n)
    auc = cv_auc(problem, rows, target, seed=0)
    assert 0.75 < auc <= 1.0
    assert cv_auc(problem, rows, target, seed=0) == auc  # seeded


def test_cv_auc_needs_a_few_labels_of_each_class():
    problem = problem_build(inputs_for(), seed=0)
    target = bought_lm_wrong(problem)
    rows = np.flatnonzero(target == 0)[:40]
    assert cv_auc(problem, rows, target[rows]) is None  # one class only
    rows = np.concatenate([rows, np.flatnonzero(target == 1)[:4]])
    assert cv_auc(problem, rows, target[rows], folds=5) is None  # 4 of the other
    rows = np.concatenate([rows, np.flatnonzero(target == 1)[4:5]])
    assert cv_auc(problem, rows, target[rows], folds=5) is not None


def test_a_prior_from_other_problems_routes_a_problem_whose_labels_it_never_saw():
    sources = [problem_build(inputs_for(seed=s), seed=s) for s in (1, 2, 3)]
    prior, metrics = prior_fit(sources, seed=0)
    assert set(prior.columns) <= set(TRANSFERABLE_COLUMNS)
    assert metrics["validation"] == "leave one problem out"
    assert metrics["problems"] == 3 and len(metrics["auc_per_problem"]) == 3
    assert metrics["n"] == sum(int((~np.isnan(bought_lm_wrong(p))).sum()) for p in sources)
    assert metrics["auc"] > 0.75
    # The target project: its labels are never read (all of them removed here).
    target_inputs = inputs_for(seed=9)
    truth = target_inputs.lm_choice != target_inputs.votes[:, 0]
    target_inputs.votes[:] = NONE
    target = problem_build(target_inputs, seed=0)
    plan = plan_for(prior=prior, seed_size=0)
    result = online_routing(target, budget=100, plan=plan)
    assert set(result.fits) == {0}  # no label bought: the own router is a constant
    assert all("prior" in basis for basis in result.bases[1:])
    assert truth[result.human].mean() > truth.mean() + 0.25


def test_a_prior_from_one_problem_is_cross_validated_within_it():
    prior, metrics = prior_fit([problem_build(inputs_for(), seed=0)], seed=0)
    assert metrics["validation"] == "5-fold" and metrics["auc"] > 0.75
    assert prior.estimator is not None
