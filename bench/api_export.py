"""REST export over HTTP: gunicorn on PostgreSQL, TRL and full exports of N labelled comparisons.

Generates N synthetic comparisons (3 human + 2 LM labels each, as bench/import_export.py) and loads
them with `import_comparisons` from a pipe, creates an API token, starts gunicorn on a free
loopback port with production settings, downloads `export.jsonl?format=trl` and `?format=full` with
httpx (streamed, counting rows as they arrive) and samples the RSS of the whole gunicorn process
tree (master and workers) every 50 ms.

    python bench/api_export.py [--n 1000000] [--quick] [--reuse] [--database-url URL]

`--reuse` keeps the database when it already holds the N comparisons (loading 1M takes minutes).
The last line printed is one JSON object with the figures.
"""

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/api_export_bench"
TARGET_ROWS_PER_S = 20_000
TARGET_RSS_MB = 300
# Other tools' figures beside ours: bench/README.md, (docs/architecture.md, "What other tools do").


def _database_exists_with(url: str, n: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM annotator_comparison c JOIN annotator_project p "
                "ON p.id = c.project_id WHERE p.slug = 'bench'"
            ).fetchone()
            return row[0] == n
    except psycopg.Error:
        return False


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _manage(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        **kwargs,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr.decode()[-3000:]}")
    return result


