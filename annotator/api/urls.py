"""Annotator's REST endpoints, mounted under /api/v1/ (namespace `api`) by config/urls.py."""

from django.urls import path

from annotator.api import views

project = "projects/<slug:slug>/"

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="projects"),
    path(project, views.ProjectDetail.as_view(), name="project"),
    path(f"{project}comparisons/", views.ComparisonList.as_view(), name="comparisons"),
    path(f"{project}comparisons/<int:pk>/", views.ComparisonDetail.as_view(), name="comparison"),
    path(f"{project}import", views.ProjectImport.as_view(), name="import"),
    path(f"{project}import-jobs/", views.ImportJobList.as_view(), name="import_jobs"),
    path(f"{project}import-jobs/<int:pk>/", views.ImportJobDetail.as_view(), name="import_job"),
    path(f"{project}export.jsonl", views.ProjectExport.as_view(), name="export"),
    # The same export under a name that fits every format (parquet, a zip of the hf dataset).
    path(f"{project}export", views.ProjectExport.as_view(), name="export_any"),
    path(f"{project}dataset-card", views.DatasetCard.as_view(), name="dataset_card"),
    path(f"{project}analytics", views.ProjectAnalyticsReport.as_view(), name="analytics"),
    path(
        f"{project}analytics/refresh",
        views.ProjectAnalyticsRefresh.as_view(),
        name="analytics_refresh",
    ),
]
