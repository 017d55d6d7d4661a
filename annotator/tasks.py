"""Celery tasks of the annotator app: thin wrappers that take ids and call one service."""

from celery import shared_task

from annotator.analytics.tasks import analytics_refresh_task  # noqa: F401 (registers it)
from annotator.assignment import leases_reclaim
from annotator.dataio.jobs import import_job_run


@shared_task(
    name="annotator.import_job_run",
    acks_late=True,
    reject_on_worker_lost=True,
)
def import_job_run_task(job_id: int) -> str:
    return import_job_run(job_id=job_id).status


@shared_task(name="annotator.leases_reap")
def leases_reap_task() -> int:
    """Periodic: close expired leases everywhere (claims also do it, per project)."""
    return leases_reclaim()
