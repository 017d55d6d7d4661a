"""Keyset batches of the export (annotator/dataio/export/batches.py)."""

import orjson

from annotator.dataio.export import dataset_export_lines
from tests.factories import ComparisonFactory


def test_export_batches_never_leak_another_projects_labels(project, other_project):
    # Interleave the two projects' ids so each batch's id range spans the other project's rows.
    for i in range(7):
        for target in (project, other_project):
            ComparisonFactory(
                project=target,
                external_id=f"{target.slug}-{i}",
                human_votes=[("A", "clearly")],
                lm_votes=[("j", "B")],
            )

    chunks = list(dataset_export_lines(project=project, format="full", batch_size=2))

    assert len(chunks) == 4
    rows = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert [r["external_id"] for r in rows] == [f"proj-{i}" for i in range(7)]
    assert all(len(r["human_labels"]) == 1 and len(r["lm_labels"]) == 1 for r in rows)
