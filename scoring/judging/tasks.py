"""Celery tasks of judge runs: thin, ids in, one service call, imported in the body (the
service imports these tasks to queue them, and the worker loads torch only when a task needs
it)."""

from celery import shared_task
from django.conf import settings


@shared_task(
    name="scoring.judge_project",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.JUDGE_SOFT_TIME_LIMIT,
    time_limit=settings.JUDGE_SOFT_TIME_LIMIT + 300,
)
def judge_project_task(run_id: int) -> str:
    from scoring.judging.runs import judge_run_execute

    return judge_run_execute(run_id=run_id).status


@shared_task(name="scoring.judge_runs_reap")
def judge_runs_reap_task() -> int:
    from scoring.judging.runs import judge_runs_reap

    return judge_runs_reap()
