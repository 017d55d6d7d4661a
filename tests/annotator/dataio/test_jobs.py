"""Background imports, run by a real Celery worker process on the configured broker."""

import io

import pytest

from annotator.dataio.jobs import import_job_create, import_job_run
from annotator.models import Comparison, ImportJob
from tests.conftest import DATA, wait_for
from tests.factories import ProjectFactory
from tests.import_records import RICH, native


def _lines(*records) -> io.BytesIO:
    import orjson

    return io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _finished(job_id: int) -> ImportJob | None:
    job = ImportJob.objects.get(pk=job_id)
    return job if job.is_finished else None


@pytest.mark.slow
def test_a_worker_runs_a_background_import(celery_worker_process, settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"
    project = ProjectFactory(slug="bg")
    with (DATA / "hh-rlhf/harmless-test-100.jsonl.gz").open("rb") as stream:
        job = import_job_create(
            project=project, stream=stream, source_name="hh.jsonl.gz", fmt="hh-rlhf"
        )
    assert job.status == "queued"

    done = wait_for(lambda: _finished(job.pk), what="the import job")

    assert done.status == "succeeded", done.errors
    assert done.summary == {
        "created": 100,
        "skipped": 0,
        "updated": 0,
        "human_labels": 100,
        "lm_labels": 0,
        "format": "hh-rlhf",
        "notes": {},
    }
    assert Comparison.objects.filter(project=project).count() == 100
    assert done.started_at <= done.finished_at
    # The stored upload is removed right after the job's commit (and its on-commit hooks).
    wait_for(lambda: not list((tmp_path / "imports").iterdir()), what="the upload removed")


@pytest.mark.slow
def test_a_failed_background_import_records_its_errors_and_writes_nothing(
    celery_worker_process, settings, tmp_path
):
    settings.IMPORT_DIR = tmp_path / "imports"
    project = ProjectFactory(slug="bg")
    job = import_job_create(
        project=project, stream=_lines(RICH, native("x", prompt="")), source_name="bad.jsonl"
    )

    done = wait_for(lambda: _finished(job.pk), what="the import job")

    assert done.status == "failed"
    assert done.errors == ["bad.jsonl:2: prompt: must not be empty"]
    assert done.error_count == 1
    assert not Comparison.objects.exists()


def test_a_finished_job_delivered_again_changes_nothing(project, settings, tmp_path):
    settings.IMPORT_DIR = tmp_path
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from django.db import transaction

    with transaction.atomic():
        job = import_job_create(project=project, stream=_lines(RICH), source_name="a.jsonl")
    first = import_job_run(job_id=job.pk)
    again = import_job_run(job_id=job.pk)

    assert first.status == again.status == "succeeded"
    assert again.summary == first.summary
    assert Comparison.objects.count() == 1


def test_llmbar_cannot_run_in_the_background(project):
    with pytest.raises(ValueError, match="run them inline"):
        import_job_create(
            project=project, stream=io.BytesIO(b"[]"), source_name="d.json", fmt="llmbar"
        )


def test_the_command_queues_and_reports_a_job(project, write_lines, settings, tmp_path):
    from django.core.management import call_command

    settings.IMPORT_DIR = tmp_path / "imports"
    out = io.StringIO()
    call_command(
        "import_comparisons",
        str(write_lines([RICH])),
        "--project",
        "proj",
        "--background",
        stdout=out,
    )
    job = ImportJob.objects.get()
    assert out.getvalue().strip() == f'{{"job":{job.pk},"status":"queued"}}'
    import_job_run(job_id=job.pk)
    status = io.StringIO()
    call_command("import_status", str(job.pk), stdout=status)
    assert '"status": "succeeded"' in status.getvalue()


def _queued(project, body: bytes, settings, tmp_path, name="up.jsonl") -> ImportJob:
    settings.IMPORT_DIR = tmp_path
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from django.db import transaction

    with transaction.atomic():
        return import_job_create(project=project, stream=io.BytesIO(body), source_name=name)


def test_a_value_the_database_cannot_hold_fails_the_job_with_its_line(project, settings, tmp_path):
    import json

    body = json.dumps(
        native("c1", human_labels=[{"annotator": "a", "overall": "A", "guidelines_version": 2**63}])
    ).encode()
    job = _queued(project, body + b"\n", settings, tmp_path)

    done = import_job_run(job_id=job.pk)

    assert done.status == "failed"
    assert done.errors == [
        "up.jsonl:1: human_labels[0].guidelines_version: must be an integer between 1 and "
        f"2147483647, not {2**63}"
    ]
    assert not list(tmp_path.iterdir())  # the upload and its .progress file are gone
    assert not Comparison.objects.exists()


def test_a_job_that_fails_unexpectedly_ends_failed_and_removes_its_upload(
    project, settings, tmp_path, monkeypatch
):
    job = _queued(project, _lines(RICH).getvalue(), settings, tmp_path)
    progress_seen = []

    def broken_import(**kwargs):
        kwargs["stream"].read(10)  # the progress file is written as the upload is read
        progress_seen.extend(p.name for p in tmp_path.iterdir())
        raise RuntimeError("a bug in the importer")

    monkeypatch.setattr("annotator.dataio.jobs.comparisons_import", broken_import)

    done = import_job_run(job_id=job.pk)

    assert any(name.endswith(".progress") for name in progress_seen)
    done.refresh_from_db()
    assert done.status == "failed"
    assert done.is_finished and done.finished_at is not None
    assert done.errors == ["up.jsonl: the import failed: RuntimeError: a bug in the importer"]
    assert done.error == done.errors[0]
    assert not list(tmp_path.iterdir())
    assert not Comparison.objects.exists()


def test_a_gzip_bomb_fails_the_job_at_its_line(project, settings, tmp_path):
    import gzip

    settings.IMPORT_MAX_DECOMPRESSED_BYTES = 1000
    body = gzip.compress(b'{"external_id": "x", "prompt": "' + b"p" * 10**6 + b'"}\n')
    job = _queued(project, body, settings, tmp_path, name="bomb.jsonl.gz")

    done = import_job_run(job_id=job.pk)

    assert done.status == "failed"
    assert done.errors == [
        "bomb.jsonl.gz:1: (file): the input is over 1000 bytes once decompressed "
        "(IMPORT_MAX_DECOMPRESSED_BYTES); stopped reading here"
    ]
    assert not list(tmp_path.iterdir())
