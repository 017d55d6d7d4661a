"""`multipref`: MultiPref rows, each annotation a human label, the mapping invertible."""

import io
from datetime import UTC, datetime

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.dataio.formats.multipref import (
    ASPECT_CONFIDENCE_KEY,
    aspect_reasons,
    rationale_join,
    rationale_split,
    reasons_by_aspect,
)
from annotator.dataio.formats.vote_fields import NAIVE_TIMESTAMPS, RENAMED_ANNOTATORS
from annotator.dataio.records import record_from_native
from annotator.models import Comparison, HumanLabel
from tests.format_rows.multipref import rows


def read(records: list[dict]) -> tuple[list, ReadOptions]:
    """The reader's items for `records` (as JSON Lines), and the options holding its report."""
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    options = ReadOptions()
    items = list(read_items(io.BytesIO(body), fmt="multipref", source="mp.jsonl", options=options))
    return items, options


def one_row(**changes) -> dict:
    row = rows(1, seed=3)[0]
    row.update(changes)
    return row


def vote(evaluator: str, **fields) -> dict:
    """An annotation with only an overall preference, plus `fields`."""
    return {"evaluator": evaluator, "overall_pref": "A-is-slightly-better", **fields}


def test_rows_import_as_comparisons_with_every_annotation_a_human_label(
    project, write_lines, run_import
):
    data = rows(6, seed=1)

    result = run_import(write_lines(data), format="multipref")

    assert result.ok, result.stderr
    assert result.summary["created"] == 6 and result.summary["human_labels"] == 24
    row = data[0]
    comparison = Comparison.objects.get(external_id=row["comparison_id"])
    assert (comparison.prompt, comparison.response_a, comparison.response_b) == (
        row["text"],
        row["completion_a"],
        row["completion_b"],
    )
    assert (comparison.model_a, comparison.model_b) == (row["model_a"], row["model_b"])
    for key in ("source", "category", "subject_study", "highest_level_degree", "prompt_id"):
        assert comparison.metadata[key] == row[key]
    expert = row["expert_worker_annotations"][1]
    label = HumanLabel.objects.get(comparison=comparison, annotator_name=expert["evaluator"])
    assert label.annotator_type == "expert"
    choice, strength = {
        "A-is-clearly-better": ("A", "clearly"),
        "A-is-slightly-better": ("A", "slightly"),
        "Tie": ("tie", "unknown"),
        "B-is-slightly-better": ("B", "slightly"),
        "B-is-clearly-better": ("B", "clearly"),
    }[expert["truthful_pref"]]
    assert (label.truthful_choice, label.truthful_strength) == (choice, strength)
    assert label.confidence == expert["overall_confidence"].split("-")[0]
    assert label.time_spent_s == expert["time_spent"]
    assert label.source == "imported"
    normal = row["normal_worker_annotations"][0]["evaluator"]
    assert comparison.human_labels.get(annotator_name=normal).annotator_type == "normal"


def test_a_timestamp_without_zone_is_utc_and_counted(project, write_lines, run_import):
    row = one_row(
        normal_worker_annotations=[
            vote("w1", timestamp="2024-06-14 17:11:00.250000"),
            vote("w2", timestamp="2024-06-14T17:11:00+02:00"),
        ],
        expert_worker_annotations=[vote("x1", timestamp=1718385060), vote("x2", timestamp="")],
    )

    result = run_import(write_lines([row]), format="multipref")

    assert result.ok, result.stderr
    made = dict(HumanLabel.objects.values_list("annotator_name", "created_at"))
    assert made["w1"] == datetime(2024, 6, 14, 17, 11, 0, 250000, tzinfo=UTC)
    assert made["w2"] == datetime(2024, 6, 14, 15, 11, tzinfo=UTC)
    assert made["x1"] == datetime(2024, 6, 14, 17, 11, tzinfo=UTC)  # Unix seconds
    assert result.summary["notes"] == {NAIVE_TIMESTAMPS: 1}


def test_an_unreadable_timestamp_is_refused_naming_the_annotation():
    row = one_row(normal_worker_annotations=[vote("w1", timestamp="last Tuesday")])

    (item,), _ = read([row])

    assert [(e.field, e.problem) for e in item.errors] == [
        (
            "normal_worker_annotations[0].timestamp",
            "'last Tuesday' is not an ISO 8601 date-time or Unix seconds",
        )
    ]


