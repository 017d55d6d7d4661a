"""One point in time for an export read outside a transaction
(annotator/dataio/export/snapshot.py)."""

import pytest

from annotator.dataio.export import ExportOptions, dataset_export_chunks, dataset_export_lines
from annotator.models import Comparison
from tests.factories import ComparisonFactory, LMLabelFactory, ProjectFactory


@pytest.mark.django_db(transaction=True)
def test_an_export_outside_a_transaction_is_one_point_in_time(settings):
    """What is committed while an export streams (a new comparison, a new label on one not yet
    sent) is not in it: every batch is read in the snapshot of the export's start."""
    settings.EXPORT_READERS = 2
    project = ProjectFactory(slug="moving")
    comparisons = [
        ComparisonFactory(project=project, external_id=f"c{i:02}", lm_votes=[("j", "A")])
        for i in range(20)
    ]
    for export_format in ("full", "trl"):
        before = b"".join(dataset_export_lines(project=project, format=export_format, batch_size=2))
        lines = dataset_export_lines(project=project, format=export_format, batch_size=2)
        first = next(lines)
        late = ComparisonFactory(
            project=project, external_id=f"late-{export_format}", lm_votes=[("j", "B")]
        )
        LMLabelFactory(
            comparison=comparisons[-1],
            judge_name=f"late-{export_format}",
            choice="B",
            strength="clearly",
        )
        during = first + b"".join(lines)

        assert during == before, export_format
        after = b"".join(dataset_export_lines(project=project, format=export_format, batch_size=2))
        assert late.external_id.encode() in after and b"late-full" in after


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("export_format", ["parquet", "multipref"])
def test_the_other_formats_are_one_point_in_time_too(export_format):
    project = ProjectFactory(slug="moving")
    for i in range(10):
        ComparisonFactory(project=project, external_id=f"c{i:02}", human_votes=["A"])
    options = ExportOptions(row_group_size=2) if export_format == "parquet" else ExportOptions()

    def export():
        return dataset_export_chunks(
            project=project, format=export_format, options=options, batch_size=2
        )

    before = b"".join(export())
    chunks = export()
    first = next(chunks)
    ComparisonFactory(project=project, external_id="late", human_votes=["B"])
    during = first + b"".join(chunks)

    assert during == before
    assert b"late" not in during and b"late" in b"".join(export())


@pytest.mark.django_db(transaction=True)
def test_reader_threads_join_the_snapshot_of_the_exports_start():
    """The `full` export's readers on PostgreSQL each have a connection: they must all see the
    snapshot taken at the start, whenever they start, while the caller may write meanwhile."""
    import threading

    from django.db import connection

    from annotator.dataio.export.snapshot import in_snapshot_of, shared_snapshot

    if connection.vendor != "postgresql":
        pytest.skip("exported snapshots are PostgreSQL's")
    project = ProjectFactory(slug="snap")
    ComparisonFactory(project=project, external_id="before")
    seen = []

    def late_reader(snapshot):
        with in_snapshot_of(snapshot):
            seen.append(Comparison.objects.filter(project=project).count())

    def count():
        yield Comparison.objects.filter(project=project).count()

    with shared_snapshot(count) as (snapshot, counted):
        ComparisonFactory(
            project=project, external_id="after", lm_votes=[("j", "A")]
        )  # committed on the caller's connection
        reader = threading.Thread(target=late_reader, args=(snapshot,))
        reader.start()
        reader.join()
        counted = list(counted)

    assert (counted, seen) == ([1], [1])
    assert Comparison.objects.filter(project=project).count() == 2
