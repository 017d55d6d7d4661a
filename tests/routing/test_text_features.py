import math

import pytest

from routing.text_features import entities, entity_iou, length_penalty, rouge1_f, text_features


def test_entity_overlap_uses_the_true_union():
    a = "In 1903 Marie Curie won, and in 1911 NASA."  # 1903, marie curie, 1911, NASA
    b = "It was 1903."  # 1903
    assert entities(b) == {"1903"}
    # |A & B| / (|A| + |B| - |A & B|) = 1 / 4; the reference bug (|B| + |B| - inter) gave 1.0.
    assert entity_iou(a, b) == pytest.approx(0.25)


def test_entity_overlap_matches_numbers_written_differently_and_skips_sentence_starts():
    assert entities("The total was 1,000.") == {"1000"}
    assert entity_iou("Paid 1,000 dollars", "paid 1000 dollars") == 1.0
    assert entity_iou("no names here", "none here either") is None


def test_rouge_and_length_penalty():
    assert rouge1_f("the cat sat", "the cat sat") == 1.0
    assert rouge1_f("the cat", "a dog") == 0.0
    assert length_penalty(10, 10) == 1.0
    assert length_penalty(10, 20) == pytest.approx(math.exp(-1))
    assert length_penalty(0, 5) == 0.0
    assert length_penalty(0, 0) == 1.0  # two empty responses are of equal length


def test_text_features_lengths():
    values = text_features("Why?", "Because it is.", "No.")
    assert values["len_prompt"] == 2
    assert (values["len_a"], values["len_b"]) == (4, 2)
    assert (values["len_shorter"], values["len_longer"], values["len_diff"]) == (2, 4, 2)


@pytest.mark.parametrize(
    ("a", "b"), [("", ""), ("   ", "\n"), ("", "Paris is in France."), (" ", "x")]
)
def test_empty_responses_give_finite_features(a, b):
    values = text_features("Where is Paris?", a, b)

    assert values["len_a"] == 0 or values["len_b"] == 0
    for name, value in values.items():
        assert value is None or math.isfinite(value), name
    assert values["rouge1_f"] == 0.0
    assert values["length_penalty"] == (1.0 if values["len_longer"] == 0 else 0.0)
