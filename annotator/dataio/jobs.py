"""Background imports: the file is copied aside, a worker imports it, the job row has the result."""

import gzip
import io
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import BinaryIO

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotator.dataio.formats import FORMATS, ReadOptions
from annotator.dataio.importer import ImportFailed, comparisons_import
from annotator.models import ImportJob, Project

# A damaged upload (a truncated or corrupt gzip stream) fails while it is read, not line by line.
READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def import_job_create(
    *,
    project: Project,
    stream: BinaryIO,
    source_name: str,
    fmt: str = "native",
    update: bool = False,
    label_name: str | None = None,
    lm_judge: str | None = None,
    user=None,
) -> ImportJob:
    """Store the upload and enqueue its import; the worker starts once this transaction commits."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "llmbar":
        raise ValueError("llmbar imports read evaluator files beside dataset.json: run them inline")
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stored = directory / f"{uuid.uuid4().hex}-{Path(source_name).name}"
    with stored.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1 << 20)
    options = {"update": update, "label_name": label_name or Path(source_name).name}
    if lm_judge:
        options["lm_judge"] = lm_judge
    with transaction.atomic():
        job = ImportJob.objects.create(
            project=project,
            created_by=user,
            source_name=source_name,
            stored_path=str(stored),
            format=fmt,
            options=options,
        )
        from annotator.tasks import import_job_run_task

        import_job_run_task.delay_on_commit(job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued import. Safe to deliver twice: a finished job is left alone, and the job row
    stays locked for the whole import, so a duplicate delivery skips while one is running."""
    ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.is_finished:
            return job or ImportJob.objects.get(pk=job_id)
        options = ReadOptions(
            label_name=job.options.get("label_name", "imported"),
            lm_judge=job.options.get("lm_judge"),
        )
        path = Path(job.stored_path)
        try:
            with path.open("rb") as raw, _ProgressReader(raw, _progress_path(path)) as stream:
                summary = comparisons_import(
                    project=job.project,
                    stream=stream,
                    source_name=job.source_name,
                    fmt=job.format,
                    update=bool(job.options.get("update")),
                    options=options,
                )
        except ImportFailed as failure:
            job.status = ImportJob.Status.FAILED
            job.errors = [str(e) for e in failure.errors]
            job.error_count = failure.error_count
        except READ_ERRORS as exc:
            job.status = ImportJob.Status.FAILED
            job.errors = [f"{job.source_name}: the file cannot be read: {exc}"]
            job.error_count = 1
        except FileNotFoundError:
            job.status = ImportJob.Status.FAILED
            job.errors = [f"{job.source_name}: the uploaded file is gone ({path})"]
            job.error_count = 1
        else:
            job.status = ImportJob.Status.SUCCEEDED
            job.summary = summary.as_dict()
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "errors", "error_count", "summary", "finished_at"])
    path.unlink(missing_ok=True)
    _progress_path(path).unlink(missing_ok=True)
    return job


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
    if job.status == ImportJob.Status.SUCCEEDED:
        return {"fraction": 1.0, "bytes_read": None, "bytes_total": None}
    if job.status != ImportJob.Status.RUNNING:
        return {
            "fraction": 0.0 if job.status == ImportJob.Status.QUEUED else None,
            "bytes_read": None,
            "bytes_total": None,
        }
    try:
        seen = orjson.loads(_progress_path(Path(job.stored_path)).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"fraction": 0.0, "bytes_read": 0, "bytes_total": None}
    total = seen["bytes_total"] or 1
    return {**seen, "fraction": round(min(seen["bytes_read"] / total, 1.0), 4)}
