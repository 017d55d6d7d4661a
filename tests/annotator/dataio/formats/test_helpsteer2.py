"""`helpsteer2`: a prompt's consecutive rated rows become pairs, the preference helpfulness's."""

import io

import orjson
import pytest

from annotator.dataio.formats import FormatError, ReadOptions, format_detect, read_items
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import table_counts
from tests.format_rows import helpsteer2 as hs2

ALONE = "prompts with one response (no pair)"


def read(rows, **options) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    opts = ReadOptions(**options)
    items = list(read_items(io.BytesIO(body), fmt="helpsteer2", source="hs2", options=opts))
    return items, opts


def row(prompt: str, response: str, helpfulness: int, **attributes) -> dict:
    values = dict.fromkeys(hs2.ATTRIBUTES, 2) | {"helpfulness": helpfulness} | attributes
    return {"prompt": prompt, "response": response, **values}


def label_of(native: dict) -> tuple[str, str, str]:
    """(overall label, the better response, the worse one); a tie lists A first."""
    overall = native["human_labels"][0]["overall"]
    a, b = native["response_a"], native["response_b"]
    return overall, *((b, a) if overall.startswith("B") else (a, b))


def test_rows_import_as_pairs_with_helpfulness_as_a_human_label(project, write_lines, run_import):
    rows = hs2.rows(40, seed=1)

    result = run_import(write_lines(rows, name="hs2.jsonl"), format="helpsteer2")

    assert result.ok, result.stderr
    assert result.summary["created"] == 20 and result.summary["human_labels"] == 20
    by_response = {r["response"]: r for r in rows}
    for c in Comparison.objects.all():
        a, b = by_response[c.response_a], by_response[c.response_b]
        assert a["prompt"] == b["prompt"]
        gaps = {name: a[name] - b[name] for name in hs2.ATTRIBUTES}
        assert c.metadata["attribute_gaps"] == gaps
        assert c.metadata["attributes_a"] == {name: a[name] for name in hs2.ATTRIBUTES}
        label = c.human_labels.get()
        assert label.annotator_name == "hs2.jsonl"
        expected = "A" if gaps["helpfulness"] > 0 else "B" if gaps["helpfulness"] < 0 else "tie"
        assert label.overall_choice == expected
        if "<extra_id_1>" in a["prompt"]:
            assert [m["role"] for m in c.prompt_messages] == ["user", "assistant", "user"]
        else:
            assert c.prompt == a["prompt"] and c.prompt_messages is None


@pytest.mark.parametrize(
    ("better", "worse", "expected"),
    [(4, 3, "slightly"), (3, 1, "clearly"), (4, 0, "clearly")],
)
def test_the_helpfulness_gap_sets_the_strength(better, worse, expected):
    items, _ = read([row("Q", "good", better), row("Q", "bad", worse)])

    (item,) = items
    overall, winner, loser = label_of(item.obj)
    assert (winner, loser) == ("good", "bad")
    assert overall.endswith(f"-is-{expected}-better")


def test_equal_helpfulness_is_a_tie_whatever_the_other_attributes():
    items, _ = read([row("Q", "x", 3, correctness=4), row("Q", "y", 3, correctness=0)])

    (item,) = items
    assert item.obj["human_labels"][0]["overall"] == "Tie"
    assert abs(item.obj["metadata"]["attribute_gaps"]["correctness"]) == 4


def test_only_consecutive_rows_of_a_prompt_are_grouped():
    rows = [row("X", "x1", 4), row("X", "x2", 1), row("Y", "y1", 2), row("X", "x3", 0)]

    items, opts = read(rows)

    assert [i.line for i in items] == ["1,2"]
    assert opts.report.counts == {ALONE: 2}


@pytest.mark.parametrize(("pairing", "count"), [("best-vs-each", 2), ("all-pairs", 3)])
def test_three_responses_to_one_prompt_are_paired_by_the_pairing_option(pairing, count):
    rows = [row("Q", "r0", 1), row("Q", "r1", 4), row("Q", "r2", 2)]

    items, _ = read(rows, pairing=pairing)

    assert len(items) == count
    if pairing == "best-vs-each":
        assert all(label_of(i.obj)[1] == "r1" for i in items)


def test_a_multi_turn_prompt_is_read_as_messages():
    prompt = "Define signal\n<extra_id_1>Assistant\nA carrier.\n<extra_id_1>User\nMore?"
    items, _ = read([row(prompt, "a", 1), row(prompt, "b", 2)])

    assert items[0].obj["prompt"] == [
        {"role": "user", "content": "Define signal"},
        {"role": "assistant", "content": "A carrier."},
        {"role": "user", "content": "More?"},
    ]


def test_groups_are_paired_as_the_file_is_read_not_at_its_end():
    body = b"".join(orjson.dumps(r) + b"\n" for r in hs2.rows(4000, seed=2))
    stream = io.BytesIO(body)
    items = read_items(stream, fmt="helpsteer2", source="hs2", options=ReadOptions())

    next(items)

    assert stream.tell() < len(body) / 10


def test_label_source_stores_an_lm_label(project, write_lines, run_import):
    result = run_import(write_lines(hs2.rows(4)), format="helpsteer2", label_source="lm:hs2")

    assert result.ok, result.stderr
    assert HumanLabel.objects.count() == 0
    assert set(LMLabel.objects.values_list("judge_name", flat=True)) == {"hs2"}


def test_auto_tells_helpsteer2_but_not_its_disagreements_config():
    first = hs2.rows(1)[0]
    assert format_detect(first) == "helpsteer2"
    per_annotator = {**first, **{name: [3, 3, 4] for name in hs2.ATTRIBUTES}}
    with pytest.raises(FormatError, match="no format matches"):
        format_detect(per_annotator)


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        (row("Q", "r", 5), "helpfulness", "5 is outside [0, 4]"),
        (row("Q", "r", 2, verbosity="1"), "verbosity", "must be a number, not a string"),
        (row("Q", "r", 2, coherence=None), "coherence", "must not be null"),
        ({"prompt": "Q", "helpfulness": 1}, "response", "missing"),
        (row(["Q"], "r", 2), "prompt", "must be a string, not a list"),
    ],
)
def test_bad_rows_are_refused_at_their_own_line(
    project, write_lines, run_import, bad, field, problem
):
    path = write_lines([row("Q", "ok", 3), bad, row("Q", "fine", 1)])

    result = run_import(path, format="helpsteer2")

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
