import numpy as np

from routing.problem import (
    NONE,
    TEXT_COLUMNS,
    TIE,
    A,
    B,
    RoutingInputs,
    bin3,
    inputs_take,
    len_ratio,
    majority,
    percentile_rank,
    tag_strata,
    targets_build,
)


def test_bins_follow_the_papers_edges_inclusive_on_the_right():
    values = np.array([0.0, 0.33, 0.3300001, 0.5, 0.67, 0.6700001, 1.0, np.nan])
    assert bin3(values).tolist() == [0, 0, 1, 1, 1, 2, 2, -1]


def test_percentile_ranks_scale_to_one_and_share_ties():
    ranks = percentile_rank(np.array([10.0, 20.0, 20.0, 40.0, np.nan]))
    assert ranks[:4].tolist() == [0.25, 0.625, 0.625, 1.0]
    assert np.isnan(ranks[4])


def test_len_ratio_of_empty_responses_is_defined_and_unknown_lengths_stay_unknown():
    shorter = np.array([2.0, 0.0, 0.0, np.nan])
    longer = np.array([4.0, 5.0, 0.0, np.nan])
    with np.errstate(all="raise"):  # no division by zero, not even a masked one
        ratio = len_ratio(shorter, longer)
    assert ratio[:3].tolist() == [0.5, 0.0, 1.0]
    assert np.isnan(ratio[3])


def test_majority_needs_a_single_winner():
    assert majority(np.array([A, A, B])) == A
    assert majority(np.array([A, B])) == NONE
    assert majority(np.array([NONE, NONE])) == NONE
    assert majority(np.array([TIE, TIE, A])) == TIE


def test_targets_buy_one_label_and_score_against_the_others():
    votes = np.array(
        [
            [A, NONE, NONE],  # single gold label: bought = gold
            [A, A, A],  # unanimous: whichever is bought is right
            [B, TIE, TIE],  # gold of the others is a tie (or split): not scorable
            [NONE, NONE, NONE],  # no human label
        ]
    )
    lm = np.array([B, A, A, A])
    for seed in range(5):
        t = targets_build(votes, lm, seed=seed)
        assert t.labelled.tolist() == [True, True, False, False]
        assert t.human_right[:2].tolist() == [1.0, 1.0]
        assert t.lm_right[:2].tolist() == [0.0, 1.0]
        assert np.isnan(t.lm_right[3])


def test_bought_label_is_scored_against_the_consensus_of_the_others():
    # Two A and one B: buying the B leaves an A consensus (human wrong); buying an A leaves a
    # split, which is not scorable. Over seeds both happen, and a bought B is always wrong.
    votes = np.array([[A, A, B]])
    seen = set()
    for seed in range(40):
        t = targets_build(votes, np.array([A]), seed=seed)
        if t.labelled[0]:
            assert t.human_right[0] == 0.0 and t.lm_right[0] == 1.0
        seen.add(bool(t.labelled[0]))
    assert seen == {True, False}


def test_lm_ties_are_broken_at_random():
    votes = np.full((400, 1), A)
    t = targets_build(votes, np.full(400, TIE), seed=3)
    assert 0.4 < t.lm_right.mean() < 0.6


def _inputs_with_tags():
    n = 4
    return RoutingInputs(
        text={c: np.arange(n, dtype=float) for c in TEXT_COLUMNS},
        tag_codes=np.array([[0, 2], [1, -1], [-1, -1], [2, 3]], dtype=np.int32),
        tag_vocabulary=["category=math", "category=code", "source=x", "category=chat"],
        p_a=np.array([0.1, 0.2, 0.3, 0.4]),
        consistent=np.ones(n),
        truncated=np.zeros(n),
        lm_choice=np.array([A, B, A, B]),
        others_agree=np.full(n, np.nan),
        others_p_a=np.full(n, np.nan),
        votes=np.array([[A], [B], [NONE], [A]]),
        other_choices={"gpt": np.array([A, A, B, B])},
        ids=np.array([10, 11, 12, 13]),
    )


def test_inputs_take_keeps_the_rows_asked_for_in_every_column():
    taken = inputs_take(_inputs_with_tags(), np.array([3, 1, 1]))
    assert taken.ids.tolist() == [13, 11, 11]
    assert taken.p_a.tolist() == [0.4, 0.2, 0.2]
    assert taken.text["len_a"].tolist() == [3.0, 1.0, 1.0]
    assert taken.tag_codes.tolist() == [[2, 3], [1, -1], [1, -1]]
    assert taken.other_choices["gpt"].tolist() == [B, A, A]
    assert taken.votes.tolist() == [[A], [B], [B]]
    assert taken.tag_vocabulary == _inputs_with_tags().tag_vocabulary


def test_tag_strata_take_each_comparisons_first_tag_of_the_key():
    strata = tag_strata(_inputs_with_tags(), "category")
    assert strata.tolist() == [0, 1, -1, 3]
    assert tag_strata(_inputs_with_tags(), "source").tolist() == [2, -1, -1, 2]
    assert tag_strata(_inputs_with_tags(), "nothing").tolist() == [-1, -1, -1, -1]
