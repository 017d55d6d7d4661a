"""The Celery task that recomputes a project's cached analytics report (thin: one service)."""

from celery import shared_task

from annotator.models import Project


@shared_task(name="annotator.analytics_refresh", acks_late=True, reject_on_worker_lost=True)
def analytics_refresh_task(project_id: int) -> int | None:
    """Recompute the report; returns the labels version it was computed from (None when the
    project is gone). Idempotent: a second run stores the same report."""
    from annotator.analytics.report import project_report_refresh

    if not Project.objects.filter(pk=project_id).exists():
        return None
    return project_report_refresh(project_id=project_id).report_version
