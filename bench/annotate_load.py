"""Annotation load: many annotators labelling at once over HTTP, on PostgreSQL.

Recreates a database, imports N human-routed comparisons (3 labels wanted each), creates the
annotators, starts gunicorn on a free loopback port and runs simulated annotators, each with its own
HTTP client and cookie jar: log in through the login form, then loop "next" (GET the annotate page
as htmx does, which leases a comparison) and "submit" (POST a label as a plain form, answered with a
302). Afterwards it checks the assignment invariants in the database.

    python bench/annotate_load.py                 # 100,000 comparisons, 50 annotators, 60 s,
                                                  # think time 1000-3000 ms per item
    python bench/annotate_load.py --think-ms 0    # closed loop (stress): no think time
    python bench/annotate_load.py --quick         # under a minute, same output shape
    python bench/annotate_load.py --annotators 10 --seconds 120 --workers 3 --threads 4 \\
        --comparisons 20000 --database-url postgres://postgres@127.0.0.1:5432/other

Think time: a person reads a prompt and two responses before answering; 1-3 s per item (uniform)
is faster than anybody reads two responses carefully, so it loads the server harder than real
annotators would while keeping their request pattern (a pause between next and submit). Each client
also starts at a random moment within the first think interval, so that the first requests do not
all arrive in the same millisecond. `--think-ms 0` drops think time: every client sends its next
request as soon as the previous answer arrives (a closed loop measuring capacity, not experience).

Settings as in production (DEBUG off, login throttling on), except that cookies are not marked
Secure (plain HTTP on loopback). DJANGO_SETTINGS_MODULE, when set, is passed on to the children.

The last line printed is one JSON object with the figures.
"""

import argparse
import asyncio
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hybrid_prefs_load"
SLUG = "load"
LABELS_PER_ITEM = 3
PASSWORD = "load-bench-password-7"  # one known password for every simulated annotator
# Label Studio 1.23.2 on this kind of machine (docs/architecture.md, "What other tools do"), for
# context only: next-task p95 with annotate loops on PostgreSQL (no duplicates there; on SQLite
# it handed items twice).
LABEL_STUDIO = {
    "postgresql_next_task_p95_ms": {"1_client": 500, "10_clients": 900, "50_clients": 4800},
    "sqlite_next_task_p95_ms": {"1_client": 195, "10_clients": 4300, "50_clients": 43000},
    "sqlite_annotations_per_s": {"1_client": 13, "10_clients": 19},
}
LEASE_RE = re.compile(rf'action="(/p/{SLUG}/leases/(\d+)/label/)"')
NOTHING_LEFT = "Nothing is waiting for you"


# --- setup ------------------------------------------------------------------------------------


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _child_env(url: str, var_dir: Path) -> dict:
    """Production-like settings for every child (commands and the server) on plain loopback HTTP."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DEBUG" and not key.startswith("AXES_")  # login throttling at its defaults
    }
    env.update(
        DATABASE_URL=url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-not-secret"),
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        ALLOWED_HOSTS="127.0.0.1",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        LOG_LEVEL="WARNING",
        VAR_DIR=str(var_dir),  # keeps the filesystem broker and keys out of the checkout's var/
    )
    return env


def _python(args: list[str], env: dict) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)[:80]} failed:\n{result.stderr}")
    return result.stdout


def _write_input(path: Path, n: int) -> None:
    """Native JSON Lines: human-routed comparisons without labels (the synthetic generator's
    texts, about 60 words per response)."""
    from annotator.dataio.synthetic import synthetic_records

    with path.open("wb") as out:
        for record in synthetic_records(n, seed=11, human_labels=0, lm_labels=0):
            del record["human_labels"], record["lm_labels"]
            record["route"] = "human"
            out.write(orjson.dumps(record) + b"\n")


USERS_CODE = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from annotator.models import Project, Role
from annotator.services import membership_set

User = get_user_model()
Project.objects.filter(slug=SLUG).update(labels_per_item=LABELS_PER_ITEM)
project = Project.objects.get(slug=SLUG)
hashed = make_password(PASSWORD)  # hashed once: the same password for everybody
users = User.objects.bulk_create(
    [User(username=f"annotator-{i:03d}", password=hashed) for i in range(N)]
)
for user in users:
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
print(len(users))
"""


