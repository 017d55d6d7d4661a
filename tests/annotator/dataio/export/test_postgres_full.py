"""The `full` JSON written by PostgreSQL (annotator/dataio/export/postgres_full.py) has the bytes
the Python path writes."""

import pytest

from annotator.dataio.export import dataset_export_lines
from annotator.models import Comparison
from tests.annotator.dataio.export.helpers import awkward_project, exported_rows
from tests.factories import ComparisonFactory


def _python_full(monkeypatch, project, **options) -> bytes:
    from annotator.dataio import export

    with monkeypatch.context() as patch:
        patch.setattr(export, "database_writes_json", lambda: False)
        return b"".join(dataset_export_lines(project=project, format="full", **options))


def test_full_export_written_by_postgresql_has_the_bytes_python_writes(project, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL writes the `full` JSON only on PostgreSQL")
    awkward_project(project)
    for i in range(7):
        ComparisonFactory(
            project=project,
            external_id=f"more-{i}",
            human_votes=[("B", "slightly")] * (i % 3),
            lm_votes=[("j", "A")],
        )
    narrowed = Comparison.objects.filter(external_id__startswith="more-").exclude(
        external_id="more-3"
    )

    for options in [
        {"batch_size": 2},
        {"batch_size": 1000},
        {"batch_size": 3, "comparisons": narrowed},
    ]:
        written = b"".join(dataset_export_lines(project=project, format="full", **options))
        assert written == _python_full(monkeypatch, project, **options), options
    assert len(exported_rows(written)) == 6


def test_the_json_postgresql_writes_has_the_python_paths_keys_in_order():
    from annotator.dataio.export import postgres_full, python_full

    def keys(fields):
        return [key for key, _, _ in fields]

    assert keys(postgres_full.COMPARISON_FIELDS) == list(python_full.COMPARISON_COLUMNS)
    assert keys(postgres_full.HUMAN_LABEL_FIELDS) == list(python_full.HUMAN_LABEL_COLUMNS)
    assert keys(postgres_full.LM_LABEL_FIELDS) == list(python_full.LM_LABEL_COLUMNS)


def test_conversations_written_by_postgresql_have_the_bytes_python_writes(
    project, monkeypatch, write_lines, run_import
):
    from django.db import connection

    from tests.annotator.dataio.export.test_python_full import RECORDS

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL writes the `full` JSON only on PostgreSQL")
    assert run_import(write_lines(RECORDS)).ok

    written = b"".join(dataset_export_lines(project=project, format="full"))

    assert written == _python_full(monkeypatch, project)
    rows = {row["external_id"]: row for row in exported_rows(written)}
    assert isinstance(rows["conv"]["prompt"], list) and rows["blank"]["response_b"] == []
