import gzip
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotator.dataio.importer import comparisons_import
from annotator.models import Comparison, HumanLabel, LMLabel
from tests.factories import ProjectFactory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def child_env(**extra) -> dict:
    """Environment for a child process (the CLI, a Celery worker) that uses this test's database."""
    from django.db import connection

    keep = {"PATH", "HOME", "LANG", "VAR_DIR", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        env["DATABASE_URL"] = f"postgres://{db['USER'] or ''}@{host}:{port}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    env.update(extra)
    return env


@pytest.fixture
def project(db):
    return ProjectFactory(slug="proj", name="Project")


@pytest.fixture
def other_project(db):
    return ProjectFactory(slug="other", name="Other project")


@pytest.fixture
def write_lines(tmp_path):
    """Write records (dicts are JSON-encoded, strings written as they are) to a file."""

    def write(records, name="data.jsonl", compress=False) -> Path:
        body = b"".join(
            (r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records
        )
        path = tmp_path / name
        path.write_bytes(gzip.compress(body) if compress else body)
        return path

    return write


@pytest.fixture
def load_records():
    """Import records (dicts in the native format) into a project through the service."""

    def load(project, records) -> None:
        body = b"".join(orjson.dumps(r) + b"\n" for r in records)
        comparisons_import(project=project, stream=io.BytesIO(body), source_name="test.jsonl")

    return load


class ImportResult:
    def __init__(self, ok: bool, stdout: str, stderr: str, error: str = ""):
        self.ok, self.stdout, self.stderr, self.error = ok, stdout, stderr, error

    @property
    def summary(self) -> dict:
        return orjson.loads(self.stdout.strip().splitlines()[-1])

    @property
    def error_lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


@pytest.fixture
def run_import(db):
    """Run the import_comparisons command the way a user does; never raises."""

    def run(path, *, project="proj", **options) -> ImportResult:
        out, err = io.StringIO(), io.StringIO()
        args = [str(path), "--project", project]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        try:
            call_command("import_comparisons", *args, stdout=out, stderr=err)
        except CommandError as exc:
            return ImportResult(False, out.getvalue(), err.getvalue(), str(exc))
        return ImportResult(True, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def run_export(db):
    def run(*, project="proj", format="full") -> bytes:
        out = io.StringIO()
        call_command(
            "export_dataset",
            "--project",
            project,
            "--format",
            format,
            stdout=out,
            stderr=io.StringIO(),
        )
        return out.getvalue().encode()

    return run


def command_output(name: str, *args) -> str:
    """Run a management command as a user does; what it printed."""
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def table_counts() -> tuple[int, int, int]:
    return Comparison.objects.count(), HumanLabel.objects.count(), LMLabel.objects.count()


@pytest.fixture
def start_celery_worker(transactional_db, tmp_path):
    """Start real Celery worker processes on the configured broker (files locally, Redis in CI),
    using this test's database; extra settings go in as environment variables. Tests that use it
    must commit what the worker should see. Every worker is stopped at the end."""
    from config.celery import app

    app.control.purge()  # messages left behind by an earlier, interrupted run
    started = []

    def start(**env) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "default,gpu",
                    "--pool=solo",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                    "--hostname",
                    f"test-{os.getpid()}-{len(started)}@%h",
                ],
                cwd=ROOT,
                env=child_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        process.log_path = log_path
        deadline = time.monotonic() + 60
        while b" ready." not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the Celery worker did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def celery_worker_process(start_celery_worker):
    """One real Celery worker process with the default settings."""
    return start_celery_worker()


def wait_for(predicate, *, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is slow on purpose; tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """Cached counts and throttles must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
