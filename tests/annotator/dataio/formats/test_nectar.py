"""`nectar`: an HH-style prompt's seven ranked answers become pairs, GPT-4's better rank winning."""

import io

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.models import Comparison, LMLabel
from tests.conftest import table_counts
from tests.format_rows import nectar


def read(rows, **options) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    opts = ReadOptions(**options)
    return list(read_items(io.BytesIO(body), fmt="nectar", source="n", options=opts)), opts


def ranked(*ranks: float, text: str = "\n\nHuman: Q?\n\nAssistant:") -> dict:
    row = nectar.rows(1)[0]
    row["prompt"] = text
    row["answers"] = [
        {"answer": f"answer {k}", "model": f"m{k}", "rank": rank} for k, rank in enumerate(ranks)
    ]
    return row


def winner(native: dict) -> str:
    overall = native["lm_labels"][0]["overall"]
    return {"A": native["response_a"], "B": native["response_b"]}.get(overall, "tie")


def test_rows_import_as_best_vs_each_pairs_with_gpt_4s_rank(project, write_lines, run_import):
    rows = nectar.rows(8, seed=1)

    result = run_import(write_lines(rows), format="nectar")

    assert result.ok, result.stderr
    assert result.summary["created"] == 8 * 6 and result.summary["lm_labels"] == 8 * 6
    best = {row["answers"][0]["answer"] for row in rows}  # rank 1.0 in every row
    for label in LMLabel.objects.select_related("comparison"):
        c = label.comparison
        assert label.judge_name == "nectar-gpt-4" and label.p_a is None
        assert label.strength == "unknown"
        assert (c.response_a if label.choice == "A" else c.response_b) in best
        assert c.metadata["rank_a"] != c.metadata["rank_b"]
        assert {"turns", "num_responses", "source", "good_natured"} <= set(c.metadata)
        if c.metadata["turns"] == 1:
            assert c.prompt.startswith("0.002 = 1000 \n1 = x?") and c.prompt_messages is None
        else:
            assert [m["role"] for m in c.prompt_messages] == ["user", "assistant", "user"]
    assert {label.choice for label in LMLabel.objects.all()} == {"A", "B"}


def test_the_lower_rank_wins_and_equal_ranks_tie():
    items, _ = read([ranked(2.0, 1.0, 2.0)])

    pairs = {frozenset((i.obj["response_a"], i.obj["response_b"])): i.obj for i in items}
    assert winner(pairs[frozenset({"answer 0", "answer 1"})]) == "answer 1"
    assert winner(pairs[frozenset({"answer 1", "answer 2"})]) == "answer 1"
    items, _ = read([ranked(3.0, 3.0)], pairing="all-pairs")
    assert winner(items[0].obj) == "tie"


@pytest.mark.parametrize(("pairing", "count"), [("all-pairs", 21), ("best-vs-random", 1)])
def test_the_pairing_option_chooses_the_pairs(pairing, count):
    items, _ = read(nectar.rows(5, seed=2), pairing=pairing)

    assert len(items) == 5 * count
    if pairing == "best-vs-random":
        assert all("Answer 0 " in i.obj["response_a"] + i.obj["response_b"] for i in items)


def test_the_transcript_is_read_as_turns():
    text = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: 2+2?\n\nAssistant: "
    items, _ = read([ranked(1.0, 2.0, text=text)])

    assert items[0].obj["prompt"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "2+2?"},
    ]
    items, _ = read([ranked(1.0, 2.0, text="Human: Hi there\n\nAssistant:")])
    assert items[0].obj["prompt"] == "Hi there"


def test_fewer_than_two_answers_make_no_pair_and_are_counted():
    items, opts = read([ranked(1.0), ranked()])

    assert items == []
    assert opts.report.counts == {"prompts with fewer than two answers (no pair)": 2}


def test_label_source_names_the_judge(project, write_lines, run_import):
    result = run_import(write_lines(nectar.rows(1)), format="nectar", label_source="lm:gpt-4")

    assert result.ok, result.stderr
    assert set(LMLabel.objects.values_list("judge_name", flat=True)) == {"gpt-4"}
    assert Comparison.objects.count() == 6


def test_auto_tells_nectar():
    assert format_detect(nectar.rows(1)[0]) == "nectar"


def changed(**changes) -> dict:
    row = {**nectar.rows(1, seed=3)[0], **changes}
    return {k: v for k, v in row.items() if v != "DROP"}


def answer(**changes) -> dict:
    return changed(answers=[{"answer": "a", "model": "m", "rank": 1.0, **changes}])


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (changed(answers="DROP"), "answers", "missing"),
        (changed(answers={"answer": "a"}), "answers", "must be a list, not an object"),
        (changed(answers=["a", "b"]), "answers[0]", "must be an object"),
        (answer(rank="1"), "answers[0].rank", "must be a number"),
        (answer(rank=0), "answers[0].rank", "outside [1, 100]"),
        (answer(answer=None), "answers[0].answer", "must not be null"),
        (answer(model=4), "answers[0].model", "must be a string"),
        (changed(prompt="Q? A:"), "prompt", "is not an HH transcript"),
        (changed(prompt="\n\nHuman: Q?\n\nAssistant: A."), "prompt", "is not an HH transcript"),
        (changed(prompt=7), "prompt", "must be a string"),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([nectar.rows(1)[0], row])

    result = run_import(path, format="nectar")

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
