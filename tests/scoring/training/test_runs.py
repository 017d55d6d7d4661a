"""Reward-model runs: data from a project's labels, training with progress on the row,
checkpoints, cancel, the one-run rule, retraining as labels arrive, scoring, a real worker."""

import io
import signal
import time

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import override_settings

from scoring.models import RewardModelRun
from scoring.services import project_scoring_update
from scoring.training.runs import (
    RewardRunActive,
    reward_retrain_count,
    reward_run_cancel,
    reward_run_execute,
    reward_run_start,
    reward_runs_reap,
    training_rows,
)
from tests.conftest import wait_for
from tests.factories import ComparisonFactory, ProjectFactory
from tests.scoring.tiny_models import tiny_reward_model, tiny_tokenizer

torch = pytest.importorskip("torch")


def _project(n=60, slug="rm", judge=False):
    """Separable data: the chosen response says "good", the other "bad"; three in four
    human-labelled."""
    project = ProjectFactory(slug=slug, primary_judge="j" if judge else "")
    for i in range(n):
        good_is_a = i % 2 == 0
        winner = "A" if good_is_a else "B"
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            prompt=f"question {i % 20} ?",  # 20 prompts, so the split has groups to keep whole
            response_a="good answer" if good_is_a else "bad answer",
            response_b="bad answer" if good_is_a else "good answer",
            human_votes=[(winner, "clearly")] if i % 4 != 3 else [],
            lm_votes=[("j", winner)] if judge else [],
        )
    return project


def test_training_rows_carry_votes_and_the_primary_judge(db):
    project = _project(n=8, judge=True)
    rows = training_rows(project)
    assert len(rows) == 8
    assert sum(1 for r in rows if r["human_votes"]) == 6
    assert all(r["lm"] is not None for r in rows)


def test_a_run_trains_records_progress_and_saves_a_checkpoint(db, settings, tmp_path):
    settings.REWARD_MODEL_DIR = tmp_path
    project = _project()
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
    tokenizer = tiny_tokenizer()

    done = reward_run_execute(
        run_id=run.pk, model=tiny_reward_model(tokenizer), tokenizer=tokenizer
    )

    assert done.status == "succeeded", done.error
    assert done.n_train + done.n_validation == 45  # 60 comparisons, 45 with human labels
    assert done.final_metrics["val_accuracy"] > 0.9
    assert done.progress == 1.0 and done.metrics
    assert {m["kind"] for m in done.metrics} >= {"train", "eval"}
    assert (tmp_path / str(run.pk) / "config.json").exists()
    assert done.checkpoint_dir == str(tmp_path / str(run.pk))

    source = tmp_path / "pairs.jsonl"
    source.write_bytes(
        orjson.dumps(
            {
                "external_id": "x",
                "prompt": "question 1 ?",
                "response_a": "good answer",
                "response_b": "bad answer",
            }
        )
        + b"\n"
    )
    out = io.StringIO()
    call_command("score_pairs", str(source), "--run", str(run.pk), stdout=out)
    (scored,) = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert scored["external_id"] == "x" and scored["preferred"] == "A"
    assert scored["reward_a"] > scored["reward_b"] and scored["p_a"] > 0.5


def test_no_pairs_is_a_clear_failure(db):
    project = ProjectFactory(slug="empty")
    run = reward_run_start(project=project, enqueue=False)
    tokenizer = tiny_tokenizer()
    done = reward_run_execute(
        run_id=run.pk, model=tiny_reward_model(tokenizer), tokenizer=tokenizer
    )
    assert done.status == "failed" and "no training pairs" in done.error


def test_one_active_run_per_project_and_cancel(db):
    project = _project(n=4)
    run = reward_run_start(project=project, enqueue=False)
    with pytest.raises(RewardRunActive):
        reward_run_start(project=project, enqueue=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        RewardModelRun.objects.create(project=project, status="running")
    assert reward_run_cancel(run_id=run.pk).status == "cancelled"
    reward_run_start(project=project, enqueue=False)  # the slot is free again


def test_a_stale_run_is_reaped(db):
    project = _project(n=4)
    run = reward_run_start(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=run.created_at.replace(year=2000)
    )
    assert reward_runs_reap() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeat" in run.error


def test_retraining_starts_once_the_threshold_is_crossed(db):
    project = _project(n=4)
    project_scoring_update(project=project, retrain_every=5)
    assert reward_retrain_count(project_id=project.pk, new_labels=3) is None
    run = reward_retrain_count(project_id=project.pk, new_labels=3)
    assert run is not None and run.status == "queued"
    # a burst while that run is active starts no second one
    assert reward_retrain_count(project_id=project.pk, new_labels=10) is None
    assert RewardModelRun.objects.count() == 1


def test_the_command_validates_and_queues(db):
    _project(n=4)
    with pytest.raises(CommandError, match="does not exist"):
        call_command("train_reward_model", "--project", "nope", stdout=io.StringIO())
    out = io.StringIO()
    call_command("train_reward_model", "--project", "rm", "--labels", "human", stdout=out)
    assert "queued reward-model run #" in out.getvalue()


@pytest.fixture(scope="module")
def tiny_base_dir(tmp_path_factory):
    tokenizer = tiny_tokenizer()
    directory = tmp_path_factory.mktemp("tiny-reward-base")
    tiny_reward_model(tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_a_worker_trains_and_a_killed_one_leaves_a_run_the_reaper_fails(
    start_celery_worker, tiny_base_dir, tmp_path
):
    project = _project(n=400, slug="worker-rm")
    env = {"REWARD_MODEL_DIR": str(tmp_path), "REWARD_STALE_SECONDS": "3"}
    worker = start_celery_worker(**env)

    long_run = reward_run_start(
        project=project,
        base_model=str(tiny_base_dir),
        label_source="human",
        epochs=200,
        batch_size=4,
        max_length=32,
    )
    wait_for(
        lambda: RewardModelRun.objects.filter(
            pk=long_run.pk, status="running", progress__gt=0
        ).exists(),
        timeout=120,
        what="training to start",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    with pytest.raises(RewardRunActive):  # never two active runs, even with a dead worker
        reward_run_start(project=project, enqueue=False)
    time.sleep(3.5)
    with override_settings(REWARD_STALE_SECONDS=3):
        assert reward_runs_reap() == 1

    start_celery_worker(**env)
    run = reward_run_start(
        project=project,
        base_model=str(tiny_base_dir),
        label_source="human",
        epochs=2,
        batch_size=8,
        max_length=32,
    )
    done = wait_for(
        lambda: RewardModelRun.objects.filter(
            pk=run.pk, status__in=["succeeded", "failed"]
        ).first(),
        timeout=180,
        what="the second run",
    )
    assert done.status == "succeeded", done.error
    assert (tmp_path / str(run.pk) / "config.json").exists()
    assert RewardModelRun.objects.get(pk=long_run.pk).status == "failed"
