import numpy as np
import pytest

from routing.evaluation import (
    PROTOCOLS,
    ROW_KEYS,
    OnlineSettings,
    _curves,
    evaluate,
    format_table,
    label_accuracy,
    plot,
    routing_efficiency,
    summary_table,
)
from routing.online import online_routing, prior_fit
from routing.problem import NONE, TEXT_COLUMNS, A, B, RoutingInputs, problem_build


def test_routing_efficiency_formula():
    assert routing_efficiency(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert routing_efficiency(0.5, 0.5, 0.9) == 0.0
    assert routing_efficiency(0.9, 0.5, 0.9) == 1.0
    assert routing_efficiency(0.8, 0.8, 0.8) is None


def test_label_accuracy_mixes_human_and_lm_labels():
    human = np.array([True, False, False, True])
    assert label_accuracy(human, np.ones(4), np.array([0.0, 1.0, 0.0, 0.0])) == 0.75


def tiny_inputs() -> RoutingInputs:
    """Four comparisons with one gold label each: the LM is right and sure on two, wrong and
    order-inconsistent on two (A with p_a 0.6 where B is right)."""
    n = 4
    return RoutingInputs(
        text={c: np.full(n, np.nan) for c in TEXT_COLUMNS},
        tag_codes=np.zeros((n, 0), dtype=np.int32),
        tag_vocabulary=[],
        p_a=np.array([1.0, 0.0, 0.6, 0.6]),
        consistent=np.array([1.0, 1.0, 0.0, 0.0]),
        truncated=np.zeros(n),
        lm_choice=np.array([A, B, A, A]),
        others_agree=np.full(n, np.nan),
        others_p_a=np.full(n, np.nan),
        votes=np.array([[A], [B], [B], [B]]),
    )


def test_evaluate_on_a_tiny_set_with_a_known_answer():
    result = evaluate(
        tiny_inputs(),
        strategies=["all_lm", "judge_confidence", "all_human"],
        budgets=[0.0, 0.5, 1.0],
        seeds=2,
    )
    assert (result.n, result.acc0, result.acc1) == (4, 0.5, 1.0)
    assert len(result.rows) == 3 * 3 * 2
    assert all(tuple(row) == ROW_KEYS for row in result.rows)
    by = {(r["strategy"], r["budget"], r["seed"]): r for r in result.rows}
    # Half the budget buys exactly the two inconsistent, wrong LM labels: RE 1.
    half = by[("judge_confidence", 0.5, 1)]
    assert (half["human_fraction"], half["label_accuracy"], half["routing_efficiency"]) == (
        0.5,
        1.0,
        1.0,
    )
    assert by[("all_lm", 1.0, 0)]["label_accuracy"] == 0.5
    assert by[("all_lm", 1.0, 0)]["routing_efficiency"] == 0.0
    assert by[("all_human", 0.0, 0)]["routing_efficiency"] == 1.0
    assert by[("judge_confidence", 0.0, 0)]["rm_accuracy"] is None


def test_evaluate_refuses_a_set_without_gold():
    inputs = tiny_inputs()
    inputs.votes = np.full((4, 1), NONE)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(inputs, strategies=["random"], budgets=[0.5], seeds=1)


def _learnable(seed: int = 0, n: int = 400):
    from tests.routing.test_online import inputs_for

    return inputs_for(n=n, seed=seed)


def _prior():
    problems = [problem_build(_learnable(seed=s), seed=0) for s in (5, 6)]
    return prior_fit(problems, seed=0)[0]


def test_every_protocol_measures_the_strategies_it_applies_to():
    result = evaluate(
        _learnable(),
        strategies=["random", "learned", "hyper_topk"],
        budgets=[0.1, 0.25, 0.5],
        seeds=2,
        protocols=("cross-fit", "online", "transfer"),
        online=OnlineSettings(prior=_prior()),
        ppm_candidates=40,
    )
    assert all(tuple(row) == ROW_KEYS for row in result.rows)
    measured = {(r["protocol"], r["strategy"]) for r in result.rows}
    assert measured == {
        ("cross-fit", "random"),
        ("cross-fit", "learned"),
        ("cross-fit", "hyper_topk"),
        ("online", "random"),
        ("online", "learned"),
        ("transfer", "random"),
        ("transfer", "learned"),
    }
    assert set(result.skipped) == {("online", "hyper_topk"), ("transfer", "hyper_topk")}
    assert len(result.rows) == 7 * 3 * 2
    # A strategy that learns nothing routes the same under every protocol.
    random_rows = {
        p: [
            (r["budget"], r["seed"], r["label_accuracy"])
            for r in result.rows
            if r["protocol"] == p and r["strategy"] == "random"
        ]
        for p in PROTOCOLS
    }
    assert random_rows["cross-fit"] == random_rows["online"] == random_rows["transfer"]
    # Every protocol spends exactly the budget (the online seed included) and the router
    # beats random under each.
    table = {(r["protocol"], r["strategy"], r["budget"]): r for r in summary_table(result.rows)}
    for protocol in PROTOCOLS:
        for budget in (0.1, 0.25, 0.5):
            row = table[(protocol, "learned", budget)]
            assert row["human_fraction"] == pytest.approx(budget, abs=0.5 / result.n)
        assert (
            table[(protocol, "learned", 0.25)]["routing_efficiency"]
            > table[(protocol, "random", 0.25)]["routing_efficiency"] + 0.2
        )
    assert "online" in format_table(summary_table(result.rows))


def test_the_online_protocol_replays_the_loop_once_per_seed():
    # The budget 0.5 release holds the budget 0.25 one: one loop, its release order cut.
    inputs = _learnable()
    settings = OnlineSettings(seed_fraction=0.05, batch_fraction=0.05)
    result = evaluate(
        inputs,
        strategies=["learned"],
        budgets=[0.25],
        seeds=1,
        protocols=("online",),
        online=settings,
    )
    problem = problem_build(inputs, seed=0)
    evaluated = problem.targets.labelled
    n = int(evaluated.sum())
    replay = online_routing(
        problem, budget=round(0.25 * n), plan=settings.plan(n, 0), candidates=evaluated
    )
    t = problem.targets
    expected = label_accuracy(
        replay.human[evaluated], t.human_right[evaluated], t.lm_right[evaluated]
    )
    assert result.rows[0]["label_accuracy"] == expected


def test_the_transfer_protocol_needs_a_prior():
    with pytest.raises(ValueError, match="prior"):
        evaluate(
            _learnable(), strategies=["learned"], budgets=[0.5], seeds=1, protocols=("transfer",)
        )


def test_unknown_protocols_are_refused():
    with pytest.raises(ValueError, match="bandit"):
        evaluate(
            _learnable(), strategies=["learned"], budgets=[0.5], seeds=1, protocols=("bandit",)
        )


def test_the_plot_draws_a_curve_per_protocol_of_a_learning_strategy(tmp_path):
    result = evaluate(
        _learnable(),
        strategies=["random", "learned"],
        budgets=[0.0, 0.5, 1.0],
        seeds=1,
        protocols=("cross-fit", "online"),
    )
    table = summary_table(result.rows)
    assert _curves(table) == [
        ("cross-fit", "random"),
        ("cross-fit", "learned"),
        ("online", "learned"),
    ]
    plot(table, tmp_path / "routing.png")
    assert (tmp_path / "routing.png").read_bytes()[:4] == b"\x89PNG"
