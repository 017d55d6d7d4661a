"""Turning label-token scores into calibrated, position-debiased judgements. Pure functions."""

import math
from dataclasses import dataclass

from scoring.judging.prompts import BINARY, LABELS


def renormalise(logprobs: dict[str, float], labels: tuple[str, ...]) -> dict[str, float]:
    """Probabilities over the label tokens only (a small model puts much of its mass elsewhere).

    Labels missing from `logprobs` get probability 0; at least one must be present.
    """
    present = {label: logprobs[label] for label in labels if label in logprobs}
    if not present:
        raise ValueError(f"none of the label tokens {labels} has a score")
    top = max(present.values())
    weights = {label: math.exp(lp - top) for label, lp in present.items()}
    total = sum(weights.values())
    return {label: weights.get(label, 0.0) / total for label in labels}


def p_first_better(probs: dict[str, float], scale: str) -> float:
    """P(the first shown response is better): the A probability, or on the 5-point scale the
    expectation of the answer mapped from 1 (first clearly better) -> 1.0 to 5 -> 0.0."""
    labels = LABELS[scale]
    if scale == BINARY:
        return probs[labels[0]]
    expected = sum(int(label) * probs[label] for label in labels)
    return (5.0 - expected) / 4.0


@dataclass(frozen=True)
class Verdict:
    p_a: float
    p_a_ab: float
    p_a_ba: float
    choice: str  # "A", "B" or "tie"
    strength: str  # "clearly", "slightly" or "unknown"
    position_consistent: bool


def verdict_combine(
    p_first_ab: float, p_first_ba: float, *, tie_threshold: float, clear_margin: float = 0.3
) -> Verdict:
    """Combine both shown orders (docs/architecture.md, "The LM judge").

    `p_first_ab`: P(first better) with A shown first, i.e. P(A better). `p_first_ba`: P(first
    better) with B shown first, i.e. P(B better). p_a = (p_first_ab + (1 - p_first_ba)) / 2.
    |p_a - 0.5| < tie_threshold is a tie; beyond 0.5 - clear_margin from the middle it is clear.
    """
    p_a_ab = p_first_ab
    p_a_ba = 1.0 - p_first_ba
    p_a = (p_a_ab + p_a_ba) / 2.0
    consistent = (p_a_ab > 0.5) == (p_a_ba > 0.5) and p_a_ab != 0.5 and p_a_ba != 0.5
    distance = abs(p_a - 0.5)
    if distance < tie_threshold:
        choice, strength = "tie", "unknown"
    else:
        choice = "A" if p_a > 0.5 else "B"
        # (a tolerance, so that p_a = 0.3 counts as 0.2 from the middle, not 0.19999...)
        strength = "clearly" if distance >= 0.5 - clear_margin - 1e-9 else "slightly"
    return Verdict(
        p_a=p_a,
        p_a_ab=p_a_ab,
        p_a_ba=p_a_ba,
        choice=choice,
        strength=strength,
        position_consistent=consistent,
    )
