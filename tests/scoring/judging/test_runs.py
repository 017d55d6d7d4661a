"""Judge runs: versions, chunked idempotent labelling, one active run, reaping and resuming, and a
real Celery worker killed in the middle of a run."""

import io
import signal
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from annotator.models import LMLabel
from scoring.judging.prompts import EMPTY_RESPONSE
from scoring.judging.runs import (
    JudgeRunActive,
    judge_run_execute,
    judge_run_resume,
    judge_run_start,
    judge_runs_reap,
    judge_save,
)
from scoring.models import JudgeRun
from tests.conftest import wait_for
from tests.factories import ComparisonFactory, JudgeFactory, JudgeRunFactory, ProjectFactory
from tests.scoring.judging.helpers import PrefersGood, good_answer_comparisons
from tests.scoring.tiny_models import tiny_llama, tiny_tokenizer


@pytest.fixture
def judged(db):
    """Project `judged` with ten comparisons that PrefersGood judges, and the judge `fake-judge`."""
    project = ProjectFactory(slug="judged")
    good_answer_comparisons(project, 10)
    return project, JudgeFactory(name="fake-judge")


def test_the_version_follows_what_changes_the_answers(db):
    judge = JudgeFactory(name="fake-judge")
    first = judge.version
    judge.batch_size = 64
    assert judge_save(judge=judge).version == first  # speed only
    judge.prompt_template = "{prompt} {first} {second} {question}"
    assert judge_save(judge=judge).version != first
    judge.prompt_template = ""
    assert judge_save(judge=judge).version == first


def test_a_run_labels_every_comparison_with_both_orders(judged):
    project, judge = judged
    run = judge_run_start(project=project, judge=judge, enqueue=False)

    done = judge_run_execute(run_id=run.pk, backend=PrefersGood(), chunk_size=3)

    assert (done.status, done.done, done.total) == ("succeeded", 10, 10)
    assert done.pairs_per_second > 0
    labels = LMLabel.objects.filter(judge_name="fake-judge", judge_version=judge.version)
    assert labels.count() == 10
    for label in labels.select_related("comparison"):
        a_good = "GOOD" in label.comparison.response_a
        # GOOD first: P(first)=0.85; GOOD second: P(first)=0.25 -> P(GOOD) = 0.75 that way.
        assert label.p_a == pytest.approx(0.8 if a_good else 0.2)
        assert label.choice == ("A" if a_good else "B")
        assert label.position_consistent is True
        assert set(label.raw_output) == {"ab", "ba"}
    assert judge in project.scoring.judges.all()


def test_a_conversation_and_an_empty_response_are_judged_from_their_turns(db):
    project = ProjectFactory(slug="chat")
    turns = [
        {"role": "user", "content": "question 1"},
        {"role": "assistant", "content": "meh"},
        {"role": "user", "content": "question 2"},
    ]
    ComparisonFactory(
        project=project,
        prompt="flattened",
        prompt_messages=turns,
        response_a="",
        response_b_messages=[{"role": "assistant", "content": "GOOD answer"}],
        response_b="GOOD answer",
    )
    judge = JudgeFactory(name="fake-judge")
    backend = PrefersGood()
    seen = []
    score = backend.score
    backend.score = lambda inputs: seen.extend(inputs) or score(inputs)

    run = judge_run_execute(
        run_id=judge_run_start(project=project, judge=judge, enqueue=False).pk, backend=backend
    )

    assert run.status == "succeeded"
    ab = next(item for item in seen if item.key[1] == "AB")
    assert ab.prompt == "### User:\nquestion 1\n\n### Assistant:\nmeh\n\n### User:\nquestion 2"
    assert (ab.first, ab.second) == (EMPTY_RESPONSE, "GOOD answer")
    assert LMLabel.objects.get().choice == "B"


def test_a_second_run_only_labels_what_is_missing(judged):
    project, judge = judged
    backend = PrefersGood()
    judge_run_execute(
        run_id=judge_run_start(project=project, judge=judge, enqueue=False, limit=4).pk,
        backend=backend,
    )
    assert LMLabel.objects.count() == 4
    second = judge_run_execute(
        run_id=judge_run_start(project=project, judge=judge, enqueue=False).pk, backend=backend
    )
    assert (second.done, second.total) == (10, 10)
    assert LMLabel.objects.count() == 10


