from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("p/<slug:slug>/judge/", views.judge_panel, name="judge_panel"),
    path("p/<slug:slug>/judge/runs/", views.judge_run_create, name="judge_run_create"),
    path(
        "p/<slug:slug>/judge/report/<str:judge_name>/",
        views.judge_report_page,
        name="judge_report",
    ),
    path(
        "p/<slug:slug>/judge/report/<str:judge_name>/reliability.png",
        views.judge_report_plot,
        name="judge_report_plot",
    ),
]
