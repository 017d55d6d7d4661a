"""Routing runs over the REST API: list, detail, decisions with reasons and a route filter.
(Who may call them: tests/annotator/api/test_permissions.py.)"""

import pytest

from routing.api.views import PolicyFiguresSerializer
from routing.models import RoutingPolicy, RoutingRun
from routing.selectors import policy_figures
from tests.annotator.api.helpers import client_for, comparison_with_labels, team_create
from tests.factories import LMLabelFactory, RoutingDecisionFactory, RoutingRunFactory
from tests.routing.policy_helpers import policy_released, prior_stored, prior_tamper

P = "/api/v1/projects/proj"


def routing_run_with_decisions(project) -> RoutingRun:
    run = RoutingRunFactory(
        project=project,
        budget_count=1,
        total=2,
        human=1,
        lm=1,
        human_label_cost=3,
        expected_label_accuracy=0.8,
    )
    RoutingDecisionFactory(
        run=run,
        comparison=comparison_with_labels(project, "r1"),
        route="human",
        score=0.9,
        reason="least confident LM label",
    )
    RoutingDecisionFactory(
        run=run,
        comparison=comparison_with_labels(project, "r2"),
        route="lm",
        score=0.1,
        reason="confident LM label",
    )
    return run


@pytest.fixture
def run_and_client(db):
    team = team_create()
    return routing_run_with_decisions(team.project), client_for(team.users["viewer"])


def test_routing_runs_list_and_detail(run_and_client):
    run, viewer = run_and_client

    listed = viewer.get(f"{P}/routing-runs/").json()["results"]
    detail = viewer.get(f"{P}/routing-runs/{run.pk}/").json()

    assert [r["id"] for r in listed] == [run.pk]
    assert (detail["strategy"], detail["budget"], detail["human"], detail["lm"]) == (
        "judge_confidence",
        1,
        1,
        1,
    )
    assert detail["expected_label_accuracy"] == 0.8


def test_a_runs_decisions_with_reasons_and_a_route_filter(run_and_client):
    run, viewer = run_and_client

    decisions = viewer.get(f"{P}/routing-runs/{run.pk}/decisions/").json()["results"]
    human = viewer.get(f"{P}/routing-runs/{run.pk}/decisions/?route=human").json()["results"]

    assert [(d["external_id"], d["route"], d["reason"]) for d in decisions] == [
        ("r1", "human", "least confident LM label"),
        ("r2", "lm", "confident LM label"),
    ]
    assert [d["external_id"] for d in human] == ["r1"]


def test_the_dataset_card_names_the_latest_routing_run(run_and_client):
    run, viewer = run_and_client

    card = viewer.get(f"{P}/dataset-card").content.decode()

    assert f"| routing run | #{run.pk}, strategy judge_confidence, budget 1" in card


def _lm_only(project, n: int) -> None:
    """Comparisons with only an LM label each, half of them order-inconsistent."""
    for i in range(n):
        LMLabelFactory(
            comparison__project=project,
            comparison__external_id=f"lm{i}",
            judge_name="judge-x",
            judge_version="v1",
            p_a=0.5 + i / (2 * n),
            position_consistent=i % 2 == 0,
        )


def test_admins_route_a_project_under_a_budget(db):
    team = team_create()
    _lm_only(team.project, 6)
    admin = client_for(team.users["admin"])

    response = admin.post(
        f"{P}/routing-runs/", {"strategy": "judge_confidence", "budget_count": 2}, format="json"
    )

    assert response.status_code == 201, response.content
    run = response.json()
    assert (run["strategy"], run["budget"], run["human"], run["lm"], run["total"]) == (
        "judge_confidence",
        2,
        2,
        4,
        6,
    )
    decisions = admin.get(f"{P}/routing-runs/{run['id']}/decisions/?route=human").json()
    # The least confident LM labels go to humans: order-inconsistent ones first.
    assert {d["external_id"] for d in decisions["results"]} == {"lm1", "lm3"}
    assert team.project.comparisons.filter(route="human").count() == 2


def test_bad_routing_requests_name_the_field(db):
    team = team_create()
    _lm_only(team.project, 2)
    admin = client_for(team.users["admin"])

    unknown = admin.post(f"{P}/routing-runs/", {"strategy": "coin"}, format="json")
    both = admin.post(
        f"{P}/routing-runs/",
        {"strategy": "random", "budget_count": 1, "budget_fraction": 0.5},
        format="json",
    )
    none = admin.post(f"{P}/routing-runs/", {"strategy": "random"}, format="json")
    typo = admin.post(f"{P}/routing-runs/", {"strategy": "random", "budget": 1}, format="json")

    assert unknown.json()["errors"][0]["field"] == "strategy"
    assert typo.status_code == 400 and typo.json()["errors"][0]["field"] == "budget"
    assert both.json()["errors"][0]["field"] == "budget_count"
    assert none.status_code == 400 and "needs a budget" in none.json()["errors"][0]["problem"]
    assert not RoutingRun.objects.exists()


