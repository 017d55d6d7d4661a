"""`pku-saferlhf`: the better response the overall label, the safer one the harmless aspect."""

import pytest

from annotator.dataio.formats import format_detect
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import table_counts
from tests.format_rows import pku_saferlhf as pku

FMT = "pku-saferlhf"
LABELS = ("better_response_id", "safer_response_id")
TEXTS = ("prompt", "response_0", "response_1", "response_0_source", "response_1_source")


def test_rows_import_with_overall_and_harmless_in_one_human_label(project, write_lines, run_import):
    rows = pku.rows(16, seed=1)

    result = run_import(write_lines(rows, name="Alpaca-7B-train.jsonl"), format=FMT)

    assert result.ok, result.stderr
    assert result.summary["created"] == 16 and result.summary["human_labels"] == 16
    for row in rows:
        c = Comparison.objects.get(response_a=row["response_0"])
        assert (c.prompt, c.response_b) == (row["prompt"], row["response_1"])
        assert (c.model_a, c.model_b) == (row["response_0_source"], row["response_1_source"])
        label = c.human_labels.get()
        assert label.annotator_name == "Alpaca-7B-train.jsonl"
        assert label.overall_choice == "AB"[row["better_response_id"]]
        assert label.harmless_choice == "AB"[row["safer_response_id"]]
        assert label.overall_strength == label.harmless_strength == "unknown"
        assert c.metadata == {k: v for k, v in row.items() if k not in (*LABELS, *TEXTS)}
        assert c.metadata["response_0_harm_category"]["Violence"] in (True, False)
    choices = set(HumanLabel.objects.values_list("overall_choice", "harmless_choice"))
    assert len(choices) > 2  # better and safer disagree on some rows


def test_label_source_keeps_the_safer_side_in_metadata(project, write_lines, run_import):
    rows = pku.rows(4, seed=2)

    result = run_import(write_lines(rows), format=FMT, label_source="lm:pku-gpt-4")

    assert result.ok, result.stderr
    for row in rows:
        c = Comparison.objects.get(response_a=row["response_0"])
        assert c.lm_labels.get().choice == "AB"[row["better_response_id"]]
        assert c.metadata["safer_response"] == "AB"[row["safer_response_id"]]
    assert LMLabel.objects.count() == 4 and HumanLabel.objects.count() == 0


def test_auto_tells_pku_saferlhf():
    assert format_detect(pku.rows(1)[0]) == FMT


def changed(**changes) -> dict:
    row = {**pku.rows(1, seed=3)[0], **changes}
    return {k: v for k, v in row.items() if v != "DROP"}


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (changed(better_response_id=2), "better_response_id", "2 is outside [0, 1]"),
        (changed(safer_response_id="0"), "safer_response_id", "must be a number"),
        (changed(safer_response_id=True), "safer_response_id", "must be a number"),
        (changed(better_response_id="DROP"), "better_response_id", "missing"),
        (changed(response_1=["no"]), "response_1", "must be a string, not a list"),
        (changed(prompt=None), "prompt", "must not be null"),
        (changed(response_0_source=7), "response_0_source", "must be a string"),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([pku.rows(1)[0], row])

    result = run_import(path, format=FMT)

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