def _create_annotators(n: int, env: dict) -> list[str]:
    constants = (
        f"SLUG, LABELS_PER_ITEM, PASSWORD, N = {SLUG!r}, {LABELS_PER_ITEM}, {PASSWORD!r}, {n}"
    )
    _python(["-c", constants + USERS_CODE], env)
    return [f"annotator-{i:03d}" for i in range(n)]


def _analyze(url: str) -> None:
    """What autovacuum does within a minute of a bulk load; done now for repeatable plans."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(env: dict, port: int, workers: int, threads: int, log) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={workers}",
        f"--threads={threads}",
        "--worker-class=gthread",
        "--keep-alive=5",  # longer than the think time, as a proxy in front would keep them
        "--log-level=warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def _wait_until_up(
    base: str, server: subprocess.Popen, log_path: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(base + "/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer in {timeout:.0f} s:\n{log_path.read_text()}")


def _stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.terminate()  # the master stops its workers gracefully
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(server.pid).children(recursive=True):
            child.kill()
        server.kill()
        server.wait()


class CpuWatch:
    """CPU seconds used by the server's processes and by the PostgreSQL backends of the
    benchmark's database (not other databases on a shared server). Sampled every second:
    backends come and go with connections, so one that exits loses at most its last second."""

    def __init__(self, server: subprocess.Popen, database: str) -> None:
        self.master = psutil.Process(server.pid)
        self.marker = f" {database} "  # backends are titled "postgres: ... USER DB HOST idle"
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}

    def sample(self) -> None:
        processes = [("server", p) for p in (self.master, *self.master.children(recursive=True))]
        for process in psutil.process_iter(["name", "cmdline"]):
            title = " ".join(process.info["cmdline"] or [])
            if process.info["name"] == "postgres" and self.marker in title:
                processes.append(("database", process))
        baseline = not self.last  # the first sample; processes that start later count from 0
        for role, process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            key = (role, process.pid)
            self.first.setdefault(key, times.user + times.system if baseline else 0.0)
            self.last[key] = times.user + times.system

    def used(self, role: str) -> float:
        return sum(s - self.first[key] for key, s in self.last.items() if key[0] == role)


# --- the simulated annotators -----------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.submits = 0
        self.errors: Counter[str] = Counter()
        self.finished_queue = 0  # clients told that nothing is left for them
        self.loop_lag_ms: list[float] = []


def _think_seconds(think: tuple[int, int]) -> float:
    low, high = think
    return random.uniform(low, high) / 1000 if high else 0.0


async def _login(client: httpx.AsyncClient, username: str, stats: Stats) -> bool:
    try:
        await client.get("/accounts/login/")
        response = await client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
                "next": f"/p/{SLUG}/",
            },
            headers={"Referer": f"{client.base_url}accounts/login/"},
        )
    except httpx.HTTPError as error:
        stats.errors[f"login {type(error).__name__}"] += 1
        return False
    if response.status_code != 302 or "sessionid" not in client.cookies:
        stats.errors[f"login {response.status_code}"] += 1
        return False
    return True


async def _request(client, method, url, stats: Stats, kind: str, **kwargs):
    """One timed request; None (and an error counted) on a timeout or a broken connection."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        stats.errors[f"{kind} timeout"] += 1
        return None
    except httpx.HTTPError as error:
        stats.errors[f"{kind} {type(error).__name__}"] += 1
        return None
    elapsed_ms = (time.perf_counter() - started) * 1000
    (stats.next_ms if kind == "next" else stats.submit_ms).append(elapsed_ms)
    return response


