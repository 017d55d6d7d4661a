from django.urls import path

from scoring import views

app_name = "scoring"

# Judge names are often Hugging Face model ids with a slash (meta-llama/Llama-3-70B-Instruct):
# `path` takes them whole.
urlpatterns = [
    path("p/<slug:slug>/judge/", views.judge_panel, name="judge_panel"),
    path("p/<slug:slug>/judge/runs/", views.judge_run_create, name="judge_run_create"),
    path(
        "p/<slug:slug>/judge/report/<path:judge_name>/",
        views.judge_report_page,
        name="judge_report",
    ),
    path(
        "p/<slug:slug>/judge/report/<path:judge_name>/reliability.png",
        views.judge_report_plot,
        name="judge_report_plot",
    ),
    path("p/<slug:slug>/reward-models/", views.reward_runs, name="reward_runs"),
    path("p/<slug:slug>/reward-models/start/", views.reward_run_create, name="reward_run_create"),
    path("p/<slug:slug>/reward-models/compare/", views.reward_runs_compare, name="reward_compare"),
    path("p/<slug:slug>/reward-models/<int:run_id>/", views.reward_run_detail, name="reward_run"),
    path(
        "p/<slug:slug>/reward-models/<int:run_id>/stop/",
        views.reward_run_stop,
        name="reward_run_stop",
    ),
    path(
        "p/<slug:slug>/reward-models/<int:run_id>/curves.png",
        views.reward_run_curves,
        name="reward_run_curves",
    ),
]
