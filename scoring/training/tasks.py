"""Celery tasks of reward-model runs: thin, ids in, one service call, imported in the body
(the service imports these tasks to queue them, and the worker loads torch only when a task
needs it)."""

from celery import shared_task
from django.conf import settings


@shared_task(
    name="scoring.train_reward_model",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.REWARD_SOFT_TIME_LIMIT,
    time_limit=settings.REWARD_SOFT_TIME_LIMIT + 300,
)
def train_reward_model_task(run_id: int) -> str:
    from scoring.training.runs import reward_run_execute

    return reward_run_execute(run_id=run_id).status


@shared_task(name="scoring.reward_runs_reap")
def reward_runs_reap_task() -> int:
    from scoring.training.runs import reward_runs_reap

    return reward_runs_reap()
