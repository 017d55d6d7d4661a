"""`ultrafeedback`: raw UltraFeedback rows become pairs of completions with GPT-4's LM label."""

import io
import math
import random

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.models import Comparison, LMLabel
from tests.conftest import table_counts
from tests.format_rows import ultrafeedback as uf

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")


def read(rows, **options) -> tuple[list, ReadOptions]:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    opts = ReadOptions(**options)
    items = list(read_items(io.BytesIO(body), fmt="ultrafeedback", source="uf", options=opts))
    return items, opts


def rated(*means: str | tuple[str, ...]) -> dict:
    """A row whose completions have these ratings (one string: the same for every aspect)."""
    row = uf.rows(1, seed=7)[0]
    row["completions"] = [
        uf.completion(
            f"model-{k}",
            f"answer {k}",
            dict(zip(ASPECTS, (r,) * 4 if isinstance(r, str) else r, strict=True)),
            random.Random(k),
        )
        for k, r in enumerate(means)
    ]
    return row


def by_models(items) -> dict[frozenset, dict]:
    return {frozenset((i.obj["model_a"], i.obj["model_b"])): i.obj for i in items}


def winner(native: dict) -> str:
    """The model the label prefers (or 'tie')."""
    overall = native["lm_labels"][0]["overall"]
    if overall == "Tie":
        return "tie"
    return native["model_a"] if overall.startswith("A") else native["model_b"]


def test_rows_import_as_best_vs_each_pairs_with_an_lm_label(project, write_lines, run_import):
    rows = uf.rows(6, seed=1)

    result = run_import(write_lines(rows, name="uf.jsonl"), format="ultrafeedback")

    assert result.ok, result.stderr
    assert result.summary["created"] == 18 and result.summary["lm_labels"] == 18
    assert result.summary["human_labels"] == 0
    labels = LMLabel.objects.select_related("comparison")
    assert {label.judge_name for label in labels} == {"ultrafeedback-gpt-4"}
    for label in labels:
        c = label.comparison
        score_a, score_b = c.metadata["completion_a"]["score"], c.metadata["completion_b"]["score"]
        assert label.p_a == pytest.approx(1 / (1 + math.exp(score_b - score_a)))
        assert c.metadata["source"] in uf.SOURCES and len(c.metadata["models"]) == 4
        assert {c.model_a, c.model_b} <= set(uf.MODELS)
        assert "Rationale" not in label.rationale and "A honesty" in label.rationale
        assert set(label.raw_output) == {"a", "b"}
        expected = "A" if score_a > score_b else "B" if score_a < score_b else "tie"
        assert label.choice == expected


def test_the_score_is_the_mean_of_the_aspect_ratings_and_the_gap_sets_the_label():
    row = rated("4", ("3", "3", "3", "4"), ("4", "4", "4", "3"), "2")
    items, _ = read([row])

    pairs = by_models(items)
    assert set(pairs) == {frozenset({"model-0", f"model-{k}"}) for k in (1, 2, 3)}
    slightly = pairs[frozenset({"model-0", "model-1"})]  # 4 vs 3.25: a gap of 0.75
    assert winner(slightly) == "model-0"
    assert slightly["lm_labels"][0]["overall"].endswith("-is-slightly-better")
    assert abs(slightly["lm_labels"][0]["p_a"] - 0.5) == pytest.approx(
        1 / (1 + math.exp(-0.75)) - 0.5
    )
    clearly = pairs[frozenset({"model-0", "model-3"})]  # 4 vs 2
    assert clearly["lm_labels"][0]["overall"].endswith("-is-clearly-better")
    assert winner(clearly) == "model-0"
    close = pairs[frozenset({"model-0", "model-2"})]  # 4 vs 3.75: slightly, not a tie
    assert winner(close) == "model-0"
    assert slightly["metadata"]["completion_a"]["ratings"]["honesty"] in (3, 4)


def test_equal_scores_are_a_tie_with_p_a_one_half():
    items, _ = read([rated("3", "3")])

    (item,) = items
    label = item.obj["lm_labels"][0]
    assert label["overall"] == "Tie" and label["p_a"] == 0.5