async def _annotate(
    client: httpx.AsyncClient, stats: Stats, deadline: float, think: tuple[int, int]
) -> None:
    annotate_url = f"/p/{SLUG}/annotate/"
    failures_in_a_row = 0
    if think[1]:
        await asyncio.sleep(random.uniform(0, think[1] / 1000))  # spread the first requests
    while time.perf_counter() < deadline and failures_in_a_row < 20:
        response = await _request(
            client, "GET", annotate_url, stats, "next", headers={"HX-Request": "true"}
        )
        if response is None or response.status_code != 200:
            if response is not None:
                stats.errors[f"next {response.status_code}"] += 1
            failures_in_a_row += 1
            await asyncio.sleep(0.2)
            continue
        found = LEASE_RE.search(response.text)
        if found is None:
            if NOTHING_LEFT in response.text:
                stats.finished_queue += 1
            else:
                stats.errors["next without a comparison (refused)"] += 1
            return
        shown = time.perf_counter()
        pause = _think_seconds(think)
        if shown + pause >= deadline:
            return  # the lease stays open, as when a person closes the tab
        await asyncio.sleep(pause)
        response = await _request(
            client,
            "POST",
            found.group(1),
            stats,
            "submit",
            data={
                "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
                "overall": str(random.randint(1, 5)),
                "time_spent_s": f"{time.perf_counter() - shown:.3f}",
            },
            headers={"Referer": f"{client.base_url}p/{SLUG}/annotate/"},
        )
        if response is None:
            failures_in_a_row += 1
            continue
        location = response.headers.get("location", "")
        if response.status_code == 302 and location.endswith(annotate_url):
            stats.submits += 1
            failures_in_a_row = 0
        else:
            stats.errors[f"submit {response.status_code}"] += 1
            failures_in_a_row += 1


async def _watch(stats: Stats, cpu: CpuWatch, deadline: float) -> None:
    """How late this process's event loop wakes up (client-side delay that is included in the
    latencies), and a CPU sample every second."""
    ticks = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        stats.loop_lag_ms.append((time.perf_counter() - started - 0.05) * 1000)
        ticks += 1
        if ticks % 20 == 0:
            cpu.sample()


async def _run_clients(
    base: str, usernames: list[str], seconds: float, think: tuple[int, int], cpu: CpuWatch
) -> tuple[Stats, dict]:
    stats = Stats()
    timeout = httpx.Timeout(30.0, connect=10.0)
    clients = [httpx.AsyncClient(base_url=base, timeout=timeout) for _ in usernames]
    try:
        # Everybody logs in first (password hashing is deliberately slow), outside the window.
        logged_in = await asyncio.gather(
            *(_login(c, u, stats) for c, u in zip(clients, usernames, strict=True))
        )
        working = [c for c, ok in zip(clients, logged_in, strict=True) if ok]
        if not working:
            raise SystemExit(f"no annotator could log in: {dict(stats.errors)}")
        psutil.cpu_percent()  # starts the machine-wide measurement
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        cpu.sample()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            _watch(stats, cpu, deadline),
            *(_annotate(c, stats, deadline, think) for c in working),
        )
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.sample()
        usage = {
            "elapsed_s": elapsed,
            "logged_in": len(working),
            "client_cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime)
            - (cpu_before.ru_utime + cpu_before.ru_stime),
            "server_cpu_s": cpu.used("server"),
            "database_cpu_s": cpu.used("database"),
            "machine_cpu_busy_pct": psutil.cpu_percent(),
        }
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return stats, usage


# --- invariants -------------------------------------------------------------------------------

