import numpy as np
import pytest

from routing.evaluation import ROW_KEYS, evaluate, label_accuracy, routing_efficiency
from routing.problem import NONE, TEXT_COLUMNS, A, B, RoutingInputs


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