def test_na_ratings_are_left_out_and_an_unrated_completion_is_in_no_pair():
    row = rated(("5", "N/A", "5", "5"), ("N/A",) * 4, "3")
    items, opts = read([row])

    (item,) = items
    assert {item.obj["model_a"], item.obj["model_b"]} == {"model-0", "model-2"}
    assert item.obj["metadata"]["completion_a"]["score"] in (5.0, 3.0)
    assert opts.report.counts == {"completions without any aspect rating (in no pair)": 1}
    items, opts = read([rated("4", ("N/A",) * 4)])
    assert items == []
    assert opts.report.counts["instructions with fewer than two rated completions (no pair)"] == 1


@pytest.mark.parametrize(("pairing", "count"), [("all-pairs", 6), ("best-vs-random", 1)])
def test_the_pairing_option_chooses_the_pairs(pairing, count):
    rows = uf.rows(10, seed=3)
    items, _ = read(rows, pairing=pairing)

    assert len(items) == 10 * count
    again, _ = read(rows, pairing=pairing)
    assert [i.obj for i in again] == [i.obj for i in items]


def test_best_vs_random_draws_by_seed_and_the_best_is_always_in_the_pair():
    rows = uf.rows(30, seed=4)
    picks = {}
    for seed in (0, 1):
        items, _ = read(rows, pairing="best-vs-random", pairing_seed=seed)
        picks[seed] = [i.obj["external_id"] for i in items]
    assert picks[0] != picks[1]
    everything = {i.obj["external_id"] for i in read(rows, pairing="all-pairs")[0]}
    best = {i.obj["external_id"] for i in read(rows)[0]}
    assert set(picks[0]) <= best <= everything


def test_another_pairing_later_adds_only_the_pairs_not_imported_yet(
    project, write_lines, run_import
):
    path = write_lines(uf.rows(4, seed=5))
    assert run_import(path, format="ultrafeedback").summary["created"] == 12

    result = run_import(path, format="ultrafeedback", pairing="all-pairs")

    assert result.summary["created"] == 12 and result.summary["skipped"] == 12
    assert Comparison.objects.count() == 24


def test_label_source_names_the_judge(project, write_lines, run_import):
    path = write_lines(uf.rows(1, seed=6))

    result = run_import(path, format="ultrafeedback", label_source="lm:gpt-4-0613")

    assert result.ok
    assert set(LMLabel.objects.values_list("judge_name", flat=True)) == {"gpt-4-0613"}


def test_the_a_b_order_is_drawn_not_the_winner_first():
    items, _ = read(uf.rows(20, seed=8))
    firsts = {i.obj["lm_labels"][0]["overall"][0] for i in items}
    assert {"A", "B"} <= firsts


def test_auto_tells_ultrafeedback_from_its_first_row():
    assert format_detect(uf.rows(1)[0]) == "ultrafeedback"


def bad(mutate) -> dict:
    row = uf.rows(1, seed=9)[0]
    mutate(row)
    return row


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (bad(lambda r: r.pop("instruction")), "instruction", "missing"),
        (bad(lambda r: r.update(completions=None)), "completions", "must not be null"),
        (bad(lambda r: r.update(completions="four")), "completions", "must be a list"),
        (bad(lambda r: r["completions"].append(3)), "completions[4]", "must be an object"),
        (
            bad(lambda r: r["completions"][1].update(response=7)),
            "completions[1].response",
            "must be a string",
        ),
        (
            bad(lambda r: r["completions"][2]["annotations"]["honesty"].update(Rating="7")),
            "completions[2].annotations.honesty.Rating",
            "'7' is not a rating 1-5 or N/A",
        ),
        (
            bad(lambda r: r["completions"][0].update(annotations=["5"])),
            "completions[0].annotations",
            "must be an object",
        ),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([uf.rows(1)[0], row])

    result = run_import(path, format="ultrafeedback")

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
