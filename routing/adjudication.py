"""Adjudication: which released comparisons deserve one more human label. Pure numpy.

A comparison whose full human labels are in asks for one more where the humans split (no
majority between A and B), or where their majority contradicts an LM label that was confident
(|p_a - 0.5| >= CONFIDENT) and the same in both shown orders: one of the two is wrong, and one
more vote says which. Never beyond the policy's maximum labels per comparison.
"""

import numpy as np

from routing.problem import NONE, TIE, A, B, majority

CONFIDENT = 0.3
_NAMES = {A: "A", B: "B", TIE: "tie"}


def adjudication_needs(
    *,
    votes: np.ndarray,
    lm_choice: np.ndarray,
    p_a: np.ndarray,
    consistent: np.ndarray,
    eligible: np.ndarray,
    done: np.ndarray,
    cap: int,
) -> tuple[np.ndarray, list[str]]:
    """(indices, reasons) of the eligible comparisons (released, all wanted labels in) that
    need one more label, with fewer than `cap` labels so far."""
    chosen, reasons = [], []
    for i in np.flatnonzero(eligible & (done < cap)):
        row = votes[i][votes[i] != NONE]
        reason = _reason(row, int(lm_choice[i]), float(p_a[i]), float(consistent[i]))
        if reason:
            chosen.append(i)
            reasons.append(reason)
    return np.array(chosen, dtype=np.int64), reasons


def _reason(row: np.ndarray, lm: int, p_a: float, consistent: float) -> str:
    if row.size == 0:
        return ""
    gold = majority(row)
    counts = (
        f"{int((row == A).sum())} A / {int((row == B).sum())} B / {int((row == TIE).sum())} tie"
    )
    if gold == NONE:
        return f"the humans split ({counts}): one more label decides"
    confident = not np.isnan(p_a) and abs(p_a - 0.5) >= CONFIDENT and consistent == 1.0
    if gold in (A, B) and lm in (A, B) and lm != gold and confident:
        return (
            f"the human majority ({_NAMES[gold]}; {counts}) contradicts a confident, "
            f"order-consistent LM label ({_NAMES[lm]}, p_a {p_a:.2f}): one more label checks"
        )
    return ""