# Each query counts breaking rows in the benchmark's project; every count must be 0.
INVARIANTS = {
    # More human labels on a comparison than the project wants.
    "over_labelled": """
        SELECT count(*) FROM (
            SELECT c.id FROM annotator_comparison c
            JOIN annotator_project p ON p.id = c.project_id
            JOIN annotator_humanlabel h ON h.comparison_id = c.id
            WHERE p.slug = %(slug)s
            GROUP BY c.id, p.labels_per_item HAVING count(*) > p.labels_per_item) broken""",
    # The same annotator twice on one comparison.
    "duplicate_pairs": """
        SELECT count(*) FROM (
            SELECT h.comparison_id, h.annotator_id FROM annotator_humanlabel h
            JOIN annotator_comparison c ON c.id = h.comparison_id
            JOIN annotator_project p ON p.id = c.project_id
            WHERE p.slug = %(slug)s AND h.annotator_id IS NOT NULL
            GROUP BY 1, 2 HAVING count(*) > 1) broken""",
    # Labels plus open leases above what is wanted: a comparison handed out too often.
    "over_assigned": """
        SELECT count(*) FROM annotator_comparison c
        JOIN annotator_project p ON p.id = c.project_id
        WHERE p.slug = %(slug)s AND c.slots_taken > p.labels_per_item""",
    # A label accepted on a lease that had already expired.
    "accepted_after_expiry": """
        SELECT count(*) FROM annotator_lease l
        JOIN annotator_project p ON p.id = l.project_id
        WHERE p.slug = %(slug)s AND l.outcome = 'submitted' AND l.finished_at > l.expires_at""",
    # A lease marked submitted whose label is missing.
    "submitted_without_label": """
        SELECT count(*) FROM annotator_lease l
        JOIN annotator_project p ON p.id = l.project_id
        WHERE p.slug = %(slug)s AND l.outcome = 'submitted' AND NOT EXISTS (
            SELECT 1 FROM annotator_humanlabel h
            WHERE h.comparison_id = l.comparison_id AND h.annotator_id = l.annotator_id)""",
    # More than one open lease for one annotator.
    "open_leases_per_annotator": """
        SELECT count(*) FROM (
            SELECT l.annotator_id FROM annotator_lease l
            JOIN annotator_project p ON p.id = l.project_id
            WHERE p.slug = %(slug)s AND l.finished_at IS NULL
            GROUP BY 1 HAVING count(*) > 1) broken""",
    # The counters the queue trusts: labels_done = labels, slots_taken = labels + open leases.
    "counters_out_of_step": """
        WITH labels AS (
            SELECT comparison_id, count(*) AS n FROM annotator_humanlabel GROUP BY 1),
        open_leases AS (
            SELECT comparison_id, count(*) AS n FROM annotator_lease
            WHERE finished_at IS NULL AND purpose = 'label' GROUP BY 1)
        SELECT count(*) FROM annotator_comparison c
        JOIN annotator_project p ON p.id = c.project_id
        LEFT JOIN labels ON labels.comparison_id = c.id
        LEFT JOIN open_leases ON open_leases.comparison_id = c.id
        WHERE p.slug = %(slug)s AND (
            c.labels_done <> coalesce(labels.n, 0)
            OR c.slots_taken <> c.labels_done + coalesce(open_leases.n, 0))""",
}