def test_queueing_the_text_features(db):
    team = team_create()

    response = client_for(team.users["admin"]).post(f"{P}/routing-features/")

    assert response.status_code == 202 and response.json() == {"status": "queued"}


# --- the live routing policy ---------------------------------------------------------------


@pytest.fixture
def team(db):
    return team_create()


def test_put_creates_the_policy_and_patch_changes_it(team):
    admin = client_for(team.users["admin"])

    created = admin.put(f"{P}/routing-policy", {"budget": 40, "batch_size": 5}, format="json")
    changed = admin.patch(
        f"{P}/routing-policy", {"budget_unit": "labels", "seed_tag": "category"}, format="json"
    )
    again = admin.put(f"{P}/routing-policy", {"strategy": "random"}, format="json")

    assert created.status_code == 201, created.content
    assert (created.json()["budget_labels"], created.json()["batch_size"]) == (120, 5)
    assert changed.status_code == 200
    assert (changed.json()["budget_labels"], changed.json()["seed_tag"]) == (40, "category")
    assert again.status_code == 200 and again.json()["strategy"] == "random"
    got = client_for(team.users["viewer"]).get(f"{P}/routing-policy").json()
    assert got == again.json() == policy_figures(team.project).as_dict()


def test_the_body_is_the_documented_figures(team):
    policy_released(team.project, done=[1])

    body = client_for(team.users["viewer"]).get(f"{P}/routing-policy").json()

    assert set(body) == set(PolicyFiguresSerializer().fields)


def test_a_project_without_a_policy(team):
    admin = client_for(team.users["admin"])

    assert admin.get(f"{P}/routing-policy").status_code == 404
    assert admin.patch(f"{P}/routing-policy", {"budget": 5}, format="json").status_code == 404
    assert admin.post(f"{P}/routing-policy/start").status_code == 404
    missing = admin.put(f"{P}/routing-policy", {"batch_size": 5}, format="json")
    assert missing.status_code == 400
    assert missing.json()["errors"] == [
        {"line": None, "field": "budget", "problem": "a new policy needs a budget"}
    ]


def test_a_budget_below_what_is_committed_is_refused_naming_the_field(team):
    policy_released(team.project, done=[0, 0], budget=10)  # 3 labels each: 6 committed

    response = client_for(team.users["admin"]).patch(
        f"{P}/routing-policy", {"budget": 1}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "line": None,
            "field": "budget",
            "problem": "the budget (3 labels) is below what is already committed (6 labels)",
        }
    ]
    assert RoutingPolicy.objects.get().budget == 10


def test_bad_settings_name_their_field(team):
    admin = client_for(team.users["admin"])

    for body, field in [
        ({"budget": 5, "strategy": "coin"}, "strategy"),
        ({"budget": 5, "batch_size": 0}, "batch_size"),
        ({"budget": -1}, "budget"),
        ({"budget": 5, "prior": "nope"}, "prior"),
    ]:
        response = admin.put(f"{P}/routing-policy", body, format="json")
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == [field], body
    assert not RoutingPolicy.objects.exists()


def test_a_prior_by_name_and_a_tampered_one_refused(team):
    admin = client_for(team.users["admin"])
    prior = prior_stored("general")

    chosen = admin.put(f"{P}/routing-policy", {"budget": 5, "prior": "general"}, format="json")
    assert chosen.json()["prior"] == f"general@{prior.version}"
    cleared = admin.patch(f"{P}/routing-policy", {"prior": None}, format="json")
    assert cleared.json()["prior"] is None

    prior_tamper(prior)
    refused = admin.patch(f"{P}/routing-policy", {"prior": "general"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "prior"
    assert "does not match its recorded SHA-256" in refused.json()["errors"][0]["problem"]


def test_start_and_pause(team):
    admin = client_for(team.users["admin"])
    policy_released(team.project, done=[], budget=10)

    assert admin.post(f"{P}/routing-policy/start").json()["state"] == "running"
    assert admin.post(f"{P}/routing-policy/start").json()["state"] == "running"  # a retry
    assert admin.post(f"{P}/routing-policy/pause").json()["state"] == "paused"
    assert admin.post(f"{P}/routing-policy/pause").status_code == 200

    RoutingPolicy.objects.update(state="spent")
    spent = admin.post(f"{P}/routing-policy/start")
    assert spent.status_code == 409
    assert spent.json()["detail"] == "cannot start a policy that is spent"


def test_router_priors_name_only_the_callers_projects(team):
    prior = prior_stored("general", slugs=("proj", "other"))

    viewer = client_for(team.users["viewer"]).get("/api/v1/router-priors/").json()["results"]
    outsider = client_for(team.users["outsider"]).get("/api/v1/router-priors/").json()["results"]

    assert [(p["name"], p["version"]) for p in viewer] == [("general", prior.version)]
    assert (viewer[0]["source_projects"], viewer[0]["source_project_count"]) == (["proj"], 2)
    assert outsider[0]["source_projects"] == ["other"]
    assert viewer[0]["metrics"] == {"auc": 0.7, "n": 10} and "model" not in viewer[0]
