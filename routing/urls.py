from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("p/<slug:slug>/routing/", views.routing_panel, name="panel"),
    path(
        "p/<slug:slug>/routing/policy/figures/",
        views.policy_figures_panel,
        name="policy_figures",
    ),
    path("p/<slug:slug>/routing/policy/", views.policy_edit, name="policy_edit"),
    path(
        "p/<slug:slug>/routing/policy/start/",
        views.policy_state,
        {"action": "start"},
        name="policy_start",
    ),
    path(
        "p/<slug:slug>/routing/policy/pause/",
        views.policy_state,
        {"action": "pause"},
        name="policy_pause",
    ),
]