def _check_invariants(url: str) -> tuple[dict, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        broken = {
            name: conn.execute(sql, {"slug": SLUG}).fetchone()[0]
            for name, sql in INVARIANTS.items()
        }
        labels = conn.execute(
            "SELECT count(*) FROM annotator_humanlabel WHERE annotator_id IS NOT NULL"
        ).fetchone()[0]
    return broken, labels


# --- report -----------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; NaN when there is nothing to measure."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _parse_think(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    think = (int(low), int(high or low))
    if think[0] < 0 or think[1] < think[0]:
        raise argparse.ArgumentTypeError(f"--think-ms wants MS or LOW-HIGH, not {text!r}")
    return think


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"  # no user or password


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--think-ms",
        type=_parse_think,
        default=(1000, 3000),
        help="think time per item: MS or LOW-HIGH (uniform); 0 = closed loop (default 1000-3000)",
    )
    # 2 cores: 3 processes keep both cores busy while one waits on PostgreSQL (which, with the
    # load generator, shares the same 2 cores); 4 threads each overlap database waits and row
    # locks without the GIL dominating. 12 requests at once means 12 database connections (kept
    # by CONN_MAX_AGE), far below max_connections; more processes would only fight PostgreSQL
    # for the same cores.
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if args.quick:
        args.comparisons, args.annotators, args.seconds = 5_000, 10, 15
    think = args.think_ms
    mode = "think-time" if think[1] else "closed-loop (stress)"
    think_text = f"{think[0]}-{think[1]}" if think[0] != think[1] else str(think[0])
    server_config = f"gunicorn gthread, {args.workers} workers x {args.threads} threads"

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        env = _child_env(args.database_url, Path(tmp) / "var")
        os.environ.setdefault("SECRET_KEY", env["SECRET_KEY"])
        started = time.perf_counter()
        _recreate_database(args.database_url)
        _python(["manage.py", "migrate", "--no-input", "-v", "0"], env)
        source = Path(tmp) / "comparisons.jsonl"
        _write_input(source, args.comparisons)
        summary = _python(
            ["manage.py", "import_comparisons", str(source), "--project", SLUG, "--create-project"],
            env,
        )
        created = json.loads(summary.strip().splitlines()[-1])["created"]
        if created != args.comparisons:
            raise SystemExit(f"imported {created} comparisons, wanted {args.comparisons}")
        usernames = _create_annotators(args.annotators, env)
        _analyze(args.database_url)
        print(
            f"setup: {created:,} human-routed comparisons ({LABELS_PER_ITEM} labels wanted each), "
            f"{len(usernames)} annotators, in {time.perf_counter() - started:.0f} s"
        )

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "gunicorn.log"
        with log_path.open("wb") as log:
            server = _start_server(env, port, args.workers, args.threads, log)
            try:
                _wait_until_up(base, server, log_path)
                print(
                    f"run: {mode}, think {think_text} ms per item, {args.seconds:.0f} s, "
                    f"{server_config}, PostgreSQL {_where(args.database_url)}"
                )
                cpu = CpuWatch(server, args.database_url.rsplit("/", 1)[1])
                stats, usage = asyncio.run(_run_clients(base, usernames, args.seconds, think, cpu))
            finally:
                _stop_server(server)
        server_log = log_path.read_text().strip()

    violations_by_check, labels_in_db = _check_invariants(args.database_url)
    violations = sum(violations_by_check.values())
    errors = sum(stats.errors.values())
    figures = {
        "next": stats.next_ms,
        "submit": stats.submit_ms,
    }
    print()
    print(f"{'request':<8} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in figures.items():
        print(
            f"{kind:<8} {len(values):>7} {_percentile(values, 0.5):>8.1f} "
            f"{_percentile(values, 0.95):>8.1f} {_percentile(values, 0.99):>8.1f} "
            f"{max(values, default=float('nan')):>8.1f}"
        )
    submits_per_s = stats.submits / usage["elapsed_s"]
    print()
    print(
        f"submits {stats.submits} ({submits_per_s:.1f}/s), labels in the database {labels_in_db}, "
        f"errors {errors} {dict(stats.errors) if errors else ''}"
    )
    print(
        f"annotators {usage['logged_in']} logged in of {args.annotators}, "
        f"{stats.finished_queue} ran out of comparisons; mode {mode}, think {think_text} ms"
    )
    print(f"server {server_config}")
    print(
        f"cpu over {usage['elapsed_s']:.0f} s: machine {usage['machine_cpu_busy_pct']:.0f}% busy, "
        f"server {usage['server_cpu_s']:.1f} s, PostgreSQL {usage['database_cpu_s']:.1f} s, "
        f"load generator {usage['client_cpu_s']:.1f} s "
        f"(its event loop p95 lag {_percentile(stats.loop_lag_ms, 0.95):.1f} ms)"
    )
    print(f"invariant violations {violations}: {violations_by_check}")
    print(
        "Label Studio on PostgreSQL, same kind of machine: next-task p95 500 / 900 / 4,800 ms "
        "at 1 / 10 / 50 clients (docs/architecture.md, 'What other tools do')"
    )
    if server_log:
        print(f"server log:\n{server_log[-2000:]}")

    def ms(values: list[float], q: float) -> float | None:
        return round(_percentile(values, q), 1) if values else None

    results = {
        "p50_next_ms": ms(stats.next_ms, 0.5),
        "p95_next_ms": ms(stats.next_ms, 0.95),
        "p99_next_ms": ms(stats.next_ms, 0.99),
        "p50_submit_ms": ms(stats.submit_ms, 0.5),
        "p95_submit_ms": ms(stats.submit_ms, 0.95),
        "p99_submit_ms": ms(stats.submit_ms, 0.99),
        "next_requests": len(stats.next_ms),
        "submits": stats.submits,
        "submits_per_s": round(submits_per_s, 2),
        "labels_in_db": labels_in_db,
        "errors": errors,
        "errors_by_kind": dict(stats.errors),
        "violations": violations,
        "violations_by_check": violations_by_check,
        "annotators": args.annotators,
        "annotators_logged_in": usage["logged_in"],
        "comparisons": args.comparisons,
        "labels_per_item": LABELS_PER_ITEM,
        "think_ms": think_text,
        "mode": "think" if think[1] else "closed-loop",
        "seconds": args.seconds,
        "elapsed_s": round(usage["elapsed_s"], 1),
        "server": {"workers": args.workers, "threads": args.threads, "worker_class": "gthread"},
        "machine_cpu_busy_pct": round(usage["machine_cpu_busy_pct"], 1),
        "server_cpu_s": round(usage["server_cpu_s"], 1),
        "database_cpu_s": round(usage["database_cpu_s"], 1),
        "client_cpu_s": round(usage["client_cpu_s"], 1),
        "client_loop_lag_p95_ms": ms(stats.loop_lag_ms, 0.95),
        "label_studio_reference": LABEL_STUDIO,
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
