"""The judge's project pages: the run panel (htmx polling), starting runs, the quality report."""

import pytest
from django.urls import reverse

from annotator.models import Comparison, Role
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
    for name, role in (("boss", Role.ADMIN), ("ann", Role.ANNOTATOR), ("watcher", Role.VIEWER)):
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


def test_annotators_get_no_judge_or_reward_model_page_and_cannot_start_runs(client, setup):
    _, users, _ = setup
    client.force_login(users["ann"])
    for url in (
        reverse("scoring:judge_panel", args=["p"]),
        reverse("scoring:judge_report", args=["p", "judge-x"]),
        reverse("scoring:judge_report_plot", args=["p", "judge-x"]),
        reverse("scoring:reward_runs", args=["p"]),
        reverse("scoring:reward_compare", args=["p"]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("scoring:judge_run_create", args=["p"])).status_code == 404
    assert not JudgeRun.objects.exists()


def test_viewers_see_the_panel_but_cannot_start_runs(client, setup):
    _, users, _ = setup
    client.force_login(users["watcher"])
    page = client.get(reverse("scoring:judge_panel", args=["p"])).content.decode()
    assert "Quality reports" in page and "Run judge" not in page
    assert client.get(reverse("scoring:reward_runs", args=["p"])).status_code == 200
    assert client.post(reverse("scoring:judge_run_create", args=["p"])).status_code == 404


def test_a_judge_named_like_a_hugging_face_model_has_its_panel_link_and_report(client, setup):
    project, users, _ = setup
    name = "meta-llama/Llama-3-70B-Instruct"
    for comparison in Comparison.objects.filter(project=project):
        LMLabelFactory(comparison=comparison, judge_name=name, judge_version="v1", p_a=0.8)
    client.force_login(users["boss"])

    panel = client.get(reverse("scoring:judge_panel", args=["p"]))
    report_url = reverse("scoring:judge_report", args=["p", name])
    report = client.get(report_url)
    plot = client.get(reverse("scoring:judge_report_plot", args=["p", name]))

    assert panel.status_code == 200 and f'href="{report_url}"' in panel.content.decode()
    assert report_url == "/p/p/judge/report/meta-llama/Llama-3-70B-Instruct/"
    assert report.status_code == 200 and f"{name} against the human majority" in report.text
    assert plot.status_code == 200 and plot.content[:4] == b"\x89PNG"


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
    client.force_login(users["watcher"])
    page = client.get(reverse("scoring:judge_report", args=["p", "judge-x"])).content.decode()
    assert "judge-x against the human majority" in page
    assert "0.667" in page  # 8 of 12 comparisons have an A majority; the judge always says A
    plot = client.get(reverse("scoring:judge_report_plot", args=["p", "judge-x"]))
    assert plot["Content-Type"] == "image/png"
    assert plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    missing = client.get(reverse("scoring:judge_report", args=["p", "nobody"]))
    assert missing.status_code == 404
