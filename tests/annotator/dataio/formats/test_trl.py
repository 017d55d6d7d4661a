"""`trl`: standard and conversational TRL preference data."""

import pytest

from annotator.dataio.formats.common import chosen_is_b
from annotator.models import Comparison, LMLabel
from tests.conftest import table_counts
from tests.import_records import chosen_rejected


def test_trl_strings_keep_the_preference_whatever_the_shown_order(project, write_lines, run_import):
    rows = [
        {"prompt": f"Q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}", "score": i}
        for i in range(40)
    ]
    path = write_lines(rows, name="prefs.jsonl")

    result = run_import(path, format="trl")

    assert result.summary["created"] == 40 and result.summary["human_labels"] == 40
    comparisons = list(Comparison.objects.order_by("id"))
    for i, comparison in enumerate(comparisons):
        assert comparison.prompt == f"Q{i}?"
        assert chosen_rejected(comparison) == (f"good {i}", f"bad {i}")
        assert comparison.metadata == {"score": i}
        assert comparison.human_labels.get().annotator_name == "prefs.jsonl"
    # Randomised A/B order: the chosen response is not always on the same side.
    sides = {c.human_labels.get().overall_choice for c in comparisons}
    assert sides == {"A", "B"}


def test_trl_order_is_reproducible_and_the_id_defaults_to_a_content_hash(
    project, other_project, write_lines, run_import
):
    path = write_lines([{"prompt": "Q?", "chosen": "yes", "rejected": "no"}])
    run_import(path, format="trl")
    run_import(path, format="trl", project="other")
    first, second = Comparison.objects.order_by("id")
    assert first.external_id == second.external_id
    assert len(first.external_id) == 24
    assert (first.response_a, first.response_b) == (second.response_a, second.response_b)
    assert chosen_is_b(first.external_id) == (first.response_b == "yes")
    # The same file again is skipped: the id is stable.
    assert run_import(path, format="trl").summary["skipped"] == 1


def test_trl_conversational_and_implicit_prompt(project, write_lines, run_import):
    user = {"role": "user", "content": "What is 2+2?"}
    path = write_lines(
        [
            {
                "external_id": "explicit",
                "prompt": [user],
                "chosen": [{"role": "assistant", "content": "4"}],
                "rejected": [{"role": "assistant", "content": "5"}],
            },
            {
                "external_id": "implicit",
                "chosen": [user, {"role": "assistant", "content": "Four."}],
                "rejected": [user, {"role": "assistant", "content": "Five."}],
            },
        ]
    )

    assert run_import(path, format="trl").ok

    explicit = Comparison.objects.get(external_id="explicit")
    assert explicit.prompt == "What is 2+2?"
    assert chosen_rejected(explicit) == ("4", "5")
    assert explicit.metadata == {"trl_format": "conversational"}
    implicit = Comparison.objects.get(external_id="implicit")
    assert implicit.prompt == "What is 2+2?"
    assert chosen_rejected(implicit) == ("Four.", "Five.")


def test_trl_preference_as_an_lm_label(project, write_lines, run_import):
    path = write_lines([{"prompt": "Q?", "chosen": "yes", "rejected": "no"}])

    result = run_import(path, format="trl", label_source="lm:gpt-4o")

    assert result.summary["lm_labels"] == 1 and result.summary["human_labels"] == 0
    label = LMLabel.objects.get()
    assert label.judge_name == "gpt-4o"
    assert chosen_rejected(label.comparison) == ("yes", "no")


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ({"prompt": "Q", "rejected": "no"}, "chosen", "missing"),
        ({"prompt": "Q", "chosen": "yes"}, "rejected", "missing"),
        ({"prompt": 3, "chosen": "y", "rejected": "n"}, "prompt", "must be a string or"),
        ({"prompt": "Q", "chosen": [{"role": "x"}], "rejected": "n"}, "chosen[0]", "message"),
        ({"prompt": "Q", "chosen": "y", "rejected": "n", "external_id": 7}, "external_id", ""),
    ],
)
def test_trl_bad_lines(project, write_lines, run_import, line, field, problem):
    path = write_lines([{"prompt": "ok", "chosen": "y", "rejected": "n"}, line])
    result = run_import(path, format="trl")
    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)


def test_label_source_must_name_a_judge(project, write_lines, run_import):
    path = write_lines([{"prompt": "Q", "chosen": "y", "rejected": "n"}])
    result = run_import(path, format="trl", label_source="lm:")
    assert "--label-source must be 'human' or 'lm:JUDGE'" in result.error
