"""The judge's maths: renormalising over label tokens, the 5-point expectation, both orders."""

import math

import pytest

from scoring.judging.combine import p_first_better, renormalise, verdict_combine


def test_renormalise_keeps_only_the_label_tokens():
    probs = renormalise({"A": math.log(0.3), "B": math.log(0.1), "The": math.log(0.6)}, ("A", "B"))
    assert probs == pytest.approx({"A": 0.75, "B": 0.25})


def test_a_label_without_a_score_gets_zero_and_none_is_an_error():
    assert renormalise({"A": -1.0}, ("A", "B")) == {"A": 1.0, "B": 0.0}
    with pytest.raises(ValueError, match="none of the label tokens"):
        renormalise({"The": -0.1}, ("A", "B"))


def test_five_point_expectation():
    labels = ("1", "2", "3", "4", "5")
    assert p_first_better({k: float(k == "1") for k in labels}, "five-point") == 1.0
    assert p_first_better({k: float(k == "5") for k in labels}, "five-point") == 0.0
    assert p_first_better({k: 0.2 for k in labels}, "five-point") == pytest.approx(0.5)
    assert p_first_better({"1": 0.5, "2": 0.5, "3": 0, "4": 0, "5": 0}, "five-point") == 0.875


def test_both_orders_are_combined_as_in_the_design():
    # A shown first: P(first) = 0.9 -> P(A) = 0.9; B shown first: P(first) = 0.3 -> P(A) = 0.7.
    verdict = verdict_combine(0.9, 0.3, tie_threshold=0.05)
    assert verdict.p_a == pytest.approx(0.8)
    assert (verdict.p_a_ab, verdict.p_a_ba) == pytest.approx((0.9, 0.7))
    assert (verdict.choice, verdict.strength, verdict.position_consistent) == ("A", "clearly", True)


def test_a_judge_that_always_picks_the_first_shown_is_inconsistent_and_a_tie():
    verdict = verdict_combine(0.95, 0.95, tie_threshold=0.05)
    assert verdict.p_a == pytest.approx(0.5)
    assert verdict.choice == "tie" and verdict.strength == "unknown"
    assert verdict.position_consistent is False


@pytest.mark.parametrize(
    ("ab", "ba", "threshold", "expected"),
    [
        (0.56, 0.44, 0.05, ("A", "slightly")),
        (0.54, 0.46, 0.05, ("tie", "unknown")),
        (0.30, 0.70, 0.05, ("B", "clearly")),
        (0.40, 0.62, 0.05, ("B", "slightly")),
        (0.60, 0.40, 0.15, ("tie", "unknown")),
    ],
)
def test_tie_threshold_and_strength(ab, ba, threshold, expected):
    verdict = verdict_combine(ab, ba, tie_threshold=threshold)
    assert (verdict.choice, verdict.strength) == expected
