"""Background runs: the one base of the jobs that workers execute (imports, judge runs,
reward-model trainings), with one way to claim a run and one reaper.

A run is queued by a service, claimed by the worker that executes it, kept alive by a heartbeat
while it works and finished as succeeded, failed or cancelled. A worker that dies leaves its run
`running` with a heartbeat that no longer moves: the next delivery of its message takes it over,
or the periodic reaper marks it failed.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.db import models, transaction
from django.utils import timezone

from annotator.constraints import choices_in


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class BackgroundRun(models.Model):
    """Status, timestamps, heartbeat and error of a job a worker executes."""

    Status = RunStatus

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True, help_text="Why the run failed, if it did.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker executing it."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=choices_in("status", RunStatus), name="%(class)s_status_valid"
            ),
        ]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return not self.is_active


Run = TypeVar("Run", bound=BackgroundRun)


class RunRefused(Exception):
    """Raised by a claim's `prepare` to end the run instead of starting it."""

    def __init__(self, status: str, error: str = ""):
        super().__init__(error or status)
        self.status, self.error = status, error


def run_claim(
    model: type[Run],
    run_id: int,
    *,
    stale_after: timedelta,
    select_related: tuple[str, ...] = (),
    prepare: Callable[[Run], list[str]] | None = None,
    skip_locked: bool = False,
) -> Run | None:
    """Start (or take over) a queued or abandoned run; None when it is finished, or when a live
    worker has it: its heartbeat is younger than `stale_after`.

    `prepare(run)` sets the run's own fields for a fresh start and returns their names; it
    raises RunRefused to end the run instead (a cancel request, a changed configuration).
    The claim waits for a short lock on the row (a cancel, a resume); with `skip_locked`, for
    runs whose worker holds the row for the whole run (imports), a locked row means a live
    worker and the claim returns None at once.
    """
    now = timezone.now()
    with transaction.atomic():
        run = (
            model.objects.select_for_update(skip_locked=skip_locked, of=("self",))
            .select_related(*select_related)
            .filter(pk=run_id)
            .first()
        )
        if run is None or not run.is_active:
            return None
        alive = run.heartbeat_at is not None and now - run.heartbeat_at < stale_after
        if run.status == RunStatus.RUNNING and alive:
            return None
        try:
            extra = prepare(run) if prepare is not None else []
        except RunRefused as refused:
            run.status, run.error, run.finished_at = refused.status, refused.error, now
            run.save(update_fields=["status", "error", "finished_at"])
            return None
        run.status, run.error = RunStatus.RUNNING, ""
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.save(update_fields=["status", "error", "started_at", "heartbeat_at", *extra])
        return run


def runs_reap(model: type[BackgroundRun], *, stale_after: timedelta, error: str) -> int:
    """Fail the running runs whose worker stopped sending heartbeats; returns how many.

    A run whose row is locked is being worked on (an import holds its row for the whole
    import), so it is left alone whatever its heartbeat says.
    """
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            model.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.RUNNING, heartbeat_at__lt=now - stale_after)
            .values_list("pk", flat=True)
        )
        return model.objects.filter(pk__in=stale).update(
            status=RunStatus.FAILED, error=error, finished_at=now
        )


def run_heartbeat(model: type[BackgroundRun], run_id: int, **fields) -> None:
    """Record that the worker is alive, with any progress fields, in its own short write."""
    model.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **fields)


def run_finish(model: type[BackgroundRun], run_id: int, status: str, **fields) -> None:
    now = timezone.now()
    model.objects.filter(pk=run_id).update(
        status=status, finished_at=now, heartbeat_at=now, **fields
    )
