"""`mt-bench-human`: MT-Bench expert votes grouped into one comparison per question, pair and
turn, whatever the file's order."""

import io

import orjson
import pytest

from annotator.dataio.formats import FormatError, ReadOptions, format_detect, read_items
from annotator.dataio.formats.mt_bench_human import comparison_id
from annotator.dataio.formats.vote_fields import RENAMED_ANNOTATORS
from annotator.models import Comparison, HumanLabel
from tests.format_rows import arena_conversations
from tests.format_rows.mt_bench_human import answer, question, rows, vote


def read(records: list[dict]) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    options = ReadOptions()
    items = list(
        read_items(io.BytesIO(body), fmt="mt-bench-human", source="m.jsonl", options=options)
    )
    return items, options


def problems(items) -> list[tuple[int, str, str]]:
    return [(item.line, e.field, e.problem) for item in items for e in item.errors]


def test_votes_spread_over_the_file_become_the_labels_of_one_comparison_each(
    project, write_lines, run_import
):
    data = rows(120, seed=6)
    keys = {comparison_id(r["question_id"], r["model_a"], r["model_b"], r["turn"])[0] for r in data}

    result = run_import(write_lines(data), format="mt-bench-human")

    assert result.ok, result.stderr
    assert result.summary["created"] == len(keys) < 120
    assert result.summary["human_labels"] == 120
    for comparison in Comparison.objects.all():
        assert comparison.model_a < comparison.model_b
        question_id, _, _, turn = comparison.external_id.split("/")
        assert comparison.metadata == {
            "source": "lmsys/mt_bench_human_judgments",
            "question_id": int(question_id),
            "turn": int(turn.removeprefix("turn-")),
        }
    assert set(HumanLabel.objects.values_list("annotator_type", flat=True)) == {"expert"}


def test_a_vote_seen_the_other_way_round_is_flipped_and_a_second_vote_renamed(
    project, write_lines, run_import
):
    data = [
        vote(81, "gpt-4", "claude-v1", 1, "expert_0", "model_a"),  # gpt-4 is B here
        vote(82, "gpt-4", "llama-13b", 1, "expert_1", "tie"),
        vote(81, "claude-v1", "gpt-4", 1, "author_2", "model_a"),  # claude-v1 is A
        vote(81, "gpt-4", "claude-v1", 1, "expert_0", "model_b"),
    ]

    result = run_import(write_lines(data), format="mt-bench-human")

    assert result.ok, result.stderr
    assert result.summary["created"] == 2
    assert result.summary["notes"] == {RENAMED_ANNOTATORS: 1}
    comparison = Comparison.objects.get(external_id="81/claude-v1/gpt-4/turn-1")
    assert (comparison.model_a, comparison.model_b) == ("claude-v1", "gpt-4")
    assert comparison.response_a == answer(81, "claude-v1", 1)
    labels = {
        label.annotator_name: (label.overall_choice, label.shown_order)
        for label in comparison.human_labels.all()
    }
    assert labels == {"expert_0": ("B", "BA"), "author_2": ("A", "AB"), "expert_0#2": ("A", "BA")}


def test_turn_one_is_the_first_exchange_and_turn_two_the_whole_dialogue():
    data = [
        vote(90, "alpaca-13b", "gpt-4", 1, "expert_3", "model_b"),
        vote(90, "alpaca-13b", "gpt-4", 2, "expert_3", "model_b"),
    ]

    (first, second), _ = read(data)

    assert first.obj["prompt"] == question(90, 1)
    assert first.obj["response_a"] == answer(90, "alpaca-13b", 1)
    assert second.obj["external_id"] == "90/alpaca-13b/gpt-4/turn-2"
    assert second.obj["prompt"] == [
        {"role": "user", "content": question(90, 1)},
        {"role": "user", "content": question(90, 2)},
    ]
    assert second.obj["response_b"] == [
        {"role": "assistant", "content": answer(90, "gpt-4", 1)},
        {"role": "assistant", "content": answer(90, "gpt-4", 2)},
    ]


def test_another_answer_for_the_same_comparison_is_refused_naming_the_first_line():
    other = vote(81, "gpt-4", "claude-v1", 1, "expert_1", "tie")
    other["conversation_a"][1]["content"] = "a different answer"
    data = [vote(81, "gpt-4", "claude-v1", 1, "expert_0", "tie"), other]

    items, _ = read(data)

    assert problems(items) == [
        (
            2,
            "conversation_a",
            "differs from line 1's answers to the same comparison (81/claude-v1/gpt-4/turn-1)",
        )
    ]


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"winner": "model_c"}, "winner", "'model_c' is not one of model_a, model_b, tie or tie"),
        ({"judge": ["gpt-4", "pair-v2"]}, "judge", "['gpt-4', 'pair-v2'] is not a human judge's"),
        ({"turn": 3}, "turn", "is 3 but the conversations have 2 user turns"),
        ({"turn": 0}, "turn", "0 is not a turn number"),
        ({"question_id": None}, "question_id", "must not be null"),
        ({"model_b": ""}, "model_b", "'' is not a model name"),
        ({"tstamp": "soon"}, "tstamp", "'soon' is not an ISO 8601 date-time or Unix seconds"),
    ],
)
def test_bad_votes_are_refused_naming_the_field(changes, field, problem):
    data = vote(81, "gpt-4", "claude-v1", 1, "expert_0", "tie") | changes

    items, _ = read([data])

    ((line, where, said),) = problems(items)
    assert (line, where) == (1, field) and said.startswith(problem)


def test_a_tie_variant_is_a_tie_and_a_tstamp_the_labels_time():
    data = vote(81, "gpt-4", "claude-v1", 2, "expert_0", "tie (inconsistent)")
    data["tstamp"] = 1687221000

    (item,), _ = read([data])

    label = item.obj["human_labels"][0]
    assert label["overall"] == "Tie" and label["created_at"] == "2023-06-20T00:30:00+00:00"


def test_a_field_the_schema_does_not_name_is_counted_as_not_kept():
    data = vote(81, "gpt-4", "claude-v1", 1, "expert_0", "tie") | {"presentation": "left"}

    (item,), options = read([data])

    assert item.errors == [] and "presentation" not in orjson.dumps(item.obj).decode()
    assert options.report.counts == {"fields not kept: presentation": 1}


def test_the_import_can_be_repeated(project, write_lines, run_import):
    path = write_lines(rows(30, seed=2))
    created = run_import(path, format="mt-bench-human").summary["created"]

    again = run_import(path, format="mt-bench-human")

    assert again.ok and again.summary["skipped"] == created and again.summary["created"] == 0


def test_mt_bench_and_arena_battles_are_told_apart():
    assert format_detect(rows(1)[0]) == "mt-bench-human"
    assert format_detect(arena_conversations.rows(1)[0]) == "arena-conversations"
    # A battle cut to MT-Bench's columns still has a hex question id: no format claims it.
    battle = arena_conversations.rows(1)[0]
    cut = {k: battle[k] for k in rows(1)[0]}
    with pytest.raises(FormatError, match="no format matches"):
        format_detect(cut)
