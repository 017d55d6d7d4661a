"""/healthz and /readyz, and request ids in logs and responses.

The outage tests run a real gunicorn against a PostgreSQL cluster and a Redis server that they
start, stop and start again themselves (never the machine's shared ones)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServer:
    """A throwaway redis-server on its own port, in the foreground so that we own its process."""

    def __init__(self, directory: Path):
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, what="the temporary redis-server")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.process)


def _postgres_bin() -> Path | None:
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(bindir) if (Path(bindir) / "initdb").exists() else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb) on its own port. PostgreSQL refuses to run as root,
    so as root the cluster belongs to the `postgres` system user."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="readyz-pg-"))
        self.data = self.directory / "data"
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *map(str, args)],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", self.data, "-o", options, "-l", self.directory / "log", "-w", "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_site(tmp_path_factory):
    """gunicorn on a temporary PostgreSQL cluster and a temporary Redis (broker and cache)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH to stop and restart a broker")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (pg_config --bindir) for a cluster")
    directory = tmp_path_factory.mktemp("outage")
    redis, postgres = RedisServer(directory), PostgresCluster(bindir)
    redis.start()
    postgres.start()
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "SECRET_KEY": "readyz-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": postgres.url,
        "CELERY_BROKER_URL": redis.url(0),
        "CACHE_URL": redis.url(1),  # a shared cache is checked too
        "DB_CONNECT_TIMEOUT": "2",
        "VAR_DIR": str(directory / "var"),
    }
    log_path = directory / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config=python:config.gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "2",
                "--worker-class",
                "gthread",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    site = type("Site", (), {})()
    site.base, site.redis, site.postgres, site.log_path = (
        f"http://127.0.0.1:{port}",
        redis,
        postgres,
        log_path,
    )

    def up():
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{log_path.read_text()}")
        try:
            return httpx.get(site.base + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=60, what="gunicorn")
        yield site
    finally:
        _stop(server)
        redis.stop()
        postgres.remove()


def _json_lines(text: str) -> list[dict]:
    """The JSON log lines of a log (a line still being written is left for the next read)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def _readyz(site) -> tuple[int, dict]:
    response = httpx.get(site.base + "/readyz", timeout=15)
    return response.status_code, response.json()


def test_readyz_fails_while_redis_is_down_and_recovers_when_it_is_back(outage_site):
    assert _readyz(outage_site) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}},
    )

    outage_site.redis.stop()
    status, body = _readyz(outage_site)
    assert status == 503
    assert body == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable", "cache": "unavailable"},
    }

    outage_site.redis.start()
    assert _readyz(outage_site)[0] == 200


def test_readyz_fails_while_postgresql_is_down_and_recovers_when_it_is_back(outage_site):
    assert _readyz(outage_site)[0] == 200  # also opens the persistent database connection

    outage_site.postgres.stop()
    status, body = _readyz(outage_site)
    assert status == 503
    assert body["checks"] == {"database": "unavailable", "broker": "ok", "cache": "ok"}
    # The liveness probe does not depend on the database.
    assert httpx.get(outage_site.base + "/healthz", timeout=5).status_code == 200

    outage_site.postgres.start()
    assert _readyz(outage_site) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}},
    )


def test_the_log_says_why_a_check_failed_and_the_response_does_not(outage_site):
    outage_site.redis.stop()
    try:
        status, body = _readyz(outage_site)
    finally:
        outage_site.redis.start()
    assert status == 503
    assert str(outage_site.redis.port) not in json.dumps(body)
    lines = _json_lines(outage_site.log_path.read_text())
    failures = [line for line in lines if "readiness check broker failed" in line["event"]]
    assert failures and failures[-1]["level"] == "warning"


def test_every_response_carries_the_request_id_of_its_log_lines(outage_site):
    response = httpx.get(outage_site.base + "/accounts/login/", timeout=10)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]

    def finished_line():
        lines = _json_lines(outage_site.log_path.read_text())
        return next(
            (
                line
                for line in lines
                if line.get("request_id") == request_id and line["event"] == "request_finished"
            ),
            None,
        )

    finished = wait_for(finished_line, timeout=10, what="the request's log line")
    assert finished["code"] == 200
    assert finished["request"] == "GET /accounts/login/"
    # Another request, another id.
    assert httpx.get(outage_site.base + "/accounts/login/").headers["X-Request-ID"] != request_id


def test_the_server_logs_nothing_but_json_lines(outage_site):
    httpx.get(outage_site.base + "/accounts/login/", timeout=10)
    lines = outage_site.log_path.read_text().splitlines()
    assert any("Booting worker" in line for line in lines)  # gunicorn's own lines too
    assert [line for line in lines[:-1] if not line.startswith("{")] == []
    assert len(_json_lines("\n".join(lines[:-1]))) == len(lines) - 1


def test_probes_answer_any_host_over_plain_http(client, settings, db):
    # A container's health check calls it by address; behind a TLS proxy the app redirects http.
    settings.ALLOWED_HOSTS = ["prefs.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.1.2.3:8000")
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store"
    assert client.get("/healthz").json() == {"status": "ok"}
    # Everything else still gets the host check and the redirect.
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    redirect = client.get("/accounts/login/", HTTP_HOST="prefs.example.org")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://prefs.example.org/accounts/login/"


def test_readyz_is_ready_on_the_configured_database_and_broker(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_liveness_does_not_touch_the_database(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200
