"""Judge runs and reward-model runs over the REST API: start, status, list, labels, resume,
cancel, checkpoint download. (Who may call what: tests/annotator/api/test_permissions.py.)"""

import io
import zipfile

import pytest

from annotator.models import Comparison
from scoring.judging.runs import judge_run_execute
from scoring.models import JudgeRun, RewardModelRun
from tests.annotator.api.helpers import client_for, team_create
from tests.factories import (
    ComparisonFactory,
    JudgeFactory,
    JudgeRunFactory,
    RewardModelRunFactory,
)
from tests.scoring.judging.helpers import PrefersGood, good_answer_comparisons

P = "/api/v1/projects/proj"


@pytest.fixture
def team(db):
    team = team_create()
    good_answer_comparisons(team.project, 4)
    team.judge = JudgeFactory(name="fake-judge")
    return team


@pytest.fixture
def admin(team):
    return client_for(team.users["admin"])


@pytest.fixture
def viewer(team):
    return client_for(team.users["viewer"])


def test_a_judge_run_starts_runs_and_reports_its_labels(team, admin, viewer):
    started = admin.post(f"{P}/judge-runs/", {"judge": "fake-judge"}, format="json")

    assert started.status_code == 201, started.content
    run = started.json()
    assert (run["judge"], run["status"], run["judge_version"]) == (
        "fake-judge",
        "queued",
        team.judge.version,
    )
    again = admin.post(f"{P}/judge-runs/", {"judge": "fake-judge"}, format="json")
    assert again.status_code == 409 and "already has an active run" in again.json()["detail"]

    judge_run_execute(run_id=run["id"], backend=PrefersGood())  # what the gpu worker does

    status = viewer.get(f"{P}/judge-runs/{run['id']}/").json()
    assert (status["status"], status["done"], status["total"]) == ("succeeded", 4, 4)
    labels = viewer.get(f"{P}/judge-runs/{run['id']}/labels/").json()["results"]
    assert [(x["external_id"], x["overall"][0]) for x in labels] == [
        ("c0", "A"),
        ("c1", "B"),
        ("c2", "A"),
        ("c3", "B"),
    ]
    assert all(0 <= x["p_a"] <= 1 and x["judge"] == "fake-judge" for x in labels)
    listed = viewer.get(f"{P}/judge-runs/").json()["results"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_a_judge_run_on_a_subset_with_a_limit(team, admin):
    ids = list(Comparison.objects.filter(project=team.project).values_list("id", flat=True))

    started = admin.post(
        f"{P}/judge-runs/",
        {"judge": "fake-judge", "comparison_ids": ids[:3], "limit": 2},
        format="json",
    )
    judge_run_execute(run_id=started.json()["id"], backend=PrefersGood())

    assert admin.get(f"{P}/judge-runs/{started.json()['id']}/").json()["total"] == 2


def test_bad_judge_run_requests_name_the_field(team, admin):
    elsewhere = ComparisonFactory(project=team.other)

    unknown = admin.post(f"{P}/judge-runs/", {"judge": "nobody"}, format="json")
    foreign = admin.post(
        f"{P}/judge-runs/", {"judge": "fake-judge", "comparison_ids": [elsewhere.pk]}, format="json"
    )
    limit = admin.post(f"{P}/judge-runs/", {"judge": "fake-judge", "limit": 0}, format="json")

    assert [r.status_code for r in (unknown, foreign, limit)] == [400, 400, 400]
    assert unknown.json()["errors"][0]["field"] == "judge"
    assert foreign.json()["errors"][0]["field"] == "comparison_ids"
    assert limit.json()["errors"][0]["field"] == "limit"
    assert not JudgeRun.objects.exists()


def test_only_a_failed_judge_run_resumes(team, admin):
    run = JudgeRunFactory(project=team.project, judge=team.judge, status="failed")

    resumed = admin.post(f"{P}/judge-runs/{run.pk}/resume/")
    twice = admin.post(f"{P}/judge-runs/{run.pk}/resume/")

    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert twice.status_code == 409


def test_a_reward_run_starts_once_and_cancels(team, admin, viewer):
    started = admin.post(
        f"{P}/reward-runs/",
        {"label_source": "human", "epochs": 2, "lr": 1e-5, "eval_project": "proj"},
        format="json",
    )

    assert started.status_code == 201, started.content
    run = started.json()
    assert (run["status"], run["epochs"], run["lr"], run["eval_project"]) == (
        "queued",
        2,
        1e-5,
        "proj",
    )
    second = admin.post(f"{P}/reward-runs/", {}, format="json")
    assert second.status_code == 409
    cancelled = admin.post(f"{P}/reward-runs/{run['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    assert viewer.get(f"{P}/reward-runs/{run['id']}/").json()["metrics"] == []
    assert [r["id"] for r in viewer.get(f"{P}/reward-runs/").json()["results"]] == [run["id"]]


def test_bad_reward_run_requests_name_the_field(team, admin):
    bad = admin.post(
        f"{P}/reward-runs/",
        {"label_source": "crowd", "scheduler": "step", "eval_project": "other"},
        format="json",
    )

    assert bad.status_code == 400
    # `other` exists but the caller is not a member: it reads as unknown.
    assert {e["field"] for e in bad.json()["errors"]} == {
        "label_source",
        "scheduler",
        "eval_project",
    }
    assert not RewardModelRun.objects.exists()


def test_a_checkpoint_downloads_as_a_zip(team, viewer, tmp_path):
    checkpoint = tmp_path / "run"
    (checkpoint / "sub").mkdir(parents=True)
    (checkpoint / "card.json").write_text('{"metrics": {}}')
    (checkpoint / "sub" / "tokenizer.json").write_text("{}")
    done = RewardModelRunFactory(
        project=team.project, status="succeeded", checkpoint_dir=str(checkpoint)
    )
    running = RewardModelRunFactory(project=team.project, status="running")

    response = viewer.get(f"{P}/reward-runs/{done.pk}/checkpoint/")
    missing = viewer.get(f"{P}/reward-runs/{running.pk}/checkpoint/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="proj-reward-run-{done.pk}.zip"'
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == [
        f"reward-run-{done.pk}/card.json",
        f"reward-run-{done.pk}/sub/tokenizer.json",
    ]
    assert missing.status_code == 404 and "has no checkpoint" in missing.json()["detail"]


def test_without_a_judge_name_the_primary_judge_else_the_demo_judge_runs(team, admin):
    demo = admin.post(f"{P}/judge-runs/", {}, format="json")
    team.project.primary_judge = "fake-judge"
    team.project.save()
    JudgeRun.objects.update(status="failed")
    primary = admin.post(f"{P}/judge-runs/", {}, format="json")

    assert demo.status_code == 201 and demo.json()["judge"] == "smollm2-135m-demo"
    assert primary.status_code == 201 and primary.json()["judge"] == "fake-judge"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("judge-runs/", {"judje": "judge-x"}, "judje"),
        ("reward-runs/", {"base": "minilm"}, "base"),
        (
            "reward-runs/",
            {"base_model": "minilm", "epochs": 1, "learning_rate": 0.1},
            "learning_rate",
        ),
    ],
)
def test_an_unknown_field_in_a_run_request_is_refused_naming_it(team, admin, path, body, field):
    response = admin.post(f"/api/v1/projects/proj/{path}", body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert errors[0]["problem"].startswith("Unknown field; the fields are: ")
    assert not JudgeRun.objects.exists() and not RewardModelRun.objects.exists()
