"""Import formats other than native: trl, hh-rlhf, llmbar (with evaluators)."""

import json
import shutil

import pytest

from annotator.dataio.formats import LLMBAR_GOLD_ANNOTATOR, chosen_is_b, hh_split
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import DATA, table_counts

# --- trl ---


def _pair(comparison: Comparison) -> tuple[str, str]:
    """(chosen, rejected) as stored, read back through the imported label."""
    label = comparison.human_labels.get() if comparison.human_labels.exists() else None
    choice = label.overall_choice if label else comparison.lm_labels.get().choice
    a, b = comparison.response_a, comparison.response_b
    return (a, b) if choice == "A" else (b, a)


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
        assert _pair(comparison) == (f"good {i}", f"bad {i}")
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
    assert _pair(explicit) == ("4", "5")
    assert explicit.metadata == {"trl_format": "conversational"}
    implicit = Comparison.objects.get(external_id="implicit")
    assert implicit.prompt == "What is 2+2?"
    assert _pair(implicit) == ("Four.", "Five.")


def test_trl_preference_as_an_lm_label(project, write_lines, run_import):
    path = write_lines([{"prompt": "Q?", "chosen": "yes", "rejected": "no"}])

    result = run_import(path, format="trl", label_source="lm:gpt-4o")

    assert result.summary["lm_labels"] == 1 and result.summary["human_labels"] == 0
    label = LMLabel.objects.get()
    assert label.judge_name == "gpt-4o"
    assert _pair(label.comparison) == ("yes", "no")


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ({"prompt": "Q", "rejected": "no"}, "chosen", "missing"),
        ({"prompt": "Q", "chosen": "yes"}, "rejected", "missing"),
        ({"prompt": 3, "chosen": "y", "rejected": "n"}, "prompt", "must be a string or"),
        ({"prompt": "Q", "chosen": [{"role": "x"}], "rejected": "n"}, "chosen[0]", "message"),
        ({"prompt": "Q", "chosen": "", "rejected": "n"}, "response_", "must not be empty"),
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


# --- hh-rlhf ---


def test_hh_split_keeps_the_marker_in_the_prompt_and_the_space_in_the_answers():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant: Sure, here."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant: Sure, no."
    prompt, good, bad = hh_split(chosen, rejected)
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant:"
    assert (good, bad) == (" Sure, here.", " Sure, no.")
    assert prompt + good == chosen


def test_hh_rlhf_slice_imports_every_pair(project, run_import):
    result = run_import(DATA / "hh-rlhf" / "harmless-test-100.jsonl.gz", format="hh-rlhf")

    assert result.ok, result.stderr
    assert result.summary["created"] == 100
    # Line 87 prefers an empty answer (a silent refusal): it is kept, as a whitespace response.
    refusal = [c for c in Comparison.objects.all() if "Erin Burnett" in c.prompt]
    assert len(refusal) == 1
    assert _pair(refusal[0])[0] == " "
    assert all(c.prompt.endswith("\n\nAssistant:") for c in Comparison.objects.all())
    assert set(Comparison.objects.values_list("metadata__source", flat=True)) == {"hh-rlhf"}


def test_hh_rlhf_line_without_assistant_turn_is_an_error(project, write_lines, run_import):
    path = write_lines([{"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi\n\nAssistant: x"}])
    result = run_import(path, format="hh-rlhf")
    assert result.error_lines == [f"{path}:1: chosen: has no '\\n\\nAssistant:' turn"]


# --- llmbar ---

LLMBAR = DATA / "llmbar" / "Natural" / "dataset.json"


def test_llmbar_gold_labels(project, run_import):
    result = run_import(LLMBAR, format="llmbar")

    assert result.summary == {
        "created": 20,
        "skipped": 0,
        "updated": 0,
        "human_labels": 20,
        "lm_labels": 0,
    }
    records = json.loads(LLMBAR.read_text())
    first = Comparison.objects.get(external_id="Natural-0000")
    assert (first.prompt, first.response_a, first.response_b) == (
        records[0]["input"],
        records[0]["output_1"],
        records[0]["output_2"],
    )
    assert first.metadata == {"source": "LLMBar", "subset": "Natural", "index": 0}
    gold = {
        int(h.comparison.external_id[-4:]): h.overall_choice
        for h in HumanLabel.objects.select_related("comparison")
    }
    assert gold == {i: "A" if r["label"] == 1 else "B" for i, r in enumerate(records)}
    assert set(HumanLabel.objects.values_list("annotator_name", flat=True)) == {
        LLMBAR_GOLD_ANNOTATOR
    }


