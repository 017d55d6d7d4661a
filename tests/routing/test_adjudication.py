"""Adjudication: one more human label where the humans split or contradict a confident LM."""

import numpy as np

from routing.adjudication import adjudication_needs
from routing.problem import NONE, TIE, A, B


def _needs(votes, lm, p_a, consistent, *, cap=3, eligible=None):
    votes = np.array(votes, dtype=np.int32)
    n = len(votes)
    done = (votes != NONE).sum(axis=1)
    return adjudication_needs(
        votes=votes,
        lm_choice=np.array(lm, dtype=np.int32),
        p_a=np.array(p_a, dtype=float),
        consistent=np.array(consistent, dtype=float),
        eligible=np.ones(n, dtype=bool) if eligible is None else np.array(eligible),
        done=done,
        cap=cap,
    )


def test_a_split_vote_asks_for_one_more():
    chosen, reasons = _needs([[A, B]], [A], [0.9], [1.0])
    assert chosen.tolist() == [0] and "split (1 A / 1 B / 0 tie)" in reasons[0]


def test_a_majority_against_a_confident_consistent_lm_label_asks_for_one_more():
    chosen, reasons = _needs([[B, B]], [A], [0.92], [1.0])
    assert chosen.tolist() == [0] and "contradicts a confident" in reasons[0]


def test_agreement_an_unsure_or_inconsistent_lm_or_a_tie_asks_for_nothing():
    chosen, _ = _needs(
        [[A, A], [B, B], [B, B], [TIE, TIE]],
        [A, A, A, A],
        [0.95, 0.6, 0.95, 0.95],
        [1.0, 1.0, 0.0, 1.0],
    )
    assert chosen.tolist() == []


def test_never_beyond_the_cap_nor_for_an_ineligible_comparison():
    assert _needs([[A, B]], [A], [0.9], [1.0], cap=2)[0].tolist() == []
    assert _needs([[A, B]], [A], [0.9], [1.0], eligible=[False])[0].tolist() == []
