"""The scoring app's Celery tasks, where Celery's autodiscovery looks for them: judge runs
(scoring.judging.tasks) and reward-model runs (scoring.training.tasks)."""

from scoring.judging.tasks import judge_project_task, judge_runs_reap_task
from scoring.training.tasks import reward_runs_reap_task, train_reward_model_task

__all__ = [
    "judge_project_task",
    "judge_runs_reap_task",
    "reward_runs_reap_task",
    "train_reward_model_task",
]
