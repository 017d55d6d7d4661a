"""The TRL export (annotator/dataio/export/trl.py): the pairs on a hand-checked example, the
most used judge without a primary one, loading with `datasets`, the one-query read on PostgreSQL."""

import pytest

from annotator.dataio.export import dataset_export_lines
from tests.annotator.dataio.export.helpers import exported_rows
from tests.conftest import DATA
from tests.factories import ComparisonFactory, LMLabelFactory


def test_trl_export_on_a_hand_checked_example(project, run_export):
    project.primary_judge = "main"
    project.save()
    ComparisonFactory(
        project=project,
        external_id="majority-a",
        human_votes=[("A", "clearly"), ("A", "slightly"), ("B", "clearly")],
    )
    ComparisonFactory(
        project=project, external_id="split-vote", human_votes=[("A", "clearly"), ("B", "clearly")]
    )
    ComparisonFactory(
        project=project,
        external_id="tie-majority",
        human_votes=[("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")],
    )
    ComparisonFactory(
        project=project,
        external_id="humans-beat-lm",
        human_votes=[("B", "clearly")],
        lm_votes=[("main", "A")],
    )
    ComparisonFactory(
        project=project, external_id="lm-only", lm_votes=[("main", "B"), ("other", "A")]
    )
    ComparisonFactory(project=project, external_id="lm-tie", lm_votes=[("main", "tie")])
    ComparisonFactory(project=project, external_id="other-judge-only", lm_votes=[("other", "A")])
    ComparisonFactory(project=project, external_id="unlabelled")

    rows = exported_rows(run_export(format="trl"))

    # ComparisonFactory names each text after the comparison: "prompt x", "A of x", "B of x".
    assert rows == [
        {
            "prompt": "prompt majority-a",
            "chosen": "A of majority-a",
            "rejected": "B of majority-a",
            "external_id": "majority-a",
            "label_source": "human",
            "strength": "slightly",
            "agreement": 0.6667,
        },
        {
            "prompt": "prompt humans-beat-lm",
            "chosen": "B of humans-beat-lm",
            "rejected": "A of humans-beat-lm",
            "external_id": "humans-beat-lm",
            "label_source": "human",
            "strength": "clearly",
            "agreement": 1.0,
        },
        {
            "prompt": "prompt lm-only",
            "chosen": "B of lm-only",
            "rejected": "A of lm-only",
            "external_id": "lm-only",
            "label_source": "lm",
            "strength": "unknown",
            "agreement": None,
        },
    ]


def test_trl_export_without_a_primary_judge_uses_the_most_used_judge(project, run_export):
    ComparisonFactory(project=project, external_id="one", lm_votes=[("big", "A"), ("small", "B")])
    ComparisonFactory(project=project, external_id="two", lm_votes=[("big", "B")])
    rows = exported_rows(run_export(format="trl"))
    assert [(r["external_id"], r["chosen"]) for r in rows] == [
        ("one", "A of one"),
        ("two", "B of two"),
    ]


def test_trl_export_loads_with_datasets(project, run_import, tmp_path, run_export):
    datasets = pytest.importorskip("datasets")
    run_import(DATA / "hh-rlhf/harmless-test-100.jsonl.gz", format="hh-rlhf")
    path = tmp_path / "trl.jsonl"
    path.write_bytes(run_export(format="trl"))

    dataset = datasets.load_dataset("json", data_files=str(path), split="train")

    assert len(dataset) == 100
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert all(p.endswith("\n\nAssistant:") for p in dataset["prompt"])


def _three_query_trl(monkeypatch, project, **options) -> bytes:
    from annotator.dataio.export import trl

    with monkeypatch.context() as patch:
        patch.setattr(trl, "one_query_per_batch", lambda: False)
        return b"".join(dataset_export_lines(project=project, format="trl", **options))


def test_trl_export_read_in_one_query_on_postgresql_has_the_portable_bytes(project, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the one-query TRL read is PostgreSQL's")
    project.primary_judge = "main"
    project.save()
    votes = [
        [("A", "clearly"), ("A", "slightly"), ("B", "clearly")],
        [("A", "clearly"), ("B", "clearly")],
        [("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")],
        [("B", "unknown"), ("B", "slightly"), ("B", "slightly"), ("A", "clearly")],
        [("B", "clearly")],
        [],
    ]
    for i in range(30):  # the same vote patterns again and again, across batches
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            human_votes=votes[i % 6],
            lm_votes=[("main", "AB"[i % 2])],
        )
    newer = ComparisonFactory(
        project=project, external_id="newer-version", lm_votes=[("main", "A"), ("other", "B")]
    )
    LMLabelFactory(
        comparison=newer, judge_name="main", judge_version="v2", choice="B", strength="clearly"
    )
    ComparisonFactory(project=project, external_id="lm-tie", lm_votes=[("main", "tie")])

    read = b"".join(dataset_export_lines(project=project, format="trl", batch_size=7))

    assert read == _three_query_trl(monkeypatch, project, batch_size=7)
    from annotator.dataio.export import trl

    monkeypatch.setattr(trl, "_VOTE_TEXTS_KEPT", 2)  # forgetting final labels changes nothing
    assert b"".join(dataset_export_lines(project=project, format="trl", batch_size=7)) == read
    rows = {r["external_id"]: r for r in exported_rows(read)}
    assert len(rows) == 21 and "lm-tie" not in rows and "c1" not in rows and "c5" in rows
    assert (rows["newer-version"]["chosen"], rows["newer-version"]["strength"]) == (
        "B of newer-version",
        "clearly",
    )
    assert (rows["c3"]["strength"], rows["c3"]["agreement"]) == ("slightly", 0.75)