def test_only_one_active_run_per_project_and_judge(judged):
    project, judge = judged
    judge_run_start(project=project, judge=judge, enqueue=False)
    with pytest.raises(JudgeRunActive, match="already has an active run"):
        judge_run_start(project=project, judge=judge, enqueue=False)
    other = JudgeFactory(name="other-judge")
    judge_run_start(project=project, judge=other, enqueue=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        JudgeRunFactory(project=project, judge=judge, judge_version="x", status="running")


def test_a_stale_run_is_reaped_and_resumes_where_it_stopped(judged, settings):
    settings.JUDGE_STALE_SECONDS = 60
    project, judge = judged
    run = judge_run_start(project=project, judge=judge, enqueue=False, limit=6)
    judge_run_execute(run_id=run.pk, backend=PrefersGood())
    JudgeRun.objects.filter(pk=run.pk).update(status="running", limit=None)  # as if cut short
    assert judge_runs_reap() == 0  # its heartbeat is fresh
    JudgeRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    assert judge_runs_reap() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeat" in run.error

    judge_run_resume(run_id=run.pk, enqueue=False)
    backend = PrefersGood()
    finished = judge_run_execute(run_id=run.pk, backend=backend)
    assert (finished.status, finished.done, finished.total) == ("succeeded", 10, 10)
    assert LMLabel.objects.count() == 10


def test_a_live_run_is_not_taken_twice(judged):
    project, judge = judged
    run = judge_run_start(project=project, judge=judge, enqueue=False)
    JudgeRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    backend = PrefersGood()
    assert judge_run_execute(run_id=run.pk, backend=backend).status == "running"
    assert backend.calls == 0


def test_a_backend_error_fails_the_run_with_its_message(judged):
    from scoring.judging.backend import JudgeBackendError

    class Broken(PrefersGood):
        def score(self, inputs):
            raise JudgeBackendError("the server has no logprobs")

    project, judge = judged
    run = judge_run_execute(
        run_id=judge_run_start(project=project, judge=judge, enqueue=False).pk, backend=Broken()
    )
    assert run.status == "failed"
    assert "no logprobs" in run.error


def test_the_command_refuses_unknown_judges_and_projects(judged):
    with pytest.raises(CommandError, match="no judge named"):
        call_command("judge", "--project", "judged", "--judge", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("judge", "--project", "nope", stdout=io.StringIO())


def test_the_command_queues_a_run(judged):
    out = io.StringIO()
    call_command("judge", "--project", "judged", "--judge", "fake-judge", stdout=out)
    assert "queued judge run #" in out.getvalue()
    assert JudgeRun.objects.get().status == "queued"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny llama and a tokenizer trained here, saved like a real model directory."""
    pytest.importorskip("torch")
    tokenizer = tiny_tokenizer()
    model = tiny_llama(tokenizer)
    directory = tmp_path_factory.mktemp("tiny-judge")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_a_run_that_resumes_to_label_each_once(
    start_celery_worker, tiny_model_dir
):
    project = ProjectFactory(slug="killed")
    good_answer_comparisons(project, 400)
    judge = JudgeFactory(name="tiny", model_path=str(tiny_model_dir), device="cpu", batch_size=8)
    settings_env = {"JUDGE_CHUNK_SIZE": "4", "JUDGE_STALE_SECONDS": "3"}
    first = start_celery_worker(**settings_env)

    run = judge_run_start(project=project, judge=judge)
    wait_for(lambda: JudgeRun.objects.get(pk=run.pk).done >= 20, what="the run to make progress")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    run.refresh_from_db()
    assert run.status == "running" and run.done < run.total == 400

    time.sleep(3.5)  # longer than JUDGE_STALE_SECONDS without a heartbeat
    with override_settings(JUDGE_STALE_SECONDS=3):
        assert judge_runs_reap() == 1
    run.refresh_from_db()
    assert run.status == "failed"

    start_celery_worker(**settings_env)
    judge_run_resume(run_id=run.pk)
    finished = wait_for(
        lambda: JudgeRun.objects.filter(pk=run.pk, status="succeeded").first(),
        timeout=180,
        what="the resumed run",
    )

    assert (finished.done, finished.total) == (400, 400)
    labels = LMLabel.objects.filter(judge_name="tiny", judge_version=judge.version)
    assert labels.count() == 400
    assert labels.values("comparison").distinct().count() == 400
