"""Exports: full round trip, the TRL pairs on a hand-checked example, streaming in batches."""

import orjson
import pytest
from django.contrib.auth import get_user_model

from annotator.dataio.exporter import dataset_export_lines, human_majority
from annotator.models import Comparison, HumanLabel
from annotator.services import project_create
from scoring.models import LMLabel
from tests.annotator.test_importer import RICH, native
from tests.conftest import DATA


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


def test_full_export_then_import_round_trips_exactly(project, write_lines, run_import, run_export):
    records = [
        RICH,
        native("gold", gold="B", route="human", metadata={"nested": {"x": [1, 2.5, None]}}),
        native("empty-labels", human_labels=[], lm_labels=[]),
        native(
            "aspects",
            human_labels=[
                {
                    "annotator": "e",
                    "overall": "Tie",
                    "harmless": "B-is-slightly-better",
                    "confidence": "not",
                    "time_spent_s": 0,
                    "created_at": "2026-03-01T12:00:00.250000+02:00",
                }
            ],
            lm_labels=[
                {"judge": "j", "overall": "Tie", "p_a": 0.5, "raw_output": {"logits": [1.0, 2.0]}}
            ],
        ),
    ]
    run_import(write_lines(records))
    first = run_export(project="proj")

    project_create(slug="copy")
    copy_file = write_lines([first.decode()], name="export.jsonl")
    assert run_import(copy_file, project="copy").ok
    second = run_export(project="copy")

    assert second == first
    exported = {r["external_id"]: r for r in _lines(first)}
    assert exported["gold"]["gold"] == "B" and exported["gold"]["route"] == "human"
    label = exported["aspects"]["human_labels"][0]
    assert label["created_at"] == "2026-03-01T10:00:00.250000+00:00"
    assert (label["overall"], label["harmless"], label["helpful"]) == (
        "Tie",
        "B-is-slightly-better",
        None,
    )


def test_full_export_of_llmbar_with_evaluators_round_trips(project, run_import, run_export):
    run_import(DATA / "llmbar/Natural/dataset.json", format="llmbar", with_evaluators=True)
    first = run_export()
    project_create(slug="copy")
    from io import BytesIO

    from annotator.dataio.importer import comparisons_import
    from annotator.models import Project

    comparisons_import(
        project=Project.objects.get(slug="copy"), stream=BytesIO(first), source_name="x"
    )
    assert run_export(project="copy") == first


def test_platform_labels_export_with_the_username(project, run_export):
    user = get_user_model().objects.create_user("alice")
    comparison = Comparison.objects.create(
        project=project, external_id="c", prompt="p", response_a="a", response_b="b"
    )
    HumanLabel.objects.create(
        comparison=comparison,
        annotator=user,
        overall_choice="B",
        overall_strength="clearly",
        shown_order="BA",
        guidelines_version=1,
        time_spent_s=4.0,
    )
    (record,) = _lines(run_export())
    (label,) = record["human_labels"]
    assert label["annotator"] == "alice"
    assert label["source"] == "platform"
    assert label["overall"] == "B-is-clearly-better"
    assert label["shown_order"] == "BA"


def _comparison(project, external_id, humans=(), lms=()):
    comparison = Comparison.objects.create(
        project=project,
        external_id=external_id,
        prompt=f"prompt {external_id}",
        response_a=f"A of {external_id}",
        response_b=f"B of {external_id}",
    )
    for index, (choice, strength) in enumerate(humans):
        HumanLabel.objects.create(
            comparison=comparison,
            annotator_name=f"h{index}",
            source="imported",
            overall_choice=choice,
            overall_strength=strength,
        )
    for judge, choice in lms:
        LMLabel.objects.create(
            comparison=comparison, judge_name=judge, choice=choice, strength="unknown"
        )
    return comparison