def test_aspect_confidences_are_kept_in_metadata_by_annotator():
    row = one_row(
        normal_worker_annotations=[
            vote(
                "w1",
                overall_confidence="fairly-confident",
                helpful_pref="Tie",
                helpful_confidence="not-confident",
                harmless_confidence="absolutely-confident",
            )
        ],
        expert_worker_annotations=[vote("x1")],
    )

    (item,), _ = read([row])

    label = item.obj["human_labels"][0]
    assert label["confidence"] == "fairly-confident" and label["helpful"] == "Tie"
    assert item.obj["metadata"][ASPECT_CONFIDENCE_KEY] == {
        "w1": {"helpful": "not-confident", "harmless": "absolutely-confident"}
    }
    record, errors = record_from_native(item.obj)
    assert errors == [] and record.human_labels[0].confidence == "fairly"


def test_without_aspect_confidences_the_metadata_has_no_such_key():
    row = one_row(normal_worker_annotations=[vote("w1")], expert_worker_annotations=[vote("x1")])

    (item,), _ = read([row])

    assert ASPECT_CONFIDENCE_KEY not in item.obj["metadata"]


def test_checked_reasons_keep_the_platform_vocabulary_and_qualify_the_rest():
    row = one_row(
        normal_worker_annotations=[
            vote(
                "w1",
                helpful_checked_reasons=["correct", "funny"],
                truthful_checked_reasons=["factual", "correct"],
                harmless_checked_reasons=[],
            )
        ]
    )

    (item,), _ = read([row])

    reasons = item.obj["human_labels"][0]["reasons"]
    # "correct" is a helpfulness reason: under truthful it keeps its aspect.
    assert reasons == ["correct", "helpful:funny", "factual", "truthful:correct"]
    assert reasons_by_aspect(reasons) == {
        "helpful": ["correct", "funny"],
        "truthful": ["factual", "correct"],
    }
    assert aspect_reasons("harmless", ["not-dangerous"]) == ["not-dangerous"]


def test_own_reasons_become_one_rationale_named_by_aspect():
    own = {"helpful": "B lists the steps.", "truthful": "", "harmless": "Both are safe."}
    row = one_row(
        normal_worker_annotations=[
            vote("w1", **{f"{aspect}_own_reason": text for aspect, text in own.items()})
        ]
    )

    (item,), _ = read([row])

    rationale = item.obj["human_labels"][0]["rationale"]
    assert rationale == "helpful: B lists the steps.\n\nharmless: Both are safe."
    assert rationale_split(rationale) == {
        "helpful": "B lists the steps.",
        "harmless": "Both are safe.",
    }
    assert rationale_join(rationale_split(rationale)) == rationale
    assert rationale_split("written on the platform") == {"overall": "written on the platform"}


@pytest.mark.parametrize("value", ["A", "a-is-clearly-better", "A-is-better", "tie", 1])
def test_a_preference_off_multipref_scale_is_refused_naming_the_values(
    value, project, write_lines, run_import
):
    row = one_row(expert_worker_annotations=[vote("x1"), vote("x2", helpful_pref=value)])

    path = write_lines([row])

    result = run_import(path, format="multipref")

    assert not result.ok
    assert result.error_lines == [
        f"{path}:1: expert_worker_annotations[1].helpful_pref: "
        f"{value!r} is not one of A-is-clearly-better, A-is-slightly-better, Tie, "
        "B-is-slightly-better, B-is-clearly-better"
    ]
    assert Comparison.objects.count() == 0


def test_a_confidence_off_the_vocabulary_is_refused():
    row = one_row(normal_worker_annotations=[vote("w1", truthful_confidence="fairly")])

    (item,), _ = read([row])

    assert [(e.field, e.problem) for e in item.errors] == [
        (
            "normal_worker_annotations[0].truthful_confidence",
            "'fairly' is not one of absolutely-confident, fairly-confident, not-confident",
        )
    ]


