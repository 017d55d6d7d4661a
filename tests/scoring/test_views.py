"""The judge's project pages: the run panel (htmx polling), starting runs, the quality report."""

import pytest
from django.urls import reverse

from annotator.models import Role
from scoring.models import JudgeRun
from tests.factories import (
    ComparisonFactory,
    HumanLabelFactory,
    JudgeFactory,
    LMLabelFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def setup(db):
    project = ProjectFactory(slug="p", name="P")
    users = {}
    for name, role in (("boss", Role.ADMIN), ("ann", Role.ANNOTATOR)):
        users[name] = MembershipFactory(project=project, user__username=name, role=role).user
    users["outsider"] = UserFactory(username="outsider")
    judge = JudgeFactory(name="judge-x")
    for i in range(12):
        comparison = ComparisonFactory(project=project, external_id=f"c{i}")
        HumanLabelFactory(
            comparison=comparison,
            annotator_name="h",
            overall_choice="A" if i % 3 else "B",
            overall_strength="unknown",
        )
        LMLabelFactory(
            comparison=comparison,
            judge_name="judge-x",
            judge_version=judge.version,
            p_a=0.8,
            position_consistent=i % 2 == 0,
        )
    return project, users, judge


def test_admins_start_a_run_and_the_panel_polls_while_it_is_active(client, setup):
    _, users, judge = setup
    client.force_login(users["boss"])
    response = client.post(
        reverse("scoring:judge_run_create", args=["p"]), {"judge": "judge-x"}, **HTMX
    )
    page = response.content.decode()
    run = JudgeRun.objects.get()
    assert (run.judge, run.status) == (judge, "queued")
    assert 'hx-trigger="every 2s"' in page and f"#{run.pk}" in page

    again = client.post(
        reverse("scoring:judge_run_create", args=["p"]), {"judge": "judge-x"}, **HTMX
    )
    assert "already has an active run" in again.content.decode()
    JudgeRun.objects.update(status="succeeded", done=12, total=12)
    idle = client.get(reverse("scoring:judge_panel", args=["p"]), **HTMX).content.decode()
    assert "every 2s" not in idle and "12/12" in idle


def test_annotators_see_the_panel_but_cannot_start_runs(client, setup):
    _, users, _ = setup
    client.force_login(users["ann"])
    page = client.get(reverse("scoring:judge_panel", args=["p"])).content.decode()
    assert "Run judge" not in page
    assert client.post(reverse("scoring:judge_run_create", args=["p"])).status_code == 404
    assert not JudgeRun.objects.exists()


def test_outsiders_get_nothing(client, setup):
    _, users, _ = setup
    client.force_login(users["outsider"])
    for url in (
        reverse("scoring:judge_panel", args=["p"]),
        reverse("scoring:judge_report", args=["p", "judge-x"]),
        reverse("scoring:judge_report_plot", args=["p", "judge-x"]),
    ):
        assert client.get(url).status_code == 404


def test_the_report_page_and_its_plot(client, setup):
    _, users, _ = setup
    client.force_login(users["ann"])
    page = client.get(reverse("scoring:judge_report", args=["p", "judge-x"])).content.decode()
    assert "judge-x against the human majority" in page
    assert "0.667" in page  # 8 of 12 comparisons have an A majority; the judge always says A
    plot = client.get(reverse("scoring:judge_report_plot", args=["p", "judge-x"]))
    assert plot["Content-Type"] == "image/png"
    assert plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    missing = client.get(reverse("scoring:judge_report", args=["p", "nobody"]))
    assert missing.status_code == 404
