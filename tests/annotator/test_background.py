"""One claim and one reaper for every background run (imports, judge runs, reward runs)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.background import RunRefused, RunStatus, run_claim, runs_reap
from annotator.models import ImportJob
from scoring.models import JudgeRun, RewardModelRun
from tests.factories import ImportJobFactory, JudgeRunFactory, RewardModelRunFactory

STALE = timedelta(minutes=5)


@pytest.fixture
def judge_run(project):
    return JudgeRunFactory(project=project, judge__name="claim-judge")


def test_a_queued_run_is_claimed_once(judge_run):
    claimed = run_claim(JudgeRun, judge_run.pk, stale_after=STALE)
    assert claimed is not None and claimed.status == RunStatus.RUNNING
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    # A second delivery finds a live worker (fresh heartbeat) and leaves it alone.
    assert run_claim(JudgeRun, judge_run.pk, stale_after=STALE) is None


def test_a_run_whose_worker_went_silent_is_taken_over(judge_run):
    old = timezone.now() - timedelta(hours=1)
    JudgeRun.objects.filter(pk=judge_run.pk).update(
        status=RunStatus.RUNNING, started_at=old, heartbeat_at=old
    )
    claimed = run_claim(JudgeRun, judge_run.pk, stale_after=STALE)
    assert claimed is not None and claimed.heartbeat_at > old
    assert claimed.started_at == old  # the run keeps its first start


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_finished_run_is_never_claimed(judge_run, status):
    JudgeRun.objects.filter(pk=judge_run.pk).update(status=status, finished_at=timezone.now())
    assert run_claim(JudgeRun, judge_run.pk, stale_after=STALE) is None
    assert JudgeRun.objects.get(pk=judge_run.pk).status == status


def test_prepare_can_end_the_run_instead(judge_run):
    def refuse(run):
        raise RunRefused(RunStatus.FAILED, "the configuration changed")

    assert run_claim(JudgeRun, judge_run.pk, stale_after=STALE, prepare=refuse) is None
    judge_run.refresh_from_db()
    assert judge_run.status == RunStatus.FAILED
    assert judge_run.error == "the configuration changed"
    assert judge_run.finished_at is not None


def test_prepare_sets_fields_that_are_saved(project):
    run = RewardModelRunFactory(project=project, progress=0.5)

    def start(claimed):
        claimed.progress = 0.0
        return ["progress"]

    run_claim(RewardModelRun, run.pk, stale_after=STALE, prepare=start)
    assert RewardModelRun.objects.get(pk=run.pk).progress == 0.0


def test_the_reaper_fails_only_silent_running_runs(project, judge_run):
    old = timezone.now() - timedelta(hours=1)
    JudgeRun.objects.filter(pk=judge_run.pk).update(status=RunStatus.RUNNING, heartbeat_at=old)
    live = RewardModelRunFactory(
        project=project, status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    queued = ImportJobFactory(project=project)
    assert runs_reap(JudgeRun, stale_after=STALE, error="worker lost") == 1
    assert runs_reap(RewardModelRun, stale_after=STALE, error="worker lost") == 0
    assert runs_reap(ImportJob, stale_after=STALE, error="worker lost") == 0
    judge_run.refresh_from_db()
    assert (judge_run.status, judge_run.error) == (RunStatus.FAILED, "worker lost")
    assert judge_run.finished_at is not None
    assert RewardModelRun.objects.get(pk=live.pk).status == RunStatus.RUNNING
    assert ImportJob.objects.get(pk=queued.pk).status == RunStatus.QUEUED


def test_every_run_model_shares_one_status_vocabulary():
    for model in (ImportJob, JudgeRun, RewardModelRun):
        assert [value for value, _ in model._meta.get_field("status").choices] == list(
            RunStatus.values
        )


@pytest.mark.django_db(transaction=True)
def test_the_reaper_leaves_a_run_whose_row_a_worker_holds(project):
    """An import holds its job row locked for the whole import and sends no heartbeat: the
    lock, not the heartbeat, says that its worker is alive."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    import threading

    from django.db import transaction

    old = timezone.now() - timedelta(hours=1)
    job = ImportJobFactory(project=project, status=RunStatus.RUNNING, heartbeat_at=old)
    locked, release = threading.Event(), threading.Event()

    def worker():
        try:
            with transaction.atomic():
                ImportJob.objects.select_for_update().get(pk=job.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(10)
        assert runs_reap(ImportJob, stale_after=STALE, error="worker lost") == 0
    finally:
        release.set()
        thread.join()
    assert runs_reap(ImportJob, stale_after=STALE, error="worker lost") == 1
