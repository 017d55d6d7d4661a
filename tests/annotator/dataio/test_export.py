"""Exports through the front (dataset_export_lines, export_dataset): full round trips, every
stored value written exactly, the command's atomic file, reader threads outside a transaction."""

import pytest

from annotator.dataio.export import dataset_export_lines
from annotator.models import Comparison
from tests.annotator.dataio.export.helpers import AWKWARD_FLOATS, awkward_project, exported_rows
from tests.conftest import DATA
from tests.factories import PlatformLabelFactory, ProjectFactory
from tests.import_records import RICH, native


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

    ProjectFactory(slug="copy")
    copy_file = write_lines([first.decode()], name="export.jsonl")
    assert run_import(copy_file, project="copy").ok
    second = run_export(project="copy")

    assert second == first
    exported = {r["external_id"]: r for r in exported_rows(first)}
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
    ProjectFactory(slug="copy")
    from io import BytesIO

    from annotator.dataio.importer import comparisons_import
    from annotator.models import Project

    comparisons_import(
        project=Project.objects.get(slug="copy"), stream=BytesIO(first), source_name="x"
    )
    assert run_export(project="copy") == first


def test_platform_labels_export_with_the_username(project, run_export):
    PlatformLabelFactory(
        comparison__project=project,
        annotator__username="alice",
        overall_choice="B",
        shown_order="BA",
        guidelines_version=1,
        time_spent_s=4.0,
    )
    (record,) = exported_rows(run_export())
    (label,) = record["human_labels"]
    assert label["annotator"] == "alice"
    assert label["source"] == "platform"
    assert label["overall"] == "B-is-clearly-better"
    assert label["shown_order"] == "BA"


def test_export_command_writes_a_file_atomically(project, tmp_path, write_lines, run_import):
    from django.core.management import call_command

    run_import(write_lines([RICH]))
    target = tmp_path / "out.jsonl"
    call_command("export_dataset", "--project", "proj", "--format", "trl", "--output", str(target))
    assert [
        r["external_id"] for r in exported_rows(target.read_bytes())
    ] == []  # tied 1-1 human vote
    call_command("export_dataset", "--project", "proj", "--output", str(target))
    assert [r["external_id"] for r in exported_rows(target.read_bytes())] == ["rich"]
    assert not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_reader_threads_give_the_same_export(write_lines, settings):
    """Commands and API views export outside any transaction: the batches are then read ahead
    by threads on their own connections (EXPORT_READERS of them for `full` on PostgreSQL). Their
    output must equal the inline path's."""
    settings.EXPORT_READERS = 3
    from django.db import connection, transaction

    from annotator.dataio.importer import comparisons_import

    project = ProjectFactory(slug="threaded")
    path = write_lines([RICH, *(native(f"n{i}", gold="A") for i in range(25))])
    with path.open("rb") as stream:
        comparisons_import(project=project, stream=stream, source_name="x")

    assert not connection.in_atomic_block
    threaded = b"".join(dataset_export_lines(project=project, format="full", batch_size=4))
    threaded_trl = b"".join(dataset_export_lines(project=project, format="trl", batch_size=4))
    with transaction.atomic():
        inline = b"".join(dataset_export_lines(project=project, format="full", batch_size=4))
        inline_trl = b"".join(dataset_export_lines(project=project, format="trl", batch_size=4))

    assert threaded == inline
    assert threaded_trl == inline_trl
    assert len(threaded.splitlines()) == 26


def test_full_export_writes_every_stored_value_exactly(project):
    awkward_project(project)

    written = b"".join(dataset_export_lines(project=project, format="full", batch_size=2))

    odd, plain, unlabelled = exported_rows(written)
    comparison = Comparison.objects.get(external_id=odd["external_id"])
    assert (odd["prompt"], odd["metadata"], odd["gold"]) == (
        comparison.prompt,
        comparison.metadata,
        "Tie",
    )
    first, *timed = odd["human_labels"]
    assert (first["annotator"], first["reasons"], first["rationale"]) == (
        "ünïcode-user",
        ["x", comparison.prompt],
        comparison.prompt,
    )
    assert (first["overall"], first["helpful"], first["harmless"]) == (
        "A-is-slightly-better",
        None,
        "B-is-clearly-better",
    )
    stored = [s for s in AWKWARD_FLOATS if s == s and s != float("inf")]
    assert [label["time_spent_s"] for label in timed] == [*stored, None, None]
    assert b'"time_spent_s":0.00001,' in written and b'"time_spent_s":1e+16,' in written
    assert [label["p_a"] for label in odd["lm_labels"]] == [
        0.0, 1.0, 0.5, 1e-5, 1.5e-7, 5e-324, 0.99999, None
    ]  # fmt: skip
    assert [label["position_consistent"] for label in odd["lm_labels"]][-2:] == [False, None]
    assert odd["lm_labels"][0]["raw_output"] == {
        "logits": [1.0, -2.5e-8],
        "text": comparison.prompt,
    }
    assert [label["overall"] for label in plain["lm_labels"]] == ["Tie"]
    assert unlabelled["human_labels"] == [] and unlabelled["lm_labels"] == []