def test_trl_export_on_a_hand_checked_example(project, run_export):
    project.primary_judge = "main"
    project.save()
    _comparison(
        project, "majority-a", humans=[("A", "clearly"), ("A", "slightly"), ("B", "clearly")]
    )
    _comparison(project, "split-vote", humans=[("A", "clearly"), ("B", "clearly")])
    _comparison(
        project, "tie-majority", humans=[("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")]
    )
    _comparison(project, "humans-beat-lm", humans=[("B", "clearly")], lms=[("main", "A")])
    _comparison(project, "lm-only", lms=[("main", "B"), ("other", "A")])
    _comparison(project, "lm-tie", lms=[("main", "tie")])
    _comparison(project, "other-judge-only", lms=[("other", "A")])
    _comparison(project, "unlabelled")

    rows = _lines(run_export(format="trl"))

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
    _comparison(project, "one", lms=[("big", "A"), ("small", "B")])
    _comparison(project, "two", lms=[("big", "B")])
    rows = _lines(run_export(format="trl"))
    assert [(r["external_id"], r["chosen"]) for r in rows] == [
        ("one", "A of one"),
        ("two", "B of two"),
    ]


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([], None),
        ([("A", "clearly")], ("A", "clearly", 1.0)),
        ([("A", "clearly"), ("B", "slightly")], None),
        ([("tie", "unknown"), ("tie", "unknown"), ("B", "clearly")], None),
        ([("B", "clearly"), ("B", "slightly"), ("tie", "unknown")], ("B", "slightly", 0.6667)),
        ([("B", "clearly"), ("B", "clearly"), ("B", "slightly")], ("B", "clearly", 1.0)),
        (
            [("A", "unknown"), ("A", "unknown"), ("B", "clearly"), ("tie", "unknown")],
            ("A", "unknown", 0.5),
        ),
    ],
)
def test_human_majority(votes, expected):
    assert human_majority(votes) == expected


def test_trl_export_loads_with_datasets(project, run_import, tmp_path, run_export):
    datasets = pytest.importorskip("datasets")
    run_import(DATA / "hh-rlhf/harmless-test-100.jsonl.gz", format="hh-rlhf")
    path = tmp_path / "trl.jsonl"
    path.write_bytes(run_export(format="trl"))

    dataset = datasets.load_dataset("json", data_files=str(path), split="train")

    assert len(dataset) == 100
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert all(p.endswith("\n\nAssistant:") for p in dataset["prompt"])


def test_export_batches_never_leak_another_projects_labels(project, other_project):
    # Interleave the two projects' ids so each batch's id range spans the other project's rows.
    for i in range(7):
        for target in (project, other_project):
            _comparison(target, f"{target.slug}-{i}", humans=[("A", "clearly")], lms=[("j", "B")])

    chunks = list(dataset_export_lines(project=project, kind="full", batch_size=2))

    assert len(chunks) == 4
    rows = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert [r["external_id"] for r in rows] == [f"proj-{i}" for i in range(7)]
    assert all(len(r["human_labels"]) == 1 and len(r["lm_labels"]) == 1 for r in rows)


def test_export_command_writes_a_file_atomically(project, tmp_path, write_lines, run_import):
    from django.core.management import call_command

    run_import(write_lines([RICH]))
    target = tmp_path / "out.jsonl"
    call_command("export_dataset", "--project", "proj", "--format", "trl", "--output", str(target))
    assert [r["external_id"] for r in _lines(target.read_bytes())] == []  # tied 1-1 human vote
    call_command("export_dataset", "--project", "proj", "--output", str(target))
    assert [r["external_id"] for r in _lines(target.read_bytes())] == ["rich"]
    assert not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_reader_thread_gives_the_same_export(tmp_path, write_lines):
    """Commands and API views export outside any transaction: the batches are then read ahead
    by a thread on its own connection. Its output must equal the inline path's."""
    from django.db import connection, transaction

    from annotator.dataio.importer import comparisons_import

    project = project_create(slug="threaded")
    path = write_lines([RICH, *(native(f"n{i}", gold="A") for i in range(25))])
    with path.open("rb") as stream:
        comparisons_import(project=project, stream=stream, source_name="x")

    assert not connection.in_atomic_block
    threaded = b"".join(dataset_export_lines(project=project, kind="full", batch_size=4))
    threaded_trl = b"".join(dataset_export_lines(project=project, kind="trl", batch_size=4))
    with transaction.atomic():
        inline = b"".join(dataset_export_lines(project=project, kind="full", batch_size=4))
        inline_trl = b"".join(dataset_export_lines(project=project, kind="trl", batch_size=4))

    assert threaded == inline
    assert threaded_trl == inline_trl
    assert len(threaded.splitlines()) == 26
