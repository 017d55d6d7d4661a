"""Scoring's REST endpoints, mounted under /api/v1/ (namespace `api`) by config/urls.py."""

from django.urls import path

from scoring.api.views import (
    JudgeRunDetail,
    JudgeRunLabels,
    JudgeRunList,
    JudgeRunResume,
    RewardRunCancel,
    RewardRunCheckpoint,
    RewardRunDetail,
    RewardRunList,
)

project = "projects/<slug:slug>/"
urlpatterns = [
    path(f"{project}judge-runs/", JudgeRunList.as_view(), name="judge_runs"),
    path(f"{project}judge-runs/<int:pk>/", JudgeRunDetail.as_view(), name="judge_run"),
    path(
        f"{project}judge-runs/<int:pk>/resume/", JudgeRunResume.as_view(), name="judge_run_resume"
    ),
    path(
        f"{project}judge-runs/<int:pk>/labels/", JudgeRunLabels.as_view(), name="judge_run_labels"
    ),
    path(f"{project}reward-runs/", RewardRunList.as_view(), name="reward_runs"),
    path(f"{project}reward-runs/<int:pk>/", RewardRunDetail.as_view(), name="reward_run"),
    path(
        f"{project}reward-runs/<int:pk>/cancel/",
        RewardRunCancel.as_view(),
        name="reward_run_cancel",
    ),
    path(
        f"{project}reward-runs/<int:pk>/checkpoint/",
        RewardRunCheckpoint.as_view(),
        name="reward_run_checkpoint",
    ),
]
