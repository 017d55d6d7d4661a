"""Routing runs over the REST API: list, detail, decisions with reasons and a route filter.
(Who may call them: tests/annotator/api/test_permissions.py.)"""

import pytest

from routing.models import RoutingRun
from tests.annotator.api.helpers import client_for, comparison_with_labels, team_create
from tests.factories import LMLabelFactory, RoutingDecisionFactory, RoutingRunFactory

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

    assert unknown.json()["errors"][0]["field"] == "strategy"
    assert both.json()["errors"][0]["field"] == "budget_count"
    assert none.status_code == 400 and "needs a budget" in none.json()["errors"][0]["problem"]
    assert not RoutingRun.objects.exists()


def test_queueing_the_text_features(db):
    team = team_create()

    response = client_for(team.users["admin"]).post(f"{P}/routing-features/")

    assert response.status_code == 202 and response.json() == {"status": "queued"}
