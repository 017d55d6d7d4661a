from django.urls import include, path

from annotator import views

app_name = "annotator"

urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/", views.project_detail, name="project"),
    path("p/<slug:slug>/annotate/", views.annotate, name="annotate"),
    path("p/<slug:slug>/leases/<int:lease_id>/label/", views.submit, name="submit"),
    path("p/<slug:slug>/leases/<int:lease_id>/skip/", views.skip, name="skip"),
    path("p/<slug:slug>/annotators/", views.annotators, name="annotators"),
    path(
        "p/<slug:slug>/annotators/<int:user_id>/deactivate/",
        views.deactivate,
        name="deactivate",
    ),
    path("", include("annotator.analytics.urls")),
]
