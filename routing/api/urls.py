"""Routing's REST endpoints, mounted under /api/v1/ (namespace `api`) by config/urls.py."""

from django.urls import path

from routing.api.views import (
    RoutingDecisionList,
    RoutingFeatures,
    RoutingRunDetail,
    RoutingRunList,
)

project = "projects/<slug:slug>/"
urlpatterns = [
    path(f"{project}routing-runs/", RoutingRunList.as_view(), name="routing_runs"),
    path(f"{project}routing-runs/<int:pk>/", RoutingRunDetail.as_view(), name="routing_run"),
    path(f"{project}routing-features/", RoutingFeatures.as_view(), name="routing_features"),
    path(
        f"{project}routing-runs/<int:pk>/decisions/",
        RoutingDecisionList.as_view(),
        name="routing_decisions",
    ),
]