def test_an_unanswered_aspect_is_left_out_but_overall_is_required():
    row = one_row(
        normal_worker_annotations=[vote("w1", helpful_pref="", truthful_pref=None)],
        expert_worker_annotations=[{"evaluator": "x1", "overall_pref": ""}, {"evaluator": "x2"}],
    )

    (item,), _ = read([row])

    assert [(e.field, e.problem) for e in item.errors] == [
        ("expert_worker_annotations[0].overall_pref", "must not be empty"),
        ("expert_worker_annotations[1].overall_pref", "missing"),
    ]
    row["expert_worker_annotations"] = []
    (item,), _ = read([row])
    assert "helpful" not in item.obj["human_labels"][0]


def test_a_missing_annotation_list_is_refused_and_an_empty_one_accepted():
    row = one_row(expert_worker_annotations=[])
    del row["normal_worker_annotations"]

    (item,), _ = read([row])

    assert [(e.field, e.problem) for e in item.errors] == [
        (
            "normal_worker_annotations",
            "missing (a MultiPref row has both annotation lists; an empty list is accepted)",
        )
    ]
    row["normal_worker_annotations"] = []
    (item,), _ = read([row])
    assert item.errors == [] and item.obj["human_labels"] == []


def test_an_evaluator_twice_in_a_row_keeps_both_votes_renamed(project, write_lines, run_import):
    row = one_row(
        normal_worker_annotations=[vote("w7"), vote("w7", overall_pref="Tie")],
        expert_worker_annotations=[vote("w7", overall_pref="B-is-clearly-better"), vote("x1")],
    )

    result = run_import(write_lines([row]), format="multipref")

    assert result.ok, result.stderr
    names = dict(HumanLabel.objects.values_list("annotator_name", "overall_choice"))
    assert names == {"w7": "A", "w7#2": "tie", "w7#3": "B", "x1": "A"}
    assert result.summary["notes"] == {RENAMED_ANNOTATORS: 2}


def test_bad_row_fields_are_named_as_multipref_names_them():
    row = one_row(text="  ", completion_b=None, time_spent=None)
    row["normal_worker_annotations"] = [vote("", time_spent=-3), "not an annotation"]
    del row["comparison_id"]

    (item,), _ = read([row])

    assert [(e.field, e.problem) for e in item.errors] == [
        ("comparison_id", "missing"),
        ("text", "must not be empty"),
        ("completion_b", "must be a string"),
        ("normal_worker_annotations[0].evaluator", "must be a non-empty string"),
        ("normal_worker_annotations[0].time_spent", "-3 is not seconds (>= 0)"),
        ("normal_worker_annotations[1]", "must be an annotation object"),
    ]


def test_the_builder_rows_read_cleanly_and_validate():
    items, options = read(rows(20, seed=7))

    assert all(not item.errors for item in items)
    assert all(record_from_native(item.obj)[1] == [] for item in items)
    assert options.report.counts[NAIVE_TIMESTAMPS] == 80


def test_multipref_is_told_from_its_first_row():
    assert format_detect(rows(1)[0]) == "multipref"
    # Without its annotation lists the row is still MultiPref's, so the reader says what is missing.
    bare = {k: v for k, v in rows(1)[0].items() if not k.endswith("_annotations")}
    assert format_detect(bare) == "multipref"


def test_a_multipref_shaped_conversation_keeps_its_turns(project, write_lines, run_import):
    """MultiPref's texts are single turns; the same shape with message lists (a conversation and
    each side's answer) imports as a conversation, and a bad message is named."""
    turns = [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7."},
        {"role": "user", "content": "And an even one?"},
    ]
    row = one_row(
        text=turns,
        completion_a=[{"role": "assistant", "content": "2."}],
        completion_b="",
        normal_worker_annotations=[],
        expert_worker_annotations=[],
    )

    result = run_import(write_lines([row]), format="multipref")

    assert result.ok, result.stderr
    comparison = Comparison.objects.get()
    assert comparison.prompt_messages == turns
    assert comparison.response_a_messages == [{"role": "assistant", "content": "2."}]
    assert (comparison.response_b, comparison.response_b_messages) == ("", None)

    bad = one_row(text=[{"role": "robot", "content": "Hi"}])
    failed = run_import(write_lines([bad], name="bad.jsonl"), format="multipref")
    assert not failed.ok
    assert "bad.jsonl:1: prompt[0].role: 'robot' is not one of" in failed.stderr
