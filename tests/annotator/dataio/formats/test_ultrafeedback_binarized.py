"""`ultrafeedback-binarized`: chosen/rejected conversations kept as messages, GPT-4's overall
scores as an LM label."""

import io
import math

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.models import Comparison, LMLabel
from tests.conftest import table_counts
from tests.format_rows import ultrafeedback_binarized as ufb

FMT = "ultrafeedback-binarized"


def read(rows, **options) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    opts = ReadOptions(**options)
    return list(read_items(io.BytesIO(body), fmt=FMT, source="ufb", options=opts)), opts


def scored(chosen: float, rejected: float) -> dict:
    row = ufb.rows(1)[0]
    row["score_chosen"], row["score_rejected"] = chosen, rejected
    return row


def chosen_side(native: dict, row: dict) -> str:
    return "A" if native["response_a"] == row["chosen"][1:] else "B"


def test_rows_import_as_conversations_with_an_lm_label(project, write_lines, run_import):
    rows = ufb.rows(12, seed=1)

    result = run_import(write_lines(rows), format=FMT)

    assert result.ok, result.stderr
    assert result.summary["created"] == 12 and result.summary["lm_labels"] == 12
    for row in rows:
        c = Comparison.objects.get(external_id__startswith=row["prompt_id"])
        assert c.prompt_messages == [{"content": row["prompt"], "role": "user"}]
        assert c.prompt == row["prompt"]
        assert row["chosen"][1:] in (c.response_a_messages, c.response_b_messages)
        assert row["rejected"][1:] in (c.response_a_messages, c.response_b_messages)
        assert "Don\\u2019t" in c.response_a + c.response_b  # kept as published
        label = c.lm_labels.get()
        assert (label.judge_name, label.judge_version) == ("ultrafeedback-gpt-4", "overall_score")
    sides = {c.metadata["score_a"] >= c.metadata["score_b"] for c in Comparison.objects.all()}
    assert sides == {True, False}  # the chosen response is not always A


@pytest.mark.parametrize(
    ("chosen", "rejected", "strength"),
    [(8.5, 8.0, "slightly"), (8.5, 6.5, "clearly"), (9.0, 2.0, "clearly")],
)
def test_the_score_gap_sets_the_strength_and_p_a(chosen, rejected, strength):
    row = scored(chosen, rejected)
    (item,) = read([row])[0]

    label = item.obj["lm_labels"][0]
    side = chosen_side(item.obj, row)
    assert label["overall"] == f"{side}-is-{strength}-better"
    p_chosen = 1 / (1 + math.exp(-(chosen - rejected) / 2))
    assert label["p_a"] == pytest.approx(p_chosen if side == "A" else 1 - p_chosen)
    assert item.obj["metadata"]["prompt_id"] == row["prompt_id"]


def test_equal_scores_are_a_tie():
    (item,) = read([scored(8.5, 8.5)])[0]

    assert item.obj["lm_labels"][0]["overall"] == "Tie"
    assert item.obj["lm_labels"][0]["p_a"] == 0.5


def test_a_chosen_scored_below_rejected_is_labelled_by_the_scores_and_counted():
    row = scored(3.0, 7.0)
    items, opts = read([row])

    side = chosen_side(items[0].obj, row)
    assert items[0].obj["lm_labels"][0]["overall"].startswith("B" if side == "A" else "A")
    assert sum(opts.report.counts.values()) == 1


def test_a_multi_turn_conversation_keeps_the_shared_turns_as_the_prompt():
    row = ufb.rows(1)[0]
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Draw?"},
    ]
    row["chosen"] = [*turns, {"role": "assistant", "content": "Daily."}]
    row["rejected"] = [*turns, {"role": "assistant", "content": "No."}]

    (item,) = read([row])[0]

    assert item.obj["prompt"] == turns
    assert {item.obj["response_a"][0]["content"], item.obj["response_b"][0]["content"]} == {
        "Daily.",
        "No.",
    }


def test_the_id_is_the_prompt_id_and_a_hash_of_the_responses():
    row = ufb.rows(1)[0]
    other = {**row, "rejected": ufb.conversation(row["prompt"], "Another answer.")}

    items, _ = read([row, other])

    first, second = (i.obj["external_id"] for i in items)
    assert first.startswith(row["prompt_id"] + "-") and second.startswith(row["prompt_id"] + "-")
    assert first != second
    assert read([row])[0][0].obj["external_id"] == first


def test_label_source_names_the_judge(project, write_lines, run_import):
    result = run_import(write_lines(ufb.rows(2)), format=FMT, label_source="lm:gpt-4")

    assert result.ok, result.stderr
    assert set(LMLabel.objects.values_list("judge_name", flat=True)) == {"gpt-4"}


def test_auto_tells_it_from_trl_by_its_keys():
    assert format_detect(ufb.rows(1)[0]) == FMT
    row = ufb.rows(1)[0]
    assert format_detect({k: row[k] for k in ("prompt", "chosen", "rejected")}) == "trl"


def without(key: str, **changes) -> dict:
    row = {**ufb.rows(1, seed=2)[0], **changes}
    row.pop(key, None)
    return row


USER = {"role": "user", "content": "Q?"}
FIRST = ufb.rows(1)[0]["chosen"][0]  # every row's first turn (row 0's prompt)


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (without("chosen"), "chosen", "missing"),
        (without("x", chosen=[], rejected=[]), "chosen", "must not be empty"),
        (without("x", chosen="Yes."), "chosen", "must be a list of messages, not a string"),
        (without("x", rejected=[USER, {"role": "assistant"}]), "rejected[1]", "must be a message"),
        (without("x", score_chosen="8.5"), "score_chosen", "must be a number"),
        (without("x", score_rejected=11), "score_rejected", "outside [0, 10]"),
        (without("score_chosen"), "score_chosen", "missing"),
        (without("x", prompt_id=7), "prompt_id", "must be a string"),
        (
            without("x", chosen=[{"role": "assistant", "content": "A."}]),
            "chosen",
            "share no first turn",
        ),
        (
            without("x", chosen=[FIRST, {"role": "assistant", "content": "A."}, FIRST]),
            "chosen[2].role",
            "'user' after the shared turns",
        ),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([ufb.rows(1)[0], row])

    result = run_import(path, format=FMT)

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
