"""A reward-model run labels its project with the trained model: one LM label per comparison of
the judge REWARD_MODEL_JUDGE, version run-<id>; idempotent; off by a project setting; each
chunk's commit sends labels_committed; a failure while labelling keeps the checkpoint."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from annotator.final_labels import latest_lm_labels
from annotator.models import LMLabel, Role
from annotator.signals import labels_committed
from scoring.judging.runs import judge_save
from scoring.models import REWARD_MODEL_JUDGE, Judge, ProjectScoring, RewardModelRun
from scoring.receivers import retrain_on_labels_committed
from scoring.services import project_scoring_update
from scoring.training.runs import (
    reward_labels_write,
    reward_pairs_score,
    reward_run_execute,
    reward_run_start,
)
from tests.annotator.api.helpers import client_for, team_create
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory
from tests.scoring.tiny_models import tiny_reward_model, tiny_tokenizer

torch = pytest.importorskip("torch")

N = 40


def _project(project=None, n=N):
    """Separable data: the chosen response says "good"; three in four human-labelled."""
    project = project or ProjectFactory(slug="rm")
    for i in range(n):
        good_is_a = i % 2 == 0
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            prompt=f"question {i % 20} ?",
            response_a="good answer" if good_is_a else "bad answer",
            response_b="bad answer" if good_is_a else "good answer",
            human_votes=[("A" if good_is_a else "B", "clearly")] if i % 4 != 3 else [],
        )
    return project


class Trained:
    """A run executed here on a tiny model; the model object is the trained one."""

    def __init__(self, project, **execute):
        self.tokenizer = tiny_tokenizer()
        self.model = tiny_reward_model(self.tokenizer)
        run = reward_run_start(
            project=project,
            enqueue=False,
            base_model="tiny",
            label_source="human",
            lr=3e-3,
            epochs=8,
            batch_size=8,
            max_length=32,
            warmup_ratio=0.0,
            center_coef=0.0,
        )
        self.run = reward_run_execute(
            run_id=run.pk, model=self.model, tokenizer=self.tokenizer, **execute
        )


@pytest.fixture
def reward_dir(settings, tmp_path):
    settings.REWARD_MODEL_DIR = tmp_path
    return tmp_path


def _labels(project):
    return LMLabel.objects.filter(comparison__project=project, judge_name=REWARD_MODEL_JUDGE)


def test_a_run_labels_every_comparison_as_the_reward_model_judge(db, reward_dir):
    project = _project()
    trained = Trained(project)
    run = trained.run

    assert run.status == "succeeded", run.error
    assert (run.labels_done, run.labels_total) == (N, N)
    labels = list(_labels(project).select_related("comparison"))
    assert len(labels) == N
    assert {label.judge_version for label in labels} == {f"run-{run.pk}"}
    right = 0
    for label in labels:
        assert label.strength == "unknown" and label.source == "platform"
        assert label.p_a_ab is None and label.p_a_ba is None
        assert label.position_consistent is None
        reward_a, reward_b = label.raw_output["reward_a"], label.raw_output["reward_b"]
        assert (label.p_a > 0.5) == (reward_a > reward_b)
        good = "A" if label.comparison.response_a == "good answer" else "B"
        right += label.choice == good
    assert right == N  # separable data: the trained model prefers the good answer everywhere
    splits = [label.raw_output["split"] for label in labels]
    assert splits.count("unseen") == N // 4  # no human vote: not trained on
    assert splits.count("train") + splits.count("validation") == N - N // 4
    assert splits.count("validation") > 0


def test_labelling_twice_changes_nothing_and_a_newer_run_supersedes(db, reward_dir):
    project = _project()
    trained = Trained(project)
    before = list(_labels(project).order_by("id").values_list("id", "choice", "p_a", "created_at"))

    assert reward_labels_write(run=trained.run, model=trained.model, tokenizer=trained.tokenizer)

    after = list(_labels(project).order_by("id").values_list("id", "choice", "p_a", "created_at"))
    assert after == before
    trained.run.refresh_from_db()
    assert (trained.run.labels_done, trained.run.labels_total) == (N, N)

    newer = RewardModelRun.objects.create(project=project, status="succeeded", max_length=32)
    reward_labels_write(run=newer, model=trained.model, tokenizer=trained.tokenizer)
    latest = latest_lm_labels(_labels(project)).values_list("judge_version", flat=True)
    assert sorted(set(latest)) == [f"run-{newer.pk}"] and len(latest) == N


def test_the_setting_off_writes_no_label(db, reward_dir):
    project = _project()
    project_scoring_update(project=project, label_with_reward_model=False)
    run = Trained(project).run
    assert run.status == "succeeded", run.error
    assert run.labels_total == 0 and not _labels(project).exists()
    assert run.checkpoint_dir


@pytest.fixture
def heard():
    """What `labels_committed` said, in order."""
    said = []

    def receiver(sender, **kwargs):
        said.append(kwargs)

    labels_committed.connect(receiver, dispatch_uid="test-reward-labels")
    yield said
    labels_committed.disconnect(dispatch_uid="test-reward-labels")


def test_each_chunk_commits_with_its_labels_committed_news(
    db, reward_dir, heard, django_capture_on_commit_callbacks
):
    project = _project()
    with django_capture_on_commit_callbacks(execute=True):
        run = Trained(project, label_chunk_size=15).run
    assert run.status == "succeeded", run.error
    assert [(h["project_id"], h["new_labels"], h["origin"]) for h in heard] == [
        (project.pk, 15, "judge"),
        (project.pk, 15, "judge"),
        (project.pk, 10, "judge"),
    ]


def test_a_failure_while_labelling_keeps_the_checkpoint_and_says_why(db, reward_dir, monkeypatch):
    from scoring.training import checkpoint

    project = _project()
    real, calls = checkpoint.score_texts, []

    def fails_on_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "score_texts", fails_on_the_second_chunk)
    run = Trained(project, label_chunk_size=15).run

    assert run.status == "failed"
    assert "labelling" in run.error and "CUDA out of memory" in run.error
    assert "checkpoint is saved" in run.error
    assert (reward_dir / str(run.pk) / "config.json").exists()
    assert run.checkpoint_dir == str(reward_dir / str(run.pk))
    assert run.final_metrics["val_accuracy"] > 0.9
    assert (run.labels_done, run.labels_total) == (15, N)
    assert _labels(project).count() == 15  # the first chunk committed
    monkeypatch.undo()
    (scored,) = reward_pairs_score(
        run=run,
        items=[{"prompt": "question 1 ?", "response_a": "good answer", "response_b": "bad answer"}],
    )
    assert scored["p_a"] > 0.5


def test_a_cancel_while_labelling_stops_it_and_keeps_the_checkpoint(db, reward_dir, monkeypatch):
    from scoring.training import checkpoint

    project = _project()
    real = checkpoint.score_texts

    def cancelled_meanwhile(*args, **kwargs):
        RewardModelRun.objects.filter(project=project).update(cancel_requested=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "score_texts", cancelled_meanwhile)
    run = Trained(project, label_chunk_size=15).run

    assert run.status == "cancelled" and not run.error
    assert (run.labels_done, run.labels_total) == (15, N)
    assert (reward_dir / str(run.pk) / "config.json").exists()
    assert run.checkpoint_dir == str(reward_dir / str(run.pk))


def test_the_reward_models_labels_do_not_count_toward_retraining(db):
    project = _project(n=4)
    project_scoring_update(project=project, retrain_every=100)
    retrain_on_labels_committed(
        None, project_id=project.pk, new_labels=40, origin="judge", judge_name=REWARD_MODEL_JUDGE
    )
    assert ProjectScoring.objects.get(project=project).labels_since_retrain == 0
    retrain_on_labels_committed(None, project_id=project.pk, new_labels=40, origin="judge")
    assert ProjectScoring.objects.get(project=project).labels_since_retrain == 40


def test_no_judge_configuration_takes_the_reward_models_name(db):
    with pytest.raises(ValidationError):
        judge_save(judge=Judge(name=REWARD_MODEL_JUDGE))


def test_the_sync_command_reports_the_labels(db, reward_dir, monkeypatch):
    from scoring.training import runs

    project = _project()
    trained_model = {}

    def execute_tiny(*, run_id):
        tokenizer = tiny_tokenizer()
        trained_model["model"] = tiny_reward_model(tokenizer)
        return runs.reward_run_execute(
            run_id=run_id, model=trained_model["model"], tokenizer=tokenizer
        )

    monkeypatch.setattr(
        "scoring.management.commands.train_reward_model.reward_run_execute", execute_tiny
    )
    out = io.StringIO()
    call_command(
        "train_reward_model",
        "--project",
        project.slug,
        "--labels",
        "human",
        "--sync",
        "--max-length",
        "32",
        "--batch-size",
        "8",
        stdout=out,
    )
    run = RewardModelRun.objects.get(project=project)
    assert f"labelled {N} comparisons as judge 'reward-model' version 'run-{run.pk}'" in (
        out.getvalue()
    )


def test_the_project_api_shows_and_changes_the_setting(db):
    team = team_create()
    admin = client_for(team.users["admin"])
    assert admin.get("/api/v1/projects/proj/").json()["label_with_reward_model"] is True
    response = admin.patch(
        "/api/v1/projects/proj/", {"label_with_reward_model": False}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["label_with_reward_model"] is False
    assert not ProjectScoring.objects.get(project=team.project).label_with_reward_model


def test_the_run_page_shows_its_labels(db, reward_dir, client):
    project = _project()
    boss = MembershipFactory(project=project, user__username="boss", role=Role.ADMIN).user
    run = Trained(project).run
    client.force_login(boss)
    page = client.get(reverse("scoring:reward_run", args=[project.slug, run.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert f"{N} of {N} comparisons" in body and f"run-{run.pk}" in body
    assert reverse("scoring:judge_report", args=[project.slug, REWARD_MODEL_JUDGE]) in body
