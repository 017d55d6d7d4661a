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
    python bench/annotate_load.py --live-policy   # the same load twice: without a routing
                                                  # policy, then while a live one runs
    python bench/annotate_load.py --annotators 10 --seconds 120 --workers 3 --threads 4 \\
        --comparisons 20000 --database-url postgres://postgres@127.0.0.1:5432/other

Think time: a person reads a prompt and two responses before answering; 1-3 s per item (uniform)
is faster than anybody reads two responses carefully, so it loads the server harder than real
annotators would while keeping their request pattern (a pause between next and submit). Each client
also starts at a random moment within the first think interval, so that the first requests do not
all arrive in the same millisecond. `--think-ms 0` drops think time: every client sends its next
request as soon as the previous answer arrives (a closed loop measuring capacity, not experience).

Live policy (`--live-policy`): after that run (the baseline), a second project of N comparisons
is imported pending, each with one label of its primary judge (p_a spread over 0-1, so the router
has something to fit) and stored text features (random values: a round reads what a real project
holds without computing embeddings). A live routing policy (routing.live) is created and started,
and a real Celery worker on the `default` queue (`--celery-concurrency`, default 1;
ROUTING_ROUND_DEBOUNCE_SECONDS=1 for it and for the web) runs its rounds while the same
annotators, logged in afresh, label that project for the same time. The clock starts once the
seed is released; from then on every label commit queues a round, which refits the router every
`refit_every` completed comparisons and releases a batch whenever fewer than a batch still wait
for labels (an annotator told that nothing is left retries a second later). The policy's sizes
follow the load (`_policy_sizes`). Broker: the filesystem broker under the run's own temporary
VAR_DIR (emptied before the worker starts), or CELERY_BROKER_URL when set (Redis database 15,
CI's, is refused). The JSON keeps the baseline's keys and adds `live_*` ones: the live run's
latencies, the rounds, refits and releases while annotators worked, its invariant violations (the
same checks, and: no comparison released twice, no human label beyond the budget or outside the
releases) and `live_p95_ratio` (live / baseline p95 of next). Both runs also report lock waits
(PostgreSQL backends of the benchmark's database waiting for a lock, sampled every second).

Settings as in production (DEBUG off, login throttling on), except that cookies are not marked
Secure (plain HTTP on loopback). DJANGO_SETTINGS_MODULE, when set, is passed on to the children.

The last line printed is one JSON object with the figures.
"""

import argparse
import ast
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
LIVE_SLUG = "live"  # the live-policy run's project
JUDGE = "judge-0"  # the synthetic records' first judge: the live project's primary judge
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
        # The live policy's debounce: the web queues a round this long after the labels that
        # asked for it (no effect without a running policy).
        ROUTING_ROUND_DEBOUNCE_SECONDS="1",
    )
    return env


def _python(args: list[str], env: dict) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)[:80]} failed:\n{result.stderr}")
    return result.stdout


def _write_input(path: Path, n: int, *, live: bool = False) -> None:
    """Native JSON Lines: human-routed comparisons without labels (the synthetic generator's
    texts, about 60 words per response); `live`: pending ones (other texts), each with one label
    of the primary judge (p_a, its two orders, position consistency)."""
    from annotator.dataio.synthetic import synthetic_records

    records = synthetic_records(n, seed=12 if live else 11, human_labels=0, lm_labels=int(live))
    with path.open("wb") as out:
        for record in records:
            del record["human_labels"]
            if live:
                record["route"] = "pending"
            else:
                del record["lm_labels"]
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


def _import(source: Path, slug: str, n: int, env: dict) -> int:
    summary = _python(
        ["manage.py", "import_comparisons", str(source), "--project", slug, "--create-project"],
        env,
    )
    created = json.loads(summary.strip().splitlines()[-1])["created"]
    if created != n:
        raise SystemExit(f"imported {created} comparisons into {slug}, wanted {n}")
    return created


LIVE_CODE = """
import random
import django
django.setup()
from django.contrib.auth import get_user_model
from annotator.models import Comparison, Project, Role
from annotator.services import membership_set
from routing.features import metadata_tags, project_feature_version
from routing.models import ComparisonFeatures

Project.objects.filter(slug=SLUG).update(labels_per_item=LABELS_PER_ITEM, primary_judge=JUDGE)
project = Project.objects.get(slug=SLUG)
for user in get_user_model().objects.filter(username__startswith="annotator-"):
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
# Text features as features_compute stores them, with random values: the synthetic texts all
# have the same lengths, and computing embeddings is not what this benchmark measures.
rng = random.Random(5)
version = project_feature_version(project)
rows = []
for pk, metadata in Comparison.objects.filter(project=project).values_list("id", "metadata"):
    prompt, a, b = (int(rng.lognormvariate(4.5, 0.8)) + 1 for _ in range(3))
    values = {
        "len_prompt": prompt, "len_a": a, "len_b": b, "len_shorter": min(a, b),
        "len_longer": max(a, b), "len_diff": abs(a - b), "rouge1_f": rng.random(),
        "cosine": rng.random(), "cosine_lenpen": rng.random() * min(a, b) / max(a, b),
        "entity_iou": rng.random() if rng.random() < 0.7 else None,
        "length_penalty": min(a, b) / max(a, b),
    }
    rows.append(
        ComparisonFeatures(
            comparison_id=pk, version=version, values=values, tags=metadata_tags(metadata)
        )
    )
ComparisonFeatures.objects.bulk_create(rows, batch_size=5000)
print(len(rows))
"""


def _live_project(n: int, tmp: Path, env: dict) -> None:
    """The live run's project: pending comparisons with the primary judge's labels and stored
    text features; every annotator a member."""
    source = tmp / "live.jsonl"
    _write_input(source, n, live=True)
    _import(source, LIVE_SLUG, n, env)
    constants = f"SLUG, LABELS_PER_ITEM, JUDGE = {LIVE_SLUG!r}, {LABELS_PER_ITEM}, {JUDGE!r}"
    _python(["-c", constants + LIVE_CODE], env)


def _policy_sizes(annotators: int, comparisons: int) -> dict[str, int]:
    """Policy settings that keep rounds coming while the annotators label: a batch of two
    comparisons per annotator (6 labels each: about 12 s of work at 1-3 s per label, longer than
    a round of 100,000 comparisons takes on this machine, so that the next batch is out before
    the last runs dry), a seed of one batch (the next batch goes out once the first seed
    comparison is complete), a refit every half batch, and a budget (comparisons) that the run
    does not spend."""
    batch = max(5, 2 * annotators)
    return {
        "budget": min(comparisons, max(comparisons // 2, 4 * batch)),
        "seed_size": batch,
        "batch_size": batch,
        "refit_every": max(5, batch // 2),
    }


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


# --- the live policy's worker -----------------------------------------------------------------


def _broker_checked() -> None:
    """The filesystem broker under the run's VAR_DIR unless CELERY_BROKER_URL is given; never
    CI's Redis database 15."""
    url = os.environ.get("CELERY_BROKER_URL", "")
    if url.startswith(("redis://", "rediss://")) and urlsplit(url).path.strip("/") == "15":
        raise SystemExit("CELERY_BROKER_URL names Redis database 15 (CI's); give another one")


def _broker_emptied(var_dir: Path) -> None:
    """Drop what the baseline run queued (analytics refreshes) from the run's own filesystem
    broker, so that the worker runs only what the live run queues. A given broker is left alone."""
    if os.environ.get("CELERY_BROKER_URL"):
        return
    for message in (var_dir / "broker" / "queue").glob("*"):
        message.unlink()


ROUND_LIBRARIES = (
    "scipy.stats",
    "skops.io",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "threadpoolctl",
)


def _start_worker(env: dict, concurrency: int, log) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--queues=default",
        f"--concurrency={concurrency}",
        "--without-mingle",
        "--without-gossip",
        "--loglevel=INFO",
        f"--hostname=bench-load-{os.getpid()}@%h",
        # What a round imports on first use (scikit-learn, skops and through them torch: some
        # seconds, under the policy's lock), loaded before the worker forks, as in a worker that
        # has been running for a while.
        f"--include={','.join(ROUND_LIBRARIES)}",
    ]
    # INFO: the worker logs each task's run time and result, which the report reads.
    env = {**env, "LOG_LEVEL": "INFO", "LOG_FORMAT": "plain"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def _wait_for_log(process: subprocess.Popen, log_path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the worker exited with {process.returncode}:\n{log_path.read_text()}"
            )
        if text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise SystemExit(f"no {text!r} from the worker in {timeout:.0f} s:\n{log_path.read_text()}")


TASK_DONE_RE = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([\d.]+)s: (\{[^{}]*\}|\S+)")
TASK_FAILED_RE = re.compile(r"Task ([\w.]+)\[[^\]]+\] raised unexpected")


def _worker_tasks(text: str) -> tuple[list[tuple[str, float, object]], Counter[str]]:
    """(task name, seconds, result) of each task the worker log reports done; failures by name."""
    done = []
    for name, seconds, result in TASK_DONE_RE.findall(text):
        try:
            value = ast.literal_eval(result.strip())
        except (ValueError, SyntaxError):
            value = None
        done.append((name, float(seconds), value))
    return done, Counter(TASK_FAILED_RE.findall(text))


POLICY_SQL = """
    SELECT r.state, r.rounds, r.labels_committed, r.budget_labels, r.router_trained_on,
           r.router_auc, r.error,
           (SELECT count(*) FROM routing_routingdecision d
            WHERE d.policy_id = r.project_id AND d.purpose = 'release')
    FROM routing_routingpolicy r JOIN annotator_project p ON p.id = r.project_id
    WHERE p.slug = %(slug)s"""


def _policy_now(url: str) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(POLICY_SQL, {"slug": LIVE_SLUG}).fetchone()
    names = ("state", "rounds", "labels_committed", "budget_labels", "router_trained_on")
    names += ("router_auc", "error", "released")
    return dict(zip(names, row, strict=True))


def _wait_for_seed(url: str, worker: subprocess.Popen, log_path: Path, timeout: float) -> dict:
    """The policy's first round (the seed, and every other judged comparison to `lm`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        policy = _policy_now(url)
        if policy["error"]:
            raise SystemExit(f"the seed round failed: {policy['error']}\n{log_path.read_text()}")
        if policy["rounds"] >= 1:
            return policy
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}:\n{log_path.read_text()}")
        time.sleep(0.5)
    raise SystemExit(f"no seed round in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def _stop_worker(worker: subprocess.Popen) -> None:
    """A warm shutdown: the round in progress finishes (a cut-off one would write nothing)."""
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=120)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(worker.pid).children(recursive=True):
            child.kill()
        worker.kill()
        worker.wait()


class CpuWatch:
    """CPU seconds used by the server's processes and by the PostgreSQL backends of the
    benchmark's database (not other databases on a shared server). Sampled every second:
    backends come and go with connections, so one that exits loses at most its last second."""

    def __init__(
        self, server: subprocess.Popen, database: str, worker: subprocess.Popen | None = None
    ) -> None:
        self.masters = {"server": psutil.Process(server.pid)}
        if worker is not None:
            self.masters["worker"] = psutil.Process(worker.pid)
        self.marker = f" {database} "  # backends are titled "postgres: ... USER DB HOST idle"
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}

    def sample(self) -> None:
        processes = [
            (role, p)
            for role, master in self.masters.items()
            for p in (master, *master.children(recursive=True))
        ]
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


class LockWatch:
    """Sampled with the CPU every second: the benchmark database's backends waiting for a lock,
    and what they were running (where a round's transaction holds up the annotate path)."""

    SQL = """
        SELECT l.locktype, coalesce(l.relation::regclass::text, ''),
               left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90)
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND a.datname = %s"""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.database = url.rsplit("/", 1)[1]
        self.samples = 0
        self.with_waiters = 0
        self.most_waiting = 0
        self.waits: Counter[str] = Counter()

    def sample(self) -> None:
        rows = self.conn.execute(self.SQL, (self.database,)).fetchall()
        self.samples += 1
        self.with_waiters += bool(rows)
        self.most_waiting = max(self.most_waiting, len(rows))
        self.waits.update(" | ".join(filter(None, row)) for row in rows)

    def close(self) -> None:
        self.conn.close()

    def report(self) -> dict:
        return {
            "samples": self.samples,
            "samples_with_waiters": self.with_waiters,
            "most_waiting": self.most_waiting,
            "top": self.waits.most_common(5),
        }


# --- the simulated annotators -----------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.submits = 0
        self.errors: Counter[str] = Counter()
        self.finished_queue = 0  # clients told that nothing is left for them
        self.nothing_left = 0  # "next" answered with nothing to label (live: retried)
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
    client: httpx.AsyncClient,
    stats: Stats,
    deadline: float,
    think: tuple[int, int],
    slug: str,
    live: bool,
) -> None:
    """One annotator's loop. `live`: nothing to label may be a round not released yet, so the
    annotator asks again a second later instead of leaving."""
    annotate_url = f"/p/{slug}/annotate/"
    lease_re = re.compile(rf'action="(/p/{slug}/leases/(\d+)/label/)"')
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
        found = lease_re.search(response.text)
        if found is None:
            if NOTHING_LEFT not in response.text:
                stats.errors["next without a comparison (refused)"] += 1
                return
            stats.nothing_left += 1
            if not live:
                stats.finished_queue += 1
                return
            await asyncio.sleep(1.0)
            continue
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
            headers={"Referer": f"{client.base_url}p/{slug}/annotate/"},
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


async def _watch(stats: Stats, cpu: CpuWatch, locks: LockWatch, deadline: float) -> None:
    """How late this process's event loop wakes up (client-side delay that is included in the
    latencies), and a CPU and lock sample every second."""
    ticks = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        stats.loop_lag_ms.append((time.perf_counter() - started - 0.05) * 1000)
        ticks += 1
        if ticks % 20 == 0:
            cpu.sample()
            locks.sample()


async def _run_clients(
    base: str,
    usernames: list[str],
    seconds: float,
    think: tuple[int, int],
    watches: tuple[CpuWatch, LockWatch],
    slug: str = SLUG,
    live: bool = False,
) -> tuple[Stats, dict]:
    cpu, locks = watches
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
            _watch(stats, cpu, locks, deadline),
            *(_annotate(c, stats, deadline, think, slug, live) for c in working),
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
            "worker_cpu_s": cpu.used("worker"),
            "machine_cpu_busy_pct": psutil.cpu_percent(),
            "lock_waits": locks.report(),
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


# The live policy's project, besides the checks above; every count must be 0.
LIVE_INVARIANTS = {
    # One comparison released twice by the policy.
    "released_twice": """
        SELECT count(*) FROM (
            SELECT d.comparison_id FROM routing_routingdecision d
            JOIN annotator_project p ON p.id = d.policy_id
            WHERE p.slug = %(slug)s AND d.purpose = 'release'
            GROUP BY 1 HAVING count(*) > 1) broken""",
    # Labels committed beyond the budget, or human labels in the project beyond it.
    "over_budget": """
        SELECT count(*) FROM routing_routingpolicy r
        JOIN annotator_project p ON p.id = r.project_id
        WHERE p.slug = %(slug)s AND (
            r.labels_committed > r.budget_labels
            OR (SELECT count(*) FROM annotator_humanlabel h
                JOIN annotator_comparison c ON c.id = h.comparison_id
                WHERE c.project_id = p.id) > r.budget_labels)""",
    # The budget's account differs from the labels its decisions asked for.
    "committed_out_of_step": """
        SELECT count(*) FROM routing_routingpolicy r
        JOIN annotator_project p ON p.id = r.project_id
        WHERE p.slug = %(slug)s AND r.labels_committed <> (
            SELECT coalesce(sum(d.labels), 0) FROM routing_routingdecision d
            WHERE d.policy_id = r.project_id)""",
    # Human-routed, or labelled by a human, without a release by the policy.
    "human_without_release": """
        SELECT count(*) FROM annotator_comparison c
        JOIN annotator_project p ON p.id = c.project_id
        WHERE p.slug = %(slug)s
          AND (c.route = 'human' OR c.labels_done > 0 OR c.slots_taken > 0)
          AND NOT EXISTS (
            SELECT 1 FROM routing_routingdecision d
            WHERE d.comparison_id = c.id AND d.policy_id = p.id AND d.purpose = 'release')""",
    # Released but not human-routed.
    "released_not_human": """
        SELECT count(*) FROM routing_routingdecision d
        JOIN annotator_project p ON p.id = d.policy_id
        JOIN annotator_comparison c ON c.id = d.comparison_id
        WHERE p.slug = %(slug)s AND d.purpose = 'release' AND c.route <> 'human'""",
}


def _check_invariants(url: str, slug: str = SLUG, *, live: bool = False) -> tuple[dict, int]:
    """Violations by check, and the project's human labels."""
    import psycopg

    checks = {**INVARIANTS, **LIVE_INVARIANTS} if live else INVARIANTS
    with psycopg.connect(url) as conn:
        broken = {
            name: conn.execute(sql, {"slug": slug}).fetchone()[0] for name, sql in checks.items()
        }
        labels = conn.execute(
            """SELECT count(*) FROM annotator_humanlabel h
               JOIN annotator_comparison c ON c.id = h.comparison_id
               JOIN annotator_project p ON p.id = c.project_id
               WHERE p.slug = %(slug)s AND h.annotator_id IS NOT NULL""",
            {"slug": slug},
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


def _parse_args() -> argparse.Namespace:
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
    parser.add_argument(
        "--live-policy",
        action="store_true",
        help="then the same load on a project whose live routing policy runs (see above)",
    )
    # One worker process: rounds of one policy run one at a time anyway (the policy's row lock);
    # a second would mostly wait on it.
    parser.add_argument(
        "--celery-concurrency",
        type=int,
        default=1,
        help="the live policy's worker processes (default 1)",
    )
    args = parser.parse_args()
    if args.quick:
        args.comparisons, args.annotators, args.seconds = 5_000, 10, 15
    return args


def _setup(args: argparse.Namespace, tmp: Path, env: dict) -> list[str]:
    started = time.perf_counter()
    _recreate_database(args.database_url)
    _python(["manage.py", "migrate", "--no-input", "-v", "0"], env)
    source = tmp / "comparisons.jsonl"
    _write_input(source, args.comparisons)
    created = _import(source, SLUG, args.comparisons, env)
    usernames = _create_annotators(args.annotators, env)
    _analyze(args.database_url)
    print(
        f"setup: {created:,} human-routed comparisons ({LABELS_PER_ITEM} labels wanted each), "
        f"{len(usernames)} annotators, in {time.perf_counter() - started:.0f} s"
    )
    return usernames


def _measure(args, base: str, usernames: list[str], server, worker=None) -> tuple[Stats, dict]:
    """The annotators on the baseline project, or (with `worker`) on the live one."""
    cpu = CpuWatch(server, args.database_url.rsplit("/", 1)[1], worker)
    locks = LockWatch(args.database_url)
    slug = SLUG if worker is None else LIVE_SLUG
    try:
        return asyncio.run(
            _run_clients(
                base, usernames, args.seconds, args.think_ms, (cpu, locks), slug, worker is not None
            )
        )
    finally:
        locks.close()


def _live_run(args, tmp: Path, env: dict, base: str, usernames: list[str], server) -> dict:
    """The live project and its policy, the worker, the seed round; then the same annotators
    while rounds run. Returns the run's figures and what the worker did meanwhile."""
    started = time.perf_counter()
    _live_project(args.comparisons, tmp, env)
    sizes = _policy_sizes(args.annotators, args.comparisons)
    settings = [f"--{name.replace('_', '-')}={value}" for name, value in sizes.items()]
    _python(["manage.py", "routing_policy", "--project", LIVE_SLUG, *settings], env)
    _analyze(args.database_url)
    _broker_emptied(Path(env["VAR_DIR"]))
    log_path = tmp / "worker.log"
    with log_path.open("wb") as log:
        worker = _start_worker(env, args.celery_concurrency, log)
        try:
            _wait_for_log(worker, log_path, " ready.", timeout=120)
            _python(["manage.py", "routing_policy", "--project", LIVE_SLUG, "--start"], env)
            seeded = _wait_for_seed(args.database_url, worker, log_path, timeout=600)
            _analyze(args.database_url)  # the seed round rewrote every route (pending to lm)
            print(
                f"live setup: {args.comparisons:,} pending comparisons with a {JUDGE} label each, "
                f"policy {sizes}, seed of {seeded['released']} released, "
                f"in {time.perf_counter() - started:.0f} s"
            )
            window_start = log_path.stat().st_size
            stats, usage = _measure(args, base, usernames, server, worker)
        finally:
            _stop_worker(worker)
    after = _policy_now(args.database_url)
    log_text = log_path.read_bytes()
    # Rounds that started while the annotators worked, the last finished at the warm shutdown.
    done, failed = _worker_tasks(log_text[window_start:].decode(errors="replace"))
    return {
        "stats": stats,
        "usage": usage,
        "sizes": sizes,
        "concurrency": args.celery_concurrency,
        "seeded": seeded,
        "after": after,
        "tasks": done,
        "failed": failed,
        "log_tail": log_text.decode(errors="replace")[-2000:] if failed else "",
    }


def _print_run(title: str, stats: Stats, usage: dict, labels: int, violations: dict) -> None:
    errors = sum(stats.errors.values())
    print()
    if title:
        print(title)
    print(f"{'request':<8} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in {"next": stats.next_ms, "submit": stats.submit_ms}.items():
        print(
            f"{kind:<8} {len(values):>7} {_percentile(values, 0.5):>8.1f} "
            f"{_percentile(values, 0.95):>8.1f} {_percentile(values, 0.99):>8.1f} "
            f"{max(values, default=float('nan')):>8.1f}"
        )
    print()
    print(
        f"submits {stats.submits} ({stats.submits / usage['elapsed_s']:.1f}/s), labels in the "
        f"database {labels}, errors {errors} {dict(stats.errors) if errors else ''}"
    )
    worker = f", worker {usage['worker_cpu_s']:.1f} s" if usage["worker_cpu_s"] else ""
    print(
        f"cpu over {usage['elapsed_s']:.0f} s: machine {usage['machine_cpu_busy_pct']:.0f}% busy, "
        f"server {usage['server_cpu_s']:.1f} s, PostgreSQL {usage['database_cpu_s']:.1f} s"
        f"{worker}, load generator {usage['client_cpu_s']:.1f} s "
        f"(its event loop p95 lag {_percentile(stats.loop_lag_ms, 0.95):.1f} ms)"
    )
    locks = usage["lock_waits"]
    print(
        f"lock waits: {locks['samples_with_waiters']} of {locks['samples']} one-second samples, "
        f"at most {locks['most_waiting']} waiting; most seen: {locks['top'][:3]}"
    )
    print(f"invariant violations {sum(violations.values())}: {violations}")


def _ms(values: list[float], q: float) -> float | None:
    return round(_percentile(values, q), 1) if values else None


def _live_results(live: dict, baseline_p95: float | None, url: str) -> dict:
    """The live run's `live_*` keys: latencies, what the loop did while annotators worked (the
    rounds that started meanwhile), and its invariants."""
    stats, usage, after = live["stats"], live["usage"], live["after"]
    violations_by_check, labels = _check_invariants(url, LIVE_SLUG, live=True)
    _print_run("live policy", stats, usage, labels, violations_by_check)
    rounds = [(s, r) for name, s, r in live["tasks"] if name == "routing.policy_round"]
    outcomes = [r for _, r in rounds if isinstance(r, dict)]
    seconds = [s for s, _ in rounds]
    by_task: dict[str, list] = {}
    for name, s, _ in live["tasks"]:
        counted = by_task.setdefault(name, [0, 0.0])
        counted[0], counted[1] = counted[0] + 1, round(counted[1] + s, 2)
    p95 = _ms(stats.next_ms, 0.95)
    results = {
        "live_p50_next_ms": _ms(stats.next_ms, 0.5),
        "live_p95_next_ms": p95,
        "live_p99_next_ms": _ms(stats.next_ms, 0.99),
        "live_p50_submit_ms": _ms(stats.submit_ms, 0.5),
        "live_p95_submit_ms": _ms(stats.submit_ms, 0.95),
        "live_p99_submit_ms": _ms(stats.submit_ms, 0.99),
        "live_p95_ratio": round(p95 / baseline_p95, 2) if p95 and baseline_p95 else None,
        "live_next_requests": len(stats.next_ms),
        "live_nothing_left": stats.nothing_left,
        "live_submits": stats.submits,
        "live_submits_per_s": round(stats.submits / usage["elapsed_s"], 2),
        "live_labels_in_db": labels,
        "live_errors": sum(stats.errors.values()),
        "live_errors_by_kind": dict(stats.errors),
        "live_rounds": len(rounds),
        "live_refits": sum(bool(o.get("refitted")) for o in outcomes),
        "live_released": after["released"] - live["seeded"]["released"],
        "live_round_failures": live["failed"].get("routing.policy_round", 0),
        "live_round_p50_s": round(_percentile(seconds, 0.5), 2) if seconds else None,
        "live_round_max_s": round(max(seconds), 2) if seconds else None,
        "live_worker_tasks": by_task,
        "live_seed_released": live["seeded"]["released"],
        "live_policy": {**live["sizes"], **{k: v for k, v in after.items() if k != "error"}},
        "live_policy_error": after["error"],
        "live_violations": sum(violations_by_check.values()),
        "live_violations_by_check": violations_by_check,
        "live_celery_concurrency": live["concurrency"],
        "live_machine_cpu_busy_pct": round(usage["machine_cpu_busy_pct"], 1),
        "live_server_cpu_s": round(usage["server_cpu_s"], 1),
        "live_database_cpu_s": round(usage["database_cpu_s"], 1),
        "live_worker_cpu_s": round(usage["worker_cpu_s"], 1),
        "live_client_loop_lag_p95_ms": _ms(stats.loop_lag_ms, 0.95),
        "live_lock_waits": usage["lock_waits"],
    }
    print(
        f"loop while annotators worked: {results['live_rounds']} rounds "
        f"(p50 {results['live_round_p50_s']} s, max {results['live_round_max_s']} s, "
        f"{results['live_round_failures']} failed), {results['live_refits']} refits, "
        f"{results['live_released']} comparisons released (seed {results['live_seed_released']}); "
        f"worker tasks {by_task}; next answered 'nothing left' {stats.nothing_left} times"
    )
    if live["log_tail"]:
        print(f"worker log:\n{live['log_tail']}")
    return results


def main() -> None:
    args = _parse_args()
    if args.live_policy:
        _broker_checked()
    think = args.think_ms
    mode = "think-time" if think[1] else "closed-loop (stress)"
    think_text = f"{think[0]}-{think[1]}" if think[0] != think[1] else str(think[0])
    server_config = f"gunicorn gthread, {args.workers} workers x {args.threads} threads"

    live = None
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp = Path(tmp)
        env = _child_env(args.database_url, tmp / "var")
        os.environ.setdefault("SECRET_KEY", env["SECRET_KEY"])
        usernames = _setup(args, tmp, env)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = tmp / "gunicorn.log"
        with log_path.open("wb") as log:
            server = _start_server(env, port, args.workers, args.threads, log)
            try:
                _wait_until_up(base, server, log_path)
                print(
                    f"run: {mode}, think {think_text} ms per item, {args.seconds:.0f} s, "
                    f"{server_config}, PostgreSQL {_where(args.database_url)}"
                )
                stats, usage = _measure(args, base, usernames, server)
                if args.live_policy:
                    live = _live_run(args, tmp, env, base, usernames, server)
            finally:
                _stop_server(server)
        server_log = log_path.read_text().strip()

    violations_by_check, labels_in_db = _check_invariants(args.database_url)
    violations = sum(violations_by_check.values())
    errors = sum(stats.errors.values())
    submits_per_s = stats.submits / usage["elapsed_s"]
    _print_run(
        "baseline (no routing policy)" if live else "",
        stats,
        usage,
        labels_in_db,
        violations_by_check,
    )
    print(
        f"annotators {usage['logged_in']} logged in of {args.annotators}, "
        f"{stats.finished_queue} ran out of comparisons; mode {mode}, think {think_text} ms"
    )
    print(f"server {server_config}")
    print(
        "Label Studio on PostgreSQL, same kind of machine: next-task p95 500 / 900 / 4,800 ms "
        "at 1 / 10 / 50 clients (docs/architecture.md, 'What other tools do')"
    )
    results = {
        "p50_next_ms": _ms(stats.next_ms, 0.5),
        "p95_next_ms": _ms(stats.next_ms, 0.95),
        "p99_next_ms": _ms(stats.next_ms, 0.99),
        "p50_submit_ms": _ms(stats.submit_ms, 0.5),
        "p95_submit_ms": _ms(stats.submit_ms, 0.95),
        "p99_submit_ms": _ms(stats.submit_ms, 0.99),
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
        "client_loop_lag_p95_ms": _ms(stats.loop_lag_ms, 0.95),
        "lock_waits": usage["lock_waits"],
        "label_studio_reference": LABEL_STUDIO,
    }
    if live is not None:
        results.update(_live_results(live, results["p95_next_ms"], args.database_url))
    if server_log:
        print(f"server log:\n{server_log[-2000:]}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
