"""`llmbar`: LLMBar's dataset.json, gold labels and evaluators."""

import json
import shutil

from annotator.dataio.formats.llmbar import LLMBAR_GOLD_ANNOTATOR
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import DATA, table_counts

LLMBAR = DATA / "llmbar" / "Natural" / "dataset.json"


def test_llmbar_gold_labels(project, run_import):
    result = run_import(LLMBAR, format="llmbar")

    assert result.summary == {
        "created": 20,
        "skipped": 0,
        "updated": 0,
        "human_labels": 20,
        "lm_labels": 0,
        "format": "llmbar",
        "notes": {},
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
