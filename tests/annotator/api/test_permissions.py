"""The permission matrix: every endpoint for anonymous, annotator, viewer, admin and an outsider.

Anonymous callers get 401; members of other projects get 404 (they cannot learn that a project
exists); annotators read comparisons but cannot export, see runs or change anything; viewers
read and export; admins do everything in their project.
"""

import io

import orjson
import pytest

from annotator.analytics.report import project_report_refresh
from annotator.dataio.jobs import import_job_create
from routing.live import policy_save, policy_state_set
from tests.annotator.api.helpers import ROLES, comparison_with_labels
from tests.factories import JudgeRunFactory, RewardModelRunFactory
from tests.routing.api.test_views import routing_run_with_decisions

READ, EXPORT, ADMIN = "read", "export", "admin"
P = "/api/v1/projects/proj"

# (name, method, url template, body, who may: read = any member, export = viewers and admins)
ENDPOINTS = [
    ("project", "get", f"{P}/", None, READ),
    ("project update", "patch", f"{P}/", {"name": "Renamed"}, ADMIN),
    ("comparisons", "get", f"{P}/comparisons/", None, READ),
    ("comparison", "get", P + "/comparisons/{comparison}/", None, READ),
    ("import", "post", f"{P}/import", "jsonl", ADMIN),
    ("import jobs", "get", f"{P}/import-jobs/", None, ADMIN),
    ("import job", "get", P + "/import-jobs/{job}/", None, ADMIN),
    ("export trl", "get", f"{P}/export.jsonl?format=trl", None, EXPORT),
    ("export full", "get", f"{P}/export.jsonl?format=full", None, EXPORT),
    ("dataset card", "get", f"{P}/dataset-card", None, EXPORT),
    ("analytics", "get", f"{P}/analytics", None, EXPORT),
    ("analytics refresh", "post", f"{P}/analytics/refresh", None, ADMIN),
    ("judge runs", "get", f"{P}/judge-runs/", None, EXPORT),
    ("judge run start", "post", f"{P}/judge-runs/", {"judge": "j1"}, ADMIN),
    ("judge run", "get", P + "/judge-runs/{judge_run}/", None, EXPORT),
    ("judge run resume", "post", P + "/judge-runs/{judge_run}/resume/", None, ADMIN),
    ("judge run labels", "get", P + "/judge-runs/{judge_run}/labels/", None, EXPORT),
    ("reward runs", "get", f"{P}/reward-runs/", None, EXPORT),
    ("reward run start", "post", f"{P}/reward-runs/", {"label_source": "human"}, ADMIN),
    ("reward run", "get", P + "/reward-runs/{reward_run}/", None, EXPORT),
    ("reward run cancel", "post", P + "/reward-runs/{reward_run}/cancel/", None, ADMIN),
    ("checkpoint", "get", P + "/reward-runs/{reward_run}/checkpoint/", None, EXPORT),
    ("routing runs", "get", f"{P}/routing-runs/", None, EXPORT),
    ("routing run start", "post", f"{P}/routing-runs/", {"strategy": "all_lm"}, ADMIN),
    ("routing features", "post", f"{P}/routing-features/", None, ADMIN),
    ("routing run", "get", P + "/routing-runs/{routing_run}/", None, EXPORT),
    ("routing decisions", "get", P + "/routing-runs/{routing_run}/decisions/", None, EXPORT),
    ("routing policy", "get", f"{P}/routing-policy", None, EXPORT),
    ("routing policy put", "put", f"{P}/routing-policy", {"budget": 12}, ADMIN),
    ("routing policy patch", "patch", f"{P}/routing-policy", {"batch_size": 7}, ADMIN),
    ("routing policy start", "post", f"{P}/routing-policy/start", None, ADMIN),
    ("routing policy pause", "post", f"{P}/routing-policy/pause", None, ADMIN),
]
ALLOWED = {
    READ: {"annotator", "viewer", "admin"},
    EXPORT: {"viewer", "admin"},
    ADMIN: {"admin"},
}


@pytest.fixture
def objects(team, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    comparison = comparison_with_labels(team.project)
    job = import_job_create(
        project=team.project, stream=io.BytesIO(b"{}\n"), source_name="queued.jsonl"
    )
    judge_run = JudgeRunFactory(project=team.project, judge__name="j1", status="failed")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "card.json").write_text("{}")
    reward_run = RewardModelRunFactory(
        project=team.project, status="succeeded", checkpoint_dir=str(checkpoint)
    )
    routing_run = routing_run_with_decisions(team.project)
    # Paused: start moves it, pause finds it there already (both answer 200).
    policy_save(project=team.project, budget=10)
    policy_state_set(project=team.project, action="start")
    policy_state_set(project=team.project, action="pause")
    project_report_refresh(project_id=team.project.pk, n_bootstrap=0)
    return {
        "routing_run": routing_run.pk,
        "comparison": comparison.pk,
        "job": job.pk,
        "judge_run": judge_run.pk,
        "reward_run": reward_run.pk,
    }


def _call(client, method, url, body):
    if body == "jsonl":
        line = {"external_id": "new", "prompt": "p", "response_a": "a", "response_b": "b"}
        return client.post(url, orjson.dumps(line), content_type="application/x-ndjson")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "url", "body", "need"),
    [pytest.param(*e[1:], id=e[0]) for e in ENDPOINTS],
)
def test_permission_matrix(clients, objects, role, method, url, body, need):
    response = _call(clients[role], method, url.format(**objects), body)

    if role == "anonymous":
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    elif role == "outsider":
        assert response.status_code == 404
    elif role in ALLOWED[need]:
        assert response.status_code in (200, 201, 202), response.content[:500]
    else:
        assert response.status_code == 403
    if response.status_code >= 400:
        error = response.json()
        assert set(error) >= {"detail", "errors"} and error["detail"]


def test_the_project_list_shows_only_the_callers_projects_with_their_role(clients):
    viewer = clients["viewer"].get("/api/v1/projects/").json()
    outsider = clients["outsider"].get("/api/v1/projects/").json()

    assert [(p["slug"], p["role"]) for p in viewer["results"]] == [("proj", "viewer")]
    assert [(p["slug"], p["role"]) for p in outsider["results"]] == [("other", "admin")]
    assert clients["anonymous"].get("/api/v1/projects/").status_code == 401


def test_router_priors_are_listed_to_any_signed_in_caller(clients):
    for role in ROLES:
        response = clients[role].get("/api/v1/router-priors/")
        assert response.status_code == (401 if role == "anonymous" else 200), role


def test_an_inactive_membership_is_treated_as_none(team, clients):
    team.project.memberships.filter(user=team.users["viewer"]).update(is_active=False)

    assert clients["viewer"].get(f"{P}/").status_code == 404