def test_llmbar_evaluators_become_lm_labels_with_both_orders(project, run_import):
    result = run_import(LLMBAR, format="llmbar", with_evaluators=True)

    # 20 records x 3 evaluators, less PaLM2's record 8, which has no verdict in either order.
    assert result.summary["lm_labels"] == 59
    assert not LMLabel.objects.filter(
        judge_name="PaLM2", comparison__external_id="Natural-0007"
    ).exists()
    assert set(LMLabel.objects.values_list("judge_name", "judge_version").distinct()) == {
        ("ChatGPT", "Vanilla_NoRules"),
        ("PaLM2", "Vanilla_NoRules"),
        ("GPT-4", "Metrics_Reference"),
    }
    records = json.loads(LLMBAR.read_text())
    results = json.loads(
        (LLMBAR.parent / "evaluators/ChatGPT/Vanilla_NoRules/result.json").read_text()
    )
    for index, result_row in enumerate(results):
        verdicts = result_row["results"][-1]
        label = LMLabel.objects.get(
            judge_name="ChatGPT", comparison__external_id=f"Natural-{index:04d}"
        )
        ab = verdicts["swap = False"]["winner"] == "1"
        ba = verdicts["swap = True"]["winner"] == "1"
        assert (label.p_a_ab, label.p_a_ba) == (float(ab), float(ba))
        assert label.position_consistent == (ab == ba)
        expected = "A" if ab and ba else "B" if not (ab or ba) else "tie"
        assert label.choice == expected
    # ChatGPT's accuracy on these 20 recomputed from our labels (both orders must agree).
    correct = sum(
        LMLabel.objects.get(judge_name="ChatGPT", comparison__external_id=f"Natural-{i:04d}").choice
        == ("A" if r["label"] == 1 else "B")
        for i, r in enumerate(records)
    )
    assert correct == _both_orders_correct(records, results)


def _both_orders_correct(records, results) -> int:
    return sum(
        r["results"][-1]["swap = False"]["winner"] == str(d["label"])
        and r["results"][-1]["swap = True"]["winner"] == str(d["label"])
        for d, r in zip(records, results, strict=True)
    )


def test_llmbar_verdict_missing_in_one_order_uses_the_other(project, run_import, tmp_path):
    copy = tmp_path / "Natural"
    shutil.copytree(LLMBAR.parent, copy)
    result_file = copy / "evaluators/ChatGPT/Vanilla_NoRules/result.json"
    rows = json.loads(result_file.read_text())
    verdicts = rows[3]["results"][-1]
    verdicts["swap = False"] = {"completion": ["", ""], "winner": None}
    result_file.write_text(json.dumps(rows))

    assert run_import(copy / "dataset.json", format="llmbar", with_evaluators=True).ok

    label = LMLabel.objects.get(judge_name="ChatGPT", comparison__external_id="Natural-0003")
    assert label.p_a_ab is None
    assert label.p_a == label.p_a_ba == float(verdicts["swap = True"]["winner"] == "1")
    assert label.position_consistent is None
    assert label.choice == ("A" if label.p_a == 1.0 else "B")


def test_llmbar_mismatched_evaluator_file_names_the_file_and_record(project, run_import, tmp_path):
    copy = tmp_path / "Natural"
    shutil.copytree(LLMBAR.parent, copy)
    result_file = copy / "evaluators/ChatGPT/Vanilla_NoRules/result.json"
    rows = json.loads(result_file.read_text())
    rows[4]["input"] = "Some other instruction"
    rows[6]["results"][-1]["swap = True"]["winner"] = "3"
    result_file.write_text(json.dumps(rows))

    result = run_import(copy / "dataset.json", format="llmbar", with_evaluators=True)

    assert result.error_lines == [
        f"{result_file}:record 5: input: does not match dataset.json at this index",
        f"{result_file}:record 7: results: winner '3' is not '1', '2' or null",
    ]
    assert table_counts() == (0, 0, 0)


def test_llmbar_bad_record(project, run_import, tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps([{"input": "i", "output_1": "a", "output_2": "b", "label": 3}]))
    result = run_import(path, format="llmbar")
    assert result.error_lines == [f"{path}:record 1: label: 3 is not 1 or 2"]
