"""routing.features with empty responses: every feature of a comparison whose response is empty
or whitespace-only is a finite number (the embedding cosine included)."""

import math

import pytest

from routing.features import features_for_texts


def test_empty_and_whitespace_responses_get_finite_features():
    rows = [
        ("Where is Paris?", "", "Paris is in France."),
        ("Where is Paris?", "   ", "\n"),
        ("Where is Paris?", "", ""),
    ]

    values = features_for_texts(rows)

    for row in values:
        for name, value in row.items():
            assert value is None or math.isfinite(value), (name, row)
    one_empty, both_blank, both_empty = values
    assert (one_empty["len_a"], one_empty["length_penalty"], one_empty["cosine_lenpen"]) == (
        0.0,
        0.0,
        0.0,
    )
    # Two empty responses say the same (nothing): as similar and as long as each other.
    for row in (both_blank, both_empty):
        assert row["cosine"] == pytest.approx(1.0, abs=1e-5)
        assert row["length_penalty"] == 1.0
