import re

import pytest
from django.test import Client

from routing.models import RoutingPolicy
from routing.services import Budget, routing_run_create
from tests.annotator.api.helpers import client_for
from tests.factories import MembershipFactory, UserFactory
from tests.routing.conftest import comparison_record
from tests.routing.policy_helpers import policy_released, prior_stored, prior_tamper

API = "/api/v1/projects/proj"


def test_project_page_panel_shows_run_budget_and_expected_quality(
    client, routing_project, import_records
):
    client.force_login(MembershipFactory(project=routing_project, role="viewer").user)
    response = client.get("/p/proj/routing/", headers={"HX-Request": "true"})
    assert "Not routed yet" in response.content.decode()

    import_records([comparison_record(i) for i in range(10)])
    routing_run_create(
        project=routing_project, strategy="judge_confidence", budget=Budget.parse("0.3")
    )
    page = client.get("/p/proj/")
    assert b"/p/proj/routing/" in page.content
    html = client.get("/p/proj/routing/", headers={"HX-Request": "true"}).content.decode()
    assert "judge_confidence" in html
    assert "3 of 3 comparisons to humans" in html
    assert "0 of 9 collected" in html
    assert "not estimated" in html  # no comparison has both labels yet
    assert "<html" not in html  # the htmx partial
    assert "<html" in client.get("/p/proj/routing/").content.decode()


def test_panel_is_hidden_from_non_members(client, routing_project):
    client.force_login(UserFactory())
    assert client.get("/p/proj/routing/").status_code == 404


# --- the live policy section ---------------------------------------------------------------


def _figures_in(html: str) -> dict[str, str]:
    """The figures the panel shows, by the data-figure attribute of their elements."""
    return dict(re.findall(r'data-figure="([a-z_]+)">([^<]*)<', html))


@pytest.fixture
def members(routing_project):
    return {
        role: MembershipFactory(project=routing_project, role=role).user
        for role in ("admin", "viewer", "annotator")
    }


def test_panel_and_api_show_the_same_budget_figures(client, routing_project, members):
    policy_released(routing_project, done=[3, 1, 0, 5], budget=10)
    client.force_login(members["viewer"])

    html = client.get("/p/proj/routing/", headers={"HX-Request": "true"}).content.decode()
    api = client_for(members["viewer"]).get(f"{API}/routing-policy").json()

    shown = _figures_in(html)
    budget = [
        "budget",
        "budget_labels",
        "labels_per_item",
        "labels_spent",
        "labels_committed",
        "labels_left",
        "comparisons_released",
        "comparisons_complete",
        "comparisons_outstanding",
        "comparisons_left",
        "budget_comparisons",
        "rounds",
    ]
    assert {name: int(shown[name]) for name in budget} == {name: api[name] for name in budget}
    assert (shown["labels_spent"], shown["labels_left"], shown["state"]) == ("7", "18", "draft")
    assert 'hx-trigger="every 3s"' in html  # labels are still coming in: it polls
    assert "Save the policy" not in html  # viewers read


def test_annotators_see_no_policy(client, routing_project, members):
    policy_released(routing_project, done=[1], budget=10)
    client.force_login(members["annotator"])

    panel = client.get("/p/proj/routing/", headers={"HX-Request": "true"})

    # The routing page shows what the LM judged: annotators get none of it, as in the API.
    assert panel.status_code == 403 and "routing-policy" not in panel.content.decode()
    assert client.get("/p/proj/routing/").status_code == 403
    assert client.get("/p/proj/routing/policy/figures/").status_code == 403
    assert client.post("/p/proj/routing/policy/", {"budget": 5}).status_code == 404
    assert client.post("/p/proj/routing/policy/start/").status_code == 404
    assert RoutingPolicy.objects.get().state == "draft"


def test_viewers_cannot_change_the_policy(client, routing_project, members):
    policy_released(routing_project, done=[], budget=10)
    client.force_login(members["viewer"])

    assert client.get("/p/proj/routing/policy/figures/").status_code == 200
    assert client.post("/p/proj/routing/policy/", _form(budget=99)).status_code == 404
    assert client.post("/p/proj/routing/policy/start/").status_code == 404
    assert RoutingPolicy.objects.get().budget == 10


def _form(**fields) -> dict:
    values = {
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


def test_an_admin_creates_starts_and_pauses_the_policy(client, routing_project, members):
    client.force_login(members["admin"])
    htmx = {"HX-Request": "true"}
    html = client.get("/p/proj/routing/", headers=htmx).content.decode()
    assert "No live policy" in html and "Create a policy" in html

    html = client.post("/p/proj/routing/policy/", _form(seed_tag="subset"), headers=htmx)
    html = html.content.decode()
    policy = RoutingPolicy.objects.get()
    assert (policy.budget_labels, policy.seed_tag, policy.batch_size) == (60, "subset", 4)
    assert html.startswith('<section id="routing-policy"')  # the section, swapped in place
    assert _figures_in(html)["budget_labels"] == "60"

    html = client.post("/p/proj/routing/policy/start/", headers=htmx).content.decode()
    assert RoutingPolicy.objects.get().state == "running"
    assert ">Pause</button>" in html and 'hx-trigger="every 3s"' in html
    client.post("/p/proj/routing/policy/pause/", headers=htmx)
    assert RoutingPolicy.objects.get().state == "paused"

    # Without htmx: back to the routing page; a move the state does not allow says why.
    response = client.post("/p/proj/routing/policy/pause/")
    assert response.status_code == 200
    assert "cannot pause a policy that is paused" in response.content.decode()
    assert client.post("/p/proj/routing/policy/start/").status_code == 302


def test_a_budget_below_what_is_committed_is_refused_on_the_budget_field(
    client, routing_project, members
):
    policy_released(routing_project, done=[0, 0, 0], budget=10)  # 9 labels committed
    client.force_login(members["admin"])

    response = client.post(
        "/p/proj/routing/policy/",
        _form(budget=8, budget_unit="labels"),
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert re.search(
        r'id="policy-budget".*?field-error[^>]*>the budget \(8 labels\) is below what is already '
        r"committed \(9 labels\)",
        html,
        re.S,
    )
    assert RoutingPolicy.objects.get().budget == 10


def test_a_tampered_prior_cannot_be_chosen(client, routing_project, members):
    prior = prior_stored("general")
    prior_tamper(prior)
    client.force_login(members["admin"])

    html = client.post(
        "/p/proj/routing/policy/", _form(prior=prior.pk), headers={"HX-Request": "true"}
    ).content.decode()

    assert "does not match its recorded SHA-256" in html
    assert not RoutingPolicy.objects.exists()


def test_the_policy_forms_need_the_csrf_token(routing_project, members):
    client = Client(enforce_csrf_checks=True)
    client.force_login(members["admin"])
    html = client.get("/p/proj/routing/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in html

    assert client.post("/p/proj/routing/policy/", _form()).status_code == 403
    assert not RoutingPolicy.objects.exists()
