"""`--pairing`: which pairs of one prompt's rated responses become comparisons."""

import pytest

from annotator.dataio.formats import ReadOptions
from annotator.dataio.formats.pairing import PAIRINGS, group_key, pairs_select


def select(scores, pairing, seed=0, key="k"):
    return pairs_select(scores, pairing=pairing, seed=seed, key=key)


def test_best_vs_each_pairs_the_best_with_every_other_in_position_order():
    assert select([2.0, 5.0, 1.0, 3.0], "best-vs-each") == [(0, 1), (1, 2), (1, 3)]


def test_equal_best_scores_go_to_the_earliest_response():
    assert select([1.0, 4.0, 4.0], "best-vs-each") == [(0, 1), (1, 2)]


def test_all_pairs_pairs_every_two_responses():
    assert select([3.0, 1.0, 2.0], "all-pairs") == [(0, 1), (0, 2), (1, 2)]
    assert len(select([0.0] * 7, "all-pairs")) == 21


def test_best_vs_random_is_one_pair_with_the_best_drawn_by_seed_and_group():
    scores = [1.0, 2.0, 9.0, 3.0, 4.0, 0.0, 5.0]
    draws = {
        (seed, key): select(scores, "best-vs-random", seed, key)
        for seed in range(5)
        for key in ("g1", "g2")
    }
    for pair in draws.values():
        assert len(pair) == 1 and 2 in pair[0]
    # The same seed and group draw the same; other seeds or groups draw others.
    assert all(select(scores, "best-vs-random", s, k) == p for (s, k), p in draws.items())
    assert len({p[0] for p in draws.values()}) > 1


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_fewer_than_two_responses_make_no_pair(pairing):
    assert select([], pairing) == [] and select([3.0], pairing) == []


def test_an_unknown_pairing_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown pairing 'best-of-3'; expected one of"):
        select([1.0, 2.0], "best-of-3")


def test_the_group_key_depends_on_content_only():
    assert group_key("Q?", ["a", "b"]) == group_key("Q?", ["a", "b"])
    assert group_key("Q?", ["a", "b"]) != group_key("Q?", ["b", "a"])
    assert len(group_key("Q?", ["a"])) == 16


def test_the_cli_refuses_an_unknown_pairing(project, write_lines, run_import):
    result = run_import(write_lines([{"x": 1}]), format="ultrafeedback", pairing="best-of-3")
    assert not result.ok and "invalid choice: 'best-of-3'" in result.error


def test_a_background_job_keeps_the_pairing_options():
    options = ReadOptions(pairing="all-pairs", pairing_seed=11)
    assert ReadOptions.from_json(options.to_json()) == options
