"""The analytics report over the API: the cached report for viewers and admins, a refresh for
admins (annotator/api/views.py ProjectAnalyticsReport / ProjectAnalyticsRefresh)."""

from annotator.analytics.report import analytics_labels_changed, project_report_refresh
from tests.import_records import planted_records

URL = "/api/v1/projects/proj/analytics"


def test_no_report_yet_is_204(team, clients):
    assert clients["viewer"].get(URL).status_code == 204


def test_the_cached_report_and_its_staleness(team, clients, load_records):
    load_records(team.project, planted_records(60))
    project_report_refresh(project_id=team.project.pk, n_bootstrap=20)

    body = clients["viewer"].get(URL).json()
    assert body["stale"] is False and body["error"] == ""
    report = body["report"]
    assert report["agreement"]  # human-human agreement per aspect
    assert [judge["judge"] for judge in report["judges"]] == ["judge-1"]

    analytics_labels_changed(project_id=team.project.pk)  # what every label write does
    assert clients["viewer"].get(URL).json()["stale"] is True


def test_only_admins_queue_a_refresh(team, clients):
    assert clients["viewer"].post(f"{URL}/refresh").status_code == 403
    response = clients["admin"].post(f"{URL}/refresh")
    assert response.status_code == 202 and response.json()["detail"]