def _load(n: int, env: dict) -> float:
    """Generate the records into import_comparisons' standard input; return seconds taken."""
    from annotator.dataio.synthetic import synthetic_jsonl

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_comparisons", "-", "--project", "bench"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    buffer = []
    for line in synthetic_jsonl(n, seed=1):
        buffer.append(line)
        if len(buffer) == 2000:
            process.stdin.write(b"".join(buffer))
            buffer = []
    process.stdin.write(b"".join(buffer))
    process.stdin.close()
    stderr = process.stderr.read().decode()
    if process.wait() != 0:
        raise SystemExit(f"import failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started


def _token(env: dict) -> str:
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from annotator.models import Project\n"
        "from annotator.services import membership_set\n"
        "user, _ = get_user_model().objects.get_or_create(username='bench-viewer')\n"
        "membership_set(project=Project.objects.get(slug='bench'), user=user, role='viewer')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    result = _manage(["create_api_token", "bench-viewer", "--name", "bench"], env)
    return result.stdout.decode().strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TreeRss:
    """Peak resident memory of a process and its children, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.05):
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.peak_total = self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        sizes = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes.append(process.memory_info().rss)
        self.peak_total = max(self.peak_total, sum(sizes))
        self.peak_single = max(self.peak_single, max(sizes, default=0))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def reset(self) -> None:
        self._sample()
        self.peak_total = self.peak_single = 0
        self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _download(base: str, token: str, fmt: str) -> tuple[int, int, float]:
    """(rows, bytes, seconds) of one streamed export, read chunk by chunk."""
    import httpx

    rows = size = 0
    started = time.perf_counter()
    with (
        httpx.Client(timeout=httpx.Timeout(60.0, read=600.0)) as client,
        client.stream(
            "GET",
            f"{base}/api/v1/projects/bench/export.jsonl",
            params={"format": fmt},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        if response.status_code != 200:
            response.read()
            raise SystemExit(f"export {fmt}: HTTP {response.status_code}: {response.text[:500]}")
        for chunk in response.iter_raw(1 << 16):
            rows += chunk.count(b"\n")
            size += len(chunk)
    return rows, size, time.perf_counter() - started


def _command_export(fmt: str, env: dict) -> tuple[int, float]:
    """The same export by `export_dataset` to a file, in the same run: (rows, seconds). It tells
    what HTTP adds, and how busy the machine was, beside the download figures."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        out = Path(tmp) / f"{fmt}.jsonl"
        result = _manage(
            ["export_dataset", "--project", "bench", "--format", fmt, "--output", str(out)], env
        )
        with out.open("rb") as stream:
            rows = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    timed = re.findall(r" in ([0-9.]+)s$", result.stderr.decode(), re.M)
    return rows, float(timed[-1])


def _wait_ready(base: str, token: str, process: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            response = httpx.get(
                f"{base}/api/v1/projects/bench/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="comparisons to generate")
    parser.add_argument("--quick", action="store_true", help="20,000 comparisons, under a minute")
    parser.add_argument("--reuse", action="store_true", help="keep a database that has N rows")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--no-command-baseline", action="store_true", help="skip the export_dataset comparison"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if args.quick:
        args.n = 20_000

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Every request of the benchmark comes from one token.
        "API_TOKEN_THROTTLE_RATE": "100000/min",
    }
    os.environ.setdefault("SECRET_KEY", "bench-only")
    results: dict = {"rows": args.n}
    if args.reuse and _database_exists_with(args.database_url, args.n):
        print(f"reusing {args.n} comparisons in {args.database_url.rsplit('/', 1)[1]}")
        _manage(["migrate", "--no-input", "-v", "0"], env)
    else:
        _recreate_database(args.database_url)
        _manage(["migrate", "--no-input", "-v", "0"], env)
        _manage(
            [
                "shell",
                "-c",
                "from annotator.services import project_create; "
                "project_create(slug='bench', license='CC-BY-4.0')",
            ],
            env,
        )
        seconds = _load(args.n, env)
        results["load_seconds"] = round(seconds, 1)
        print(f"loaded {args.n} comparisons (3 human + 2 LM labels each) in {seconds:.1f} s")
    token = _token(env)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(args.threads),
            "--timeout",
            "0",  # a long download is not a stuck worker
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_ready(base, token, gunicorn)
        with TreeRss(gunicorn.pid) as rss:
            idle_mb = rss.root.memory_info().rss / 2**20
            total_started = time.perf_counter()
            for fmt in ("trl", "full"):
                rss.reset()
                rows, size, seconds = _download(base, token, fmt)
                time.sleep(0.1)  # one more sample after the last byte
                results[f"{fmt}_rows"] = rows
                results[f"{fmt}_seconds"] = round(seconds, 2)
                results[f"{fmt}_rows_per_s"] = round(rows / seconds, 1)
                results[f"{fmt}_comparisons_per_s"] = round(args.n / seconds, 1)
                results[f"{fmt}_mb"] = round(size / 2**20, 1)
                results[f"{fmt}_server_peak_rss_mb"] = round(rss.peak_total / 2**20, 1)
                peak, single = rss.peak_total / 2**20, rss.peak_single / 2**20
                print(
                    f"{fmt:<4} {rows:>9} rows  {size / 2**20:8.1f} MB  {seconds:7.1f} s  "
                    f"{rows / seconds:9.0f} rows/s  server peak RSS {peak:6.1f} MB"
                    f" (largest process {single:.1f} MB)"
                )
            total = time.perf_counter() - total_started
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)

    if not args.no_command_baseline:
        for fmt in ("trl", "full"):
            rows, seconds = _command_export(fmt, env)
            results[f"command_{fmt}_rows_per_s"] = round(rows / seconds, 1)
            results[f"http_vs_command_{fmt}"] = round(
                results[f"{fmt}_rows_per_s"] / results[f"command_{fmt}_rows_per_s"], 3
            )
            print(f"export_dataset {fmt:<4} (same data, to a file): {rows / seconds:9.0f} rows/s")
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    results["total_seconds"] = round(total, 2)
    results["server_peak_rss_mb"] = max(
        results["trl_server_peak_rss_mb"], results["full_server_peak_rss_mb"]
    )
    results["server_idle_rss_mb"] = round(idle_mb, 1)
    results["gunicorn"] = f"{args.workers} worker(s) x {args.threads} threads (gthread)"
    results["targets_met"] = {
        "trl_rows_per_s": results["trl_rows_per_s"] >= TARGET_ROWS_PER_S,
        "full_rows_per_s": results["full_rows_per_s"] >= TARGET_ROWS_PER_S,
        "server_peak_rss_mb": results["server_peak_rss_mb"] < TARGET_RSS_MB,
    }
    print(f"total download time {total:.1f} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
