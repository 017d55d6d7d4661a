"""Celery tasks of the annotator app: thin wrappers that take ids and call one service, which
they import in their body (the services import these tasks to queue them)."""

from celery import shared_task

from annotator.analytics.tasks import analytics_refresh_task  # noqa: F401 (registers it)


@shared_task(
    name="annotator.import_job_run",
    acks_late=True,
    reject_on_worker_lost=True,
)
def import_job_run_task(job_id: int) -> str:
    from annotator.dataio.jobs import import_job_run

    return import_job_run(job_id=job_id).status


@shared_task(name="annotator.leases_reap")
def leases_reap_task() -> int:
    """Periodic: close expired leases everywhere (claims also do it, per project)."""
    from annotator.assignment import leases_reclaim

    return leases_reclaim()
