"""`arena`: arena-human-preference-55k rows, their JSON-encoded turns and one-hot winner."""

import io
import json
import random

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.dataio.formats.arena import ARENA_VOTER, LONE_SURROGATES
from annotator.dataio.formats.vote_fields import NULL_RESPONSES
from annotator.dataio.records import record_from_native
from annotator.models import Comparison
from tests.format_rows.arena import row, rows
from tests.import_records import native


def read(records: list[dict]) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    options = ReadOptions()
    items = list(read_items(io.BytesIO(body), fmt="arena", source="a.jsonl", options=options))
    return items, options


def problems(item) -> list[tuple[str, str]]:
    return [(e.field, e.problem) for e in item.errors]


def one_row(turns: int = 1, **changes) -> dict:
    data = row(random.Random(5), 0, turns=turns)
    data.update(changes)
    return data


def test_rows_import_with_the_voter_as_a_human_label(project, write_lines, run_import):
    data = rows(30, seed=2)

    result = run_import(write_lines(data), format="arena")

    assert result.ok, result.stderr
    assert result.summary["created"] == 30 and result.summary["human_labels"] == 30
    expected = {"winner_model_a": "A", "winner_model_b": "B", "winner_tie": "tie"}
    for source in data:
        comparison = Comparison.objects.get(external_id=str(source["id"]))
        label = comparison.human_labels.get()
        assert label.annotator_name == ARENA_VOTER and label.annotator_type == "normal"
        winner = next(key for key in expected if source[key] == 1)
        assert label.overall_choice == expected[winner]
        assert (comparison.model_a, comparison.model_b) == (source["model_a"], source["model_b"])
        assert comparison.metadata == {"source": "lmsys-arena-human-preference-55k"}


def test_one_turn_reads_as_plain_text_with_escapes_decoded(project, write_lines, run_import):
    source = one_row(turns=1)

    result = run_import(write_lines([source]), format="arena")

    assert result.ok, result.stderr
    comparison = Comparison.objects.get()
    assert comparison.prompt == "Question 0.0: does pineapple belong on pizza?"
    assert comparison.response_a.startswith("Bon appétit 0.0 🍍 from ")
    assert comparison.prompt_messages is None and comparison.response_a_messages is None


def test_several_turns_read_as_the_user_turns_and_each_sides_answers_in_order(
    project, write_lines, run_import
):
    source = one_row(turns=3)

    result = run_import(write_lines([source]), format="arena")

    assert result.ok, result.stderr
    comparison = Comparison.objects.get()
    prompts = json.loads(source["prompt"])
    assert comparison.prompt_messages == [{"role": "user", "content": p} for p in prompts]
    for side in ("a", "b"):
        answers = json.loads(source[f"response_{side}"])
        assert getattr(comparison, f"response_{side}_messages") == [
            {"role": "assistant", "content": text} for text in answers
        ]


def test_null_responses_read_as_empty_and_are_counted(project, write_lines, run_import):
    """The dataset has rows with `[null]` on both sides, voted tie or even won."""
    both_null = one_row(id=57180984, response_a="[null]", response_b="[null]")
    later_null = one_row(turns=2, id=867270727)
    later_null["response_b"] = json.dumps([json.loads(later_null["response_b"])[0], None])

    result = run_import(write_lines([both_null, later_null]), format="arena")

    assert result.ok, result.stderr
    assert result.summary["notes"] == {NULL_RESPONSES: 3}
    empty = Comparison.objects.get(external_id="57180984")
    assert (empty.response_a, empty.response_b) == ("", "")
    answers = Comparison.objects.get(external_id="867270727").response_b_messages
    assert answers[1] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("prompt", '["unclosed', "is not a JSON-encoded list of turns (unexpected end of data"),
        ("response_a", "[1,,2]", "is not a JSON-encoded list of turns (unexpected character"),
        ("response_b", '{"a": 1}', "must be a JSON-encoded list of turns"),
        ("response_b", "[]", "must be a JSON-encoded list of turns"),
        ("prompt", "[null]", "must be a string"),
        ("response_a", "[3]", "must be a string"),
    ],
)
def test_malformed_turns_are_refused_naming_the_field(field, value, problem):
    (item,), _ = read([one_row(**{field: value})])

    ((where, said),) = problems(item)
    assert where.split("[")[0] == field and said.startswith(problem)


def test_a_bad_line_fails_the_whole_import_with_file_line_field(project, write_lines, run_import):
    path = write_lines([one_row(id=1), one_row(id=2, response_a='["cut')])

    result = run_import(path, format="arena")

    assert not result.ok
    assert result.error_lines[0].startswith(
        f"{path}:2: response_a: is not a JSON-encoded list of turns"
    )
    assert Comparison.objects.count() == 0


@pytest.mark.parametrize(
    ("winners", "problem"),
    [
        ((0, 0, 0), "exactly one must be 1 (winner_model_a=0, winner_model_b=0, winner_tie=0)"),
        ((1, 0, 1), "exactly one must be 1 (winner_model_a=1, winner_model_b=0, winner_tie=1)"),
    ],
)
def test_a_winner_that_is_not_one_hot_is_refused(winners, problem):
    fields = dict(zip(("winner_model_a", "winner_model_b", "winner_tie"), winners, strict=True))

    (item,), _ = read([one_row(**fields)])

    assert problems(item) == [("winner_model_a, winner_model_b, winner_tie", problem)]


def test_winner_fields_are_zero_or_one_and_csv_strings_count():
    source = one_row(winner_model_a="1", winner_model_b="0", winner_tie="0")
    (item,), _ = read([source])
    assert item.obj["human_labels"][0]["overall"] == "A"

    bad = one_row(winner_model_b=2)
    del bad["winner_tie"]
    (item,), _ = read([bad])
    assert problems(item) == [("winner_model_b", "2 is not 0 or 1"), ("winner_tie", "missing")]


def test_responses_with_another_number_of_turns_than_the_prompt_are_refused():
    source = one_row(turns=2)
    source["response_a"] = json.dumps(json.loads(source["response_a"])[:1])

    (item,), _ = read([source])

    assert problems(item) == [("response_a", "has 1 turns; prompt has 2")]


def test_a_lone_surrogate_becomes_a_replacement_character_and_is_counted():
    source = one_row(response_a='["cut emoji \\ud83c", "pair \\ud83c\\udf4d"]', turns=2)

    (item,), options = read([source])

    answers = [m["content"] for m in item.obj["response_a"]]
    assert answers == ["cut emoji \ufffd", "pair 🍍"]
    assert options.report.counts[LONE_SURROGATES] == 1
    assert record_from_native(item.obj)[1] == []


def test_already_decoded_turn_lists_are_read_too():
    source = one_row(prompt=["Hi?"], response_a=["Hello."], response_b=[None])

    (item,), _ = read([source])

    assert (item.obj["prompt"], item.obj["response_a"], item.obj["response_b"]) == (
        "Hi?",
        "Hello.",
        "",
    )


def test_a_missing_id_is_refused():
    source = one_row()
    del source["id"]

    (item,), _ = read([source])

    assert problems(item) == [("id", "missing")]


def test_arena_is_told_from_its_first_row_and_native_still_is_native():
    assert format_detect(rows(1)[0]) == "arena"
    assert format_detect(native("x")) == "native"
