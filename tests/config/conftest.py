"""A gunicorn on services the tests own: a PostgreSQL cluster and a Redis server that they start,
stop and start again (never the machine's shared ones)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Site:
    base: str  # http://127.0.0.1:PORT
    redis: RedisServer  # the broker (DB 0) and the shared cache (DB 1)
    postgres: PostgresCluster
    log_path: Path  # gunicorn's standard output and error


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Site]:
    """gunicorn on a temporary PostgreSQL cluster and a temporary Redis (broker and cache). Tests
    that stop a service start it again before they end."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH to stop and restart a broker")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (pg_config --bindir) for a cluster")
    directory = tmp_path_factory.mktemp("served")
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
    site = Site(f"http://127.0.0.1:{port}", redis, postgres, directory / "gunicorn.log")
    with site.log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                *f"gunicorn --config=python:config.gunicorn config.wsgi:application "
                f"--bind=127.0.0.1:{port} --workers=1 --threads=2 --worker-class=gthread".split(),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def up():
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{site.log_path.read_text()}")
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


def json_lines(text: str) -> list[dict]:
    """The JSON log lines of a log (a line still being written is left for the next read)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines
