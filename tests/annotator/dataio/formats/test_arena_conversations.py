"""`arena-conversations`: chatbot_arena_conversations battles, the judge's vote a human label."""

import io
import random
from datetime import UTC, datetime

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.dataio.formats.vote_fields import NULL_RESPONSES
from annotator.models import Comparison, HumanLabel
from tests.format_rows.arena_conversations import row, rows


def read(records: list[dict]) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    options = ReadOptions()
    items = list(
        read_items(io.BytesIO(body), fmt="arena-conversations", source="c.jsonl", options=options)
    )
    return items, options


def problems(item) -> list[tuple[str, str]]:
    return [(e.field, e.problem) for e in item.errors]


def one_row(turns: int = 1, **changes) -> dict:
    data = row(random.Random(9), 0, turns=turns)
    data.update(changes)
    return data


def test_battles_import_with_the_judge_as_annotator(project, write_lines, run_import):
    data = rows(25, seed=4)

    result = run_import(write_lines(data), format="arena-conversations")

    assert result.ok, result.stderr
    assert result.summary["created"] == 25 and result.summary["human_labels"] == 25
    expected = {"model_a": "A", "model_b": "B", "tie": "tie", "tie (bothbad)": "tie"}
    for source in data:
        comparison = Comparison.objects.get(external_id=source["question_id"])
        label = comparison.human_labels.get()
        assert label.annotator_name == source["judge"] and label.annotator_type == "normal"
        assert label.overall_choice == expected[source["winner"]]
        assert label.created_at.timestamp() == pytest.approx(source["tstamp"], abs=1e-3)
        assert (comparison.model_a, comparison.model_b) == (source["model_a"], source["model_b"])
        kept = {k: source[k] for k in ("winner", "turn", "anony", "language")}
        kept |= {k: source[k] for k in ("openai_moderation", "toxic_chat_tag")}
        assert comparison.metadata == {"source": "lmsys/chatbot_arena_conversations", **kept}


def test_a_single_turn_battle_is_plain_text_and_both_bad_is_a_tie_kept_in_metadata(
    project, write_lines, run_import
):
    source = one_row(turns=1, winner="tie (bothbad)", tstamp=1682351591.5)

    result = run_import(write_lines([source]), format="arena-conversations")

    assert result.ok, result.stderr
    comparison = Comparison.objects.get()
    assert comparison.prompt == source["conversation_a"][0]["content"]
    assert comparison.response_a == source["conversation_a"][1]["content"]
    assert comparison.response_b == source["conversation_b"][1]["content"]
    assert comparison.prompt_messages is None
    assert comparison.metadata["winner"] == "tie (bothbad)"
    label = HumanLabel.objects.get()
    assert (label.overall_choice, label.overall_strength) == ("tie", "unknown")
    assert label.created_at == datetime(2023, 4, 24, 15, 53, 11, 500000, tzinfo=UTC)


def test_a_multi_turn_battle_keeps_the_user_turns_and_each_sides_answers(
    project, write_lines, run_import
):
    source = one_row(turns=3)

    result = run_import(write_lines([source]), format="arena-conversations")

    assert result.ok, result.stderr
    comparison = Comparison.objects.get()
    assert comparison.prompt_messages == source["conversation_a"][0::2]
    assert [m["role"] for m in comparison.prompt_messages] == ["user"] * 3
    assert comparison.response_a_messages == source["conversation_a"][1::2]
    assert comparison.response_b_messages == source["conversation_b"][1::2]


def test_a_leading_system_message_opens_the_prompt():
    system = {"role": "system", "content": "Be brief."}
    source = one_row(turns=1)
    source["conversation_a"] = [system, *source["conversation_a"]]
    source["conversation_b"] = [system, *source["conversation_b"]]

    (item,), _ = read([source])

    assert item.obj["prompt"] == [system, source["conversation_a"][1]]
    assert item.obj["response_a"] == [source["conversation_a"][2]]


def test_sides_that_do_not_share_their_user_turns_are_refused():
    source = one_row(turns=2)
    source["conversation_b"][2]["content"] = "something else"

    (item,), _ = read([source])

    assert problems(item) == [
        (
            "conversation_b",
            "user turn 2 differs from conversation_a's (both sides answer one user)",
        )
    ]


@pytest.mark.parametrize(
    ("conversation", "where", "problem"),
    [
        ([], "conversation_a", "must be a non-empty list of messages"),
        ("hello", "conversation_a", "must be a non-empty list of messages"),
        ([{"role": "assistant", "content": "Hi"}], "conversation_a[0].role", "'assistant': "),
        ([{"role": "user", "content": "Hi"}], "conversation_a", "ends with a user turn"),
        ([{"role": "user"}], "conversation_a[0].content", "missing"),
        (["Hi"], "conversation_a[0]", 'must be a message {"role": ..., "content": "..."}'),
    ],
)
def test_malformed_conversations_are_refused_naming_the_message(conversation, where, problem):
    (item,), _ = read([one_row(conversation_a=conversation)])

    ((field, said),) = problems(item)
    assert field == where and said.startswith(problem)


def test_a_null_answer_reads_as_empty_and_is_counted():
    source = one_row(turns=1)
    source["conversation_b"][1]["content"] = None

    (item,), options = read([source])

    assert item.obj["response_b"] == ""
    assert options.report.counts[NULL_RESPONSES] == 1


def test_an_unknown_winner_and_a_missing_judge_are_refused(project, write_lines, run_import):
    source = one_row(winner="model_c")
    del source["judge"]
    path = write_lines([one_row(), source])

    result = run_import(path, format="arena-conversations")

    assert not result.ok
    assert result.error_lines[:2] == [
        f"{path}:2: judge: missing",
        f"{path}:2: winner: 'model_c' is not one of model_a, model_b, tie, tie (bothbad)",
    ]
    assert Comparison.objects.count() == 0


def test_an_unreadable_tstamp_is_refused():
    (item,), _ = read([one_row(tstamp="yesterday")])

    assert problems(item) == [
        ("tstamp", "'yesterday' is not an ISO 8601 date-time or Unix seconds")
    ]


def test_arena_conversations_is_told_from_its_first_row():
    assert format_detect(rows(1)[0]) == "arena-conversations"
