"""The `multipref` export (annotator/dataio/export/multipref.py): MultiPref's row shape back from
the labels, so that MultiPref -> import -> export gives the rows read, and export -> import ->
export the same bytes."""

import io

import orjson
import pytest
from django.core.management import call_command

from annotator.dataio.formats.multipref import PREFS
from tests.annotator.dataio.export.helpers import exported_rows
from tests.factories import HumanLabelFactory, PlatformLabelFactory, ProjectFactory
from tests.format_rows.multipref import rows


def _multipref(project) -> bytes:
    out = io.StringIO()
    call_command(
        "export_dataset",
        "--project",
        project.slug,
        "--format",
        "multipref",
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue().encode()


def _iso(timestamp: str) -> str:
    """The import reads MultiPref's zone-less timestamps as UTC; the export writes ISO 8601."""
    return timestamp.replace(" ", "T") + "+00:00"


def test_imported_multipref_rows_export_as_they_were_read(project, write_lines, run_import):
    original = rows(8, seed=2)
    original[0]["normal_worker_annotations"][1]["evaluator"] = original[0][
        "normal_worker_annotations"
    ][0]["evaluator"]  # one worker twice: imported as NAME and NAME#2
    original[1]["expert_worker_annotations"][0]["helpful_checked_reasons"] = ["my-own-reason"]
    assert run_import(write_lines(original), format="multipref").ok

    exported = exported_rows(_multipref(project))

    for row in original:
        for key in ("normal_worker_annotations", "expert_worker_annotations"):
            for annotation in row[key]:
                annotation["timestamp"] = _iso(annotation["timestamp"])
    assert exported == original


def test_export_import_export_gives_the_same_bytes(project, write_lines, run_import, run_export):
    assert run_import(write_lines(rows(12, seed=5)), format="multipref").ok
    first = _multipref(project)

    copy = ProjectFactory(slug="copy")
    exported = write_lines([first.decode()], name="exported.jsonl")
    assert run_import(exported, project="copy", format="multipref").ok

    assert _multipref(copy) == first
    # Every stored value, labels included, came back: the full exports are the same bytes.
    assert run_export(project="copy") == run_export(project="proj")


def test_conversations_go_out_as_their_messages(project, write_lines, run_import, run_export):
    row = rows(1, seed=4)[0]
    row["text"] = [
        {"role": "user", "content": "how do tides work?"},
        {"role": "assistant", "content": "the moon."},
        {"role": "user", "content": "and the sun?"},
    ]
    row["completion_b"] = [{"role": "assistant", "content": "it helps too."}]
    assert run_import(write_lines([row]), format="multipref").ok

    (exported,) = exported_rows(_multipref(project))

    assert (exported["text"], exported["completion_b"]) == (row["text"], row["completion_b"])
    assert exported["completion_a"] == row["completion_a"]  # plain text stays a string
    copy = ProjectFactory(slug="copy")
    written = write_lines([orjson.dumps(exported).decode()], name="exported.jsonl")
    assert run_import(written, project="copy", format="multipref").ok
    assert _multipref(copy) == _multipref(project)
    assert run_export(project="copy") == run_export(project="proj")


def test_labels_from_elsewhere_use_multipref_vocabulary(project):
    comparison = PlatformLabelFactory(
        comparison__project=project,
        comparison__external_id="platform",
        comparison__metadata={"text": "not a field", "topic": "geo"},
        annotator__username="alice",
        overall_choice="B",
        overall_strength="unknown",  # a binary label
        helpful_choice="tie",
        helpful_strength="unknown",
        confidence="fairly",
        reasons=["concise", "factual", "mine"],
        rationale="short and right",
        time_spent_s=12.5,
    ).comparison
    HumanLabelFactory(
        comparison=comparison,
        annotator_name="e1",
        annotator_type="expert",
        overall_choice="A",
        overall_strength="clearly",
    )

    (row,) = exported_rows(_multipref(project))

    # Metadata keys become row fields, except one that would overwrite the prompt's.
    assert (row["comparison_id"], row["text"], row["topic"]) == (
        "platform",
        "prompt platform",
        "geo",
    )
    (normal,) = row["normal_worker_annotations"]
    assert normal["evaluator"] == "alice"
    assert (normal["overall_pref"], normal["helpful_pref"], normal["truthful_pref"]) == (
        "B-is-slightly-better",  # the weaker claim: MultiPref has no plain "B"
        "Tie",
        None,
    )
    assert (normal["overall_confidence"], normal["helpful_confidence"]) == (
        "fairly-confident",
        None,
    )
    assert normal["helpful_checked_reasons"] == ["concise"]
    assert normal["truthful_checked_reasons"] == ["factual"]
    assert normal["overall_checked_reasons"] == ["mine"]
    assert normal["overall_own_reason"] == "short and right"
    assert normal["time_spent"] == 12.5 and normal["timestamp"].endswith("+00:00")
    (expert,) = row["expert_worker_annotations"]
    assert expert["overall_pref"] == "A-is-clearly-better"
    assert {a[k] for a in (normal, expert) for k in a if k.endswith("_pref") and a[k]} <= set(PREFS)


@pytest.mark.parametrize("flag", [("--margin",), ("--source", "human"), ("--with-confidence",)])
def test_pair_options_are_refused(project, flag):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=f"{flag[0]} applies to the"):
        call_command("export_dataset", "--project", project.slug, "--format", "multipref", *flag)
