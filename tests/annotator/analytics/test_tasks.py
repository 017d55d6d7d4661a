import pytest

from annotator.models import ProjectAnalytics
from tests.conftest import wait_for
from tests.factories import ProjectFactory
from tests.import_records import planted_records


@pytest.mark.slow
def test_a_real_worker_recomputes_the_report_after_labels_change(
    settings, celery_worker_process, load_records
):
    settings.ANALYTICS_DEBOUNCE_SECONDS = 1
    project = ProjectFactory(slug="live")
    records = planted_records(90)
    # Two label writes in a row: the first queues a refresh, the second only bumps the version.
    load_records(project, records[:60])
    load_records(project, records[60:])
    row = ProjectAnalytics.objects.get(pk=project.pk)
    assert row.labels_version == 2 and row.refresh_queued

    def fresh():
        row = ProjectAnalytics.objects.get(pk=project.pk)
        return row if row.report is not None and not row.is_stale else None

    row = wait_for(fresh, timeout=90, what="the worker's analytics refresh")
    assert row.report_version == 2 and not row.refresh_queued
    assert row.report["n_comparisons"] == 90 and row.report["n_human_labels"] == 270

    # More labels later: stale at once, fresh again once the worker has run.
    late = [{**r, "external_id": f"late-{r['external_id']}"} for r in planted_records(30, seed=5)]
    load_records(project, late)
    assert ProjectAnalytics.objects.get(pk=project.pk).is_stale
    row = wait_for(
        lambda: (r := fresh()) and r.report["n_comparisons"] == 120 and r,
        timeout=90,
        what="the second refresh",
    )
    assert row.report_version == 3
