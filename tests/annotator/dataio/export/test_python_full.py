"""The `full` export of conversations and empty responses: the lists of messages go out as lists,
text as strings, and export -> import -> export gives the same bytes, on both export paths
(python_full; postgres_full on PostgreSQL)."""

import pytest

from annotator.models import Comparison
from tests.annotator.dataio.export.helpers import exported_rows
from tests.factories import ProjectFactory
from tests.import_records import native

CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": 'And of Italy? "quoted" \\ é\n'},
]
TOOL_TURNS = [
    {"role": "assistant", "content": "Looking it up."},
    {"role": "tool", "content": "Rome", "name": "lookup", "tool_call_id": "call-1"},
    {"role": "assistant", "content": "Rome."},
]
RECORDS = [
    native("conv", prompt=CONVERSATION, response_a=TOOL_TURNS, response_b=""),
    native("blank", response_a=" \n\t", response_b=[]),
    native("one-turn", prompt=[{"role": "user", "content": "Hi"}], human_labels=[]),
    native("plain", human_labels=[{"annotator": "x", "overall": "A"}]),
]


@pytest.fixture(params=["python", "database"])
def export_path(request, monkeypatch):
    """Which path writes `full`: Python always, or the database's own (PostgreSQL's JSON)."""
    if request.param == "python":
        from annotator.dataio import export

        monkeypatch.setattr(export, "database_writes_json", lambda: False)
    return request.param


def test_conversations_and_empty_responses_round_trip_exactly(
    project, write_lines, run_import, run_export, export_path
):
    assert run_import(write_lines(RECORDS)).ok
    first = run_export(project="proj")

    ProjectFactory(slug="copy")
    assert run_import(write_lines([first.decode()], name="export.jsonl"), project="copy").ok
    second = run_export(project="copy")

    assert second == first
    rows = {row["external_id"]: row for row in exported_rows(first)}
    assert rows["conv"]["prompt"] == CONVERSATION
    assert rows["conv"]["response_a"] == TOOL_TURNS
    assert rows["conv"]["response_b"] == ""
    assert (rows["blank"]["response_a"], rows["blank"]["response_b"]) == (" \n\t", [])
    assert rows["one-turn"]["prompt"] == [{"role": "user", "content": "Hi"}]
    assert rows["plain"]["prompt"] == "Question plain?"
    for external_id in rows:
        original, copy = Comparison.objects.filter(external_id=external_id).order_by("project")
        assert original.content_hash == copy.content_hash


def test_a_reimport_of_the_export_into_the_same_project_changes_nothing(
    project, write_lines, run_import, run_export, export_path
):
    assert run_import(write_lines(RECORDS)).ok
    first = run_export(project="proj")

    again = run_import(write_lines([first.decode()], name="export.jsonl"))

    assert again.ok, again.stderr
    assert again.summary["skipped"] == len(RECORDS) and again.summary["created"] == 0
