"""`shp`: a Reddit post and two comments, `labels` as the human label, the rest as metadata."""

import io

import orjson
import pytest

from annotator.dataio.formats import ReadOptions, format_detect, read_items
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.conftest import table_counts
from tests.format_rows import shp


def read(rows) -> list:
    body = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    return list(read_items(io.BytesIO(body), fmt="shp", source="s", options=ReadOptions()))


def test_rows_import_with_labels_as_the_human_label(project, write_lines, run_import):
    rows = shp.rows(12, seed=1)

    result = run_import(write_lines(rows, name="askculinary.jsonl"), format="shp")

    assert result.ok, result.stderr
    assert result.summary["created"] == 12 and result.summary["human_labels"] == 12
    for row in rows:
        c = Comparison.objects.get(
            external_id=f"shp-{row['post_id']}-{row['c_root_id_A']}-{row['c_root_id_B']}"
        )
        assert (c.prompt, c.response_a, c.response_b) == (
            row["history"],
            row["human_ref_A"],
            row["human_ref_B"],
        )
        assert "https:\\/\\/example.org" in c.prompt  # kept as published
        label = c.human_labels.get()
        assert label.annotator_name == "askculinary.jsonl"
        assert (label.overall_choice, label.overall_strength) == (
            "A" if row["labels"] == 1 else "B",
            "unknown",
        )
        kept = {k: v for k, v in row.items() if k not in ("history", "human_ref_A", "human_ref_B")}
        assert c.metadata == {k: v for k, v in kept.items() if k != "labels"}
    assert {h.overall_choice for h in HumanLabel.objects.all()} == {"A", "B"}


def test_without_comment_ids_the_id_is_a_hash_of_the_texts():
    row = shp.rows(1)[0]
    del row["c_root_id_B"]

    (item,) = read([row])

    assert item.obj["external_id"].startswith("shp-") and len(item.obj["external_id"]) == 28
    assert read([row])[0].obj["external_id"] == item.obj["external_id"]


def test_label_source_stores_an_lm_label(project, write_lines, run_import):
    result = run_import(write_lines(shp.rows(3)), format="shp", label_source="lm:reddit")

    assert result.ok, result.stderr
    assert LMLabel.objects.filter(judge_name="reddit").count() == 3


def test_auto_tells_shp():
    assert format_detect(shp.rows(1)[0]) == "shp"


def changed(**changes) -> dict:
    row = {**shp.rows(1, seed=2)[0], **changes}
    return {k: v for k, v in row.items() if v != "DROP"}


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        (changed(labels=2), "labels", "2 is outside [0, 1]"),
        (changed(labels="1"), "labels", "must be a number"),
        (changed(labels="DROP"), "labels", "missing"),
        (changed(human_ref_B=None), "human_ref_B", "must not be null"),
        (changed(history={"title": "t"}), "history", "must be a string, not an object"),
        (changed(post_id=17), "post_id", "must be a string"),
    ],
)
def test_bad_rows_are_refused_by_line_and_field(
    project, write_lines, run_import, row, field, problem
):
    path = write_lines([shp.rows(1)[0], row])

    result = run_import(path, format="shp")

    assert not result.ok
    assert any(e.startswith(f"{path}:2: {field}: ") and problem in e for e in result.error_lines)
    assert table_counts() == (0, 0, 0)
