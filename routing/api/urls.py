"""Routing's REST endpoints, mounted under /api/v1/ (namespace `api`) by config/urls.py."""

from django.urls import path

from routing.api.views import (
    RouterPriorList,
    RoutingDecisionList,
    RoutingFeatures,
    RoutingPolicyDetail,
    RoutingPolicyPause,
    RoutingPolicyStart,
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
    path(f"{project}routing-policy", RoutingPolicyDetail.as_view(), name="routing_policy"),
    path(
        f"{project}routing-policy/start",
        RoutingPolicyStart.as_view(),
        name="routing_policy_start",
    ),
    path(
        f"{project}routing-policy/pause",
        RoutingPolicyPause.as_view(),
        name="routing_policy_pause",
    ),
    path("router-priors/", RouterPriorList.as_view(), name="router_priors"),
]
