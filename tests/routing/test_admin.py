"""The admin of live routing: policies saved through policy_save, state only through the start
and pause actions, machine-written fields and priors read-only."""

from django.urls import reverse

from routing.models import RouterPrior, RoutingPolicy
from tests.routing.policy_helpers import policy_released, prior_stored

CHANGELIST = reverse("admin:routing_routingpolicy_changelist")


def _form(project, **fields) -> dict:
    values = {
        "project": project.pk,
        "strategy": "learned",
        "budget": 20,
        "budget_unit": "comparisons",
        "seed_size": 5,
        "seed_tag": "",
        "batch_size": 4,
        "refit_every": 3,
        "prior": "",
        "prior_threshold": 10,
        "max_labels_per_item": 0,
    }
    return values | fields


def test_a_policy_is_added_through_the_service(admin_client, routing_project):
    response = admin_client.post(reverse("admin:routing_routingpolicy_add"), _form(routing_project))

    assert response.status_code == 302, response.content.decode()[-3000:]
    policy = RoutingPolicy.objects.get()
    assert (policy.budget_labels, policy.state, policy.batch_size) == (60, "draft", 4)


def test_a_change_below_what_is_committed_is_refused_on_the_budget(admin_client, routing_project):
    policy_released(routing_project, done=[0, 0, 0], budget=10)  # 9 labels committed
    url = reverse("admin:routing_routingpolicy_change", args=[routing_project.pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, _form(routing_project, budget=2))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["budget"] == [
        "the budget (6 labels) is below what is already committed (9 labels)"
    ]
    response = admin_client.post(url, _form(routing_project, budget=3, state="running"))
    assert response.status_code == 302
    policy = RoutingPolicy.objects.get()
    assert (policy.budget_labels, policy.state, policy.labels_committed) == (9, "draft", 9)


def test_start_and_pause_are_actions(admin_client, routing_project):
    policy_released(routing_project, done=[], budget=10)

    admin_client.post(
        CHANGELIST, {"action": "start", "_selected_action": [routing_project.pk]}, follow=True
    )
    assert RoutingPolicy.objects.get().state == "running"
    response = admin_client.post(
        CHANGELIST, {"action": "start", "_selected_action": [routing_project.pk]}, follow=True
    )
    assert "cannot start a policy that is running" in response.content.decode()
    admin_client.post(CHANGELIST, {"action": "pause", "_selected_action": [routing_project.pk]})
    assert RoutingPolicy.objects.get().state == "paused"
    assert admin_client.get(CHANGELIST, {"state__exact": "paused"}).status_code == 200


def test_priors_are_read_only(admin_client, routing_project):
    prior = prior_stored("general", slugs=("a", "b"))

    listed = admin_client.get(reverse("admin:routing_routerprior_changelist"))
    page = admin_client.get(reverse("admin:routing_routerprior_change", args=[prior.pk]))

    assert listed.status_code == page.status_code == 200
    assert "general" in listed.content.decode() and "0.7" in listed.content.decode()
    assert "View router prior" in page.content.decode()  # not "Change"
    assert prior.sha256 in page.content.decode()
    assert not page.context["adminform"].form.fields  # every field shown read-only
    assert admin_client.get(reverse("admin:routing_routerprior_add")).status_code == 403
    assert RouterPrior.objects.count() == 1
