"""Background imports: the file is copied aside, a worker imports it, the job row has the result."""

import io
import logging
import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotator.background import RunStatus, run_claim
from annotator.dataio.formats import FORMAT_CHOICES, READ_ERRORS, ReadOptions
from annotator.dataio.importer import ImportFailed, comparisons_import
from annotator.models import ImportJob, Project
from annotator.tasks import import_job_run_task

logger = logging.getLogger(__name__)

__all__ = ["READ_ERRORS", "import_job_create", "import_job_progress", "import_job_run"]


def import_job_create(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    fmt: str = "native",
    update: bool = False,
    options: ReadOptions | None = None,
    user=None,
) -> ImportJob:
    """Store the upload and enqueue its import; the worker starts once this transaction commits."""
    if fmt not in FORMAT_CHOICES:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMAT_CHOICES)}")
    if fmt == "llmbar":
        raise ValueError("llmbar imports read evaluator files beside dataset.json: run them inline")
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stored = directory / f"{uuid.uuid4().hex}-{Path(source_name).name}"
    with stored.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1 << 20)
    read = options or ReadOptions(label_name=Path(source_name).name)
    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project,
            created_by=user,
            source_name=source_name,
            stored_path=str(stored),
            format=fmt,
            options={"update": update, **read.to_json()},
        )
        import_job_run_task.delay_on_commit(job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued import. Safe to deliver twice: a finished job is left alone, and the job row
    stays locked for the whole import, so a duplicate delivery skips while one is running (and
    takes over a job whose worker died, which no longer holds the lock)."""
    # No heartbeat during an import (its writes stay uncommitted until it ends): the row lock
    # is what shows a live worker, so any running job that is not locked is abandoned.
    if run_claim(ImportJob, job_id, stale_after=timedelta(0), skip_locked=True) is None:
        return ImportJob.objects.get(pk=job_id)
    path = None
    try:
        with transaction.atomic():
            job = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None or job.is_finished:
                return job or ImportJob.objects.get(pk=job_id)
            path = Path(job.stored_path)
            _job_finish(job, path)
    except Exception as exc:  # the job must not stay "running" with its upload left behind
        logger.exception("import job %s could not record its end", job_id)
        job = ImportJob.objects.get(pk=job_id)
        _job_failed(job, [f"{job.source_name}: the import failed: {type(exc).__name__}: {exc}"])
        job.finished_at = timezone.now()
        job.save(update_fields=_ENDED_FIELDS)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
            _progress_path(path).unlink(missing_ok=True)
    return job


_ENDED_FIELDS = ["status", "errors", "error_count", "error", "summary", "finished_at"]


def _job_finish(job: ImportJob, path: Path) -> None:
    """Run the job's import and record how it ended; any failure ends the job as failed."""
    try:
        summary = _job_import(job, path)
    except ImportFailed as failure:
        _job_failed(job, [str(e) for e in failure.errors], failure.error_count)
    except READ_ERRORS as exc:
        _job_failed(job, [f"{job.source_name}: the file cannot be read: {exc}"])
    except FileNotFoundError:
        _job_failed(job, [f"{job.source_name}: the uploaded file is gone ({path})"])
    except ValueError as exc:  # FormatError, InputTooLarge: the input's own fault
        _job_failed(job, [f"{job.source_name}: {exc}"])
    except Exception as exc:
        # A bug, not bad input: logged with its traceback; the import rolled back.
        logger.exception("import job %s failed", job.pk)
        _job_failed(job, [f"{job.source_name}: the import failed: {type(exc).__name__}: {exc}"])
    else:
        job.status, job.summary = RunStatus.SUCCEEDED, summary.as_dict()
    job.finished_at = timezone.now()
    job.save(update_fields=_ENDED_FIELDS)


def _job_import(job: ImportJob, path: Path):
    options = ReadOptions.from_json(job.options)
    with path.open("rb") as raw, _ProgressReader(raw, _progress_path(path)) as stream:
        return comparisons_import(
            project=job.project,
            stream=stream,
            source_name=job.source_name,
            fmt=job.format,
            update=bool(job.options.get("update")),
            options=options,
        )


def _job_failed(job: ImportJob, errors: list[str], count: int | None = None) -> None:
    count = len(errors) if count is None else count
    job.status, job.errors, job.error_count = RunStatus.FAILED, errors, count
    job.error = errors[0] if count == 1 else f"{count} errors; nothing was imported"


# Progress of a running import lives in a small file beside the upload, in IMPORT_DIR (storage the
# web and the workers share): the job row stays locked, and the import's data uncommitted, until
# the all-or-nothing import ends.
PROGRESS_EVERY_S = 0.5


def _progress_path(stored: Path) -> Path:
    return stored.with_name(stored.name + ".progress")


class _ProgressReader(io.RawIOBase):
    """Reads the upload and now and then records how many of its bytes were read."""

    def __init__(self, raw, progress: Path):
        self.raw, self.progress = raw, progress
        self.total = os.fstat(raw.fileno()).st_size
        self.done = 0
        self.written_at = 0.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.done += n or 0
        now = time.monotonic()
        if now - self.written_at >= PROGRESS_EVERY_S:
            self.written_at = now
            partial = self.progress.with_name(self.progress.name + ".tmp")
            partial.write_bytes(orjson.dumps({"bytes_read": self.done, "bytes_total": self.total}))
            partial.replace(self.progress)
        return n

    def __exit__(self, *exc):
        self.close()
        return False


def import_job_progress(*, job: ImportJob) -> dict:
    """How far a job is: bytes of its upload read (running jobs) and a fraction from 0 to 1."""
    if job.status == RunStatus.SUCCEEDED:
        return {"fraction": 1.0, "bytes_read": None, "bytes_total": None}
    if job.status != RunStatus.RUNNING:
        return {
            "fraction": 0.0 if job.status == RunStatus.QUEUED else None,
            "bytes_read": None,
            "bytes_total": None,
        }
    try:
        seen = orjson.loads(_progress_path(Path(job.stored_path)).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"fraction": 0.0, "bytes_read": 0, "bytes_total": None}
    total = seen["bytes_total"] or 1
    return {**seen, "fraction": round(min(seen["bytes_read"] / total, 1.0), 4)}
