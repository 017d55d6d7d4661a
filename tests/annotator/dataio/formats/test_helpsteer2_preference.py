"""`helpsteer2-preference`: the preference strength as a label, response 1 as A, each
annotator's own preference as a label of its own."""

import io

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import table_counts
from tests.format_rows import helpsteer2_preference as hs2p

FMT = "helpsteer2-preference"


def read(rows, **options) -> list:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    return list(read_items(io.BytesIO(body), fmt=FMT, source="p", options=ReadOptions(**options)))


def test_rows_import_with_the_aggregate_and_each_annotators_label(project, write_lines, run_import):
    rows = hs2p.rows(15, seed=1)

    result = run_import(write_lines(rows, name="pref.jsonl"), format=FMT)

    assert result.ok, result.stderr
    assert result.summary["created"] == 15 and result.summary["human_labels"] == 15 * 4
    for row in rows:
        c = Comparison.objects.get(response_a=row["response_1"])
        assert c.response_b == row["response_2"]
        assert c.metadata == {
            "split": row["split"],
            "preference_strength": row["preference_strength"],
        }
        aggregate = c.human_labels.get(annotator_name="pref.jsonl")
        assert aggregate.rationale == (
            f"{row['preference_statement']}\n\n{row['preference_elaboration']}"
        )
        own = c.human_labels.exclude(annotator_name="pref.jsonl").order_by("annotator_name")
        assert [h.annotator_name for h in own] == [f"{c.external_id}#{k}" for k in (1, 2, 3)]
        votes = row["all_preferences_unprocessed"]
        assert [h.rationale for h in own] == [v["justification"] for v in votes]


@pytest.mark.parametrize(
    ("strength", "label"),
    [
        (-3, "A-is-clearly-better"),
        (-2, "A-is-clearly-better"),
        (-1, "A-is-slightly-better"),
        (0, "Tie"),
        (1, "B-is-slightly-better"),
        (2, "B-is-clearly-better"),
        (3, "B-is-clearly-better"),
    ],
)
def test_the_strength_maps_to_a_label(strength, label):
    row = {**hs2p.rows(1)[0], "preference_strength": strength}
    row["all_preferences_unprocessed"] = [{"strength": strength, "justification": "same"}]

    (item,) = read([row])

    assert [h["overall"] for h in item.obj["human_labels"]] == [label, label]


def test_helpsteer3s_individual_preference_is_read_too():
    row = hs2p.rows(1)[0]
    del row["all_preferences_unprocessed"]
    row["individual_preference"] = [
        {"score": -2, "reasoning": "@Response 1 is better.", "feedback1": "ok", "feedback2": "no"},
        {"score": 1, "reasoning": "@Response 2 is slightly better."},
    ]

    (item,) = read([row])

    own = item.obj["human_labels"][1:]
    assert [(h["overall"], h["rationale"]) for h in own] == [
        ("A-is-clearly-better", "@Response 1 is better."),
        ("B-is-slightly-better", "@Response 2 is slightly better."),
    ]


def test_without_the_annotators_lists_only_the_aggregate_is_a_label():
    row = hs2p.rows(1)[0]
    for key in ("all_preferences_unprocessed", "three_most_similar_preferences", "split"):
        del row[key]

    (item,) = read([row])

    assert len(item.obj["human_labels"]) == 1
    assert item.obj["metadata"] == {"preference_strength": row["preference_strength"]}


def test_label_source_makes_the_aggregate_an_lm_label(project, write_lines, run_import):
    result = run_import(write_lines(hs2p.rows(3)), format=FMT, label_source="lm:hs2-mean")

    assert result.ok, result.stderr
    assert LMLabel.objects.filter(judge_name="hs2-mean").count() == 3
    assert HumanLabel.objects.count() == 9  # the annotators' own stay human labels
    assert all(label.rationale.startswith("@Response") for label in LMLabel.objects.all())


def test_auto_tells_helpsteer2_preference():
    assert format_detect(hs2p.rows(1)[0]) == FMT


def changed(**changes) -> dict:
    row = {**hs2p.rows(1, seed=3)[0], **changes}
    return {k: v for k, v in row.items() if v != "DROP"}


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (changed(preference_strength=4), "preference_strength", "4 is outside [-3, 3]"),
        (changed(preference_strength=1.5), "preference_strength", "not a whole number"),
        (changed(preference_strength="1"), "preference_strength", "must be a number"),
        (changed(response_2="DROP"), "response_2", "missing"),
        (changed(preference_statement=["x"]), "preference_statement", "must be a string"),
        (changed(all_preferences_unprocessed="1"), "all_preferences_unprocessed", "must be a list"),
        (
            changed(all_preferences_unprocessed=[{"justification": "why"}]),
            "all_preferences_unprocessed[0].strength",
            "missing",
        ),
        (
            changed(all_preferences_unprocessed=[2]),
            "all_preferences_unprocessed[0]",
            "must be an object",
        ),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([hs2p.rows(1)[0], row])

    result = run_import(path, format=FMT)

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
