"""The deployment's processes, without containers, through one whole flow.

gunicorn, a Celery worker on the `default` queue, a GPU-style worker on the `gpu` queue
(`--pool=solo`) and beat run as real processes on the configured database and broker (PostgreSQL
and Redis in CI; SQLite and the filesystem broker work too), as docker/compose.yml starts them.
The flow, as users drive it: a background import of MultiPref-shaped rows, half of them
conversations (default worker) -> an LM judge run started over
HTTP (gpu worker, a tiny local model) -> the router's text features (default worker) and routing
under a human budget -> an annotator labelling over HTTP -> reward-model training (gpu worker) ->
a TRL and a MultiPref export; beat's reapers run on the default worker.
"""

import io
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from annotator.models import Comparison, HumanLabel, ImportJob, LMLabel, Role
from annotator.services import membership_set, project_create
from routing.features import FEATURE_VERSION
from routing.live import policy_save, policy_state_set
from routing.models import ComparisonFeatures, RoutingDecision, RoutingPolicy
from scoring.judging.runs import judge_save
from scoring.models import Judge, JudgeRun, RewardModelRun
from tests.config.conftest import json_lines
from tests.conftest import ROOT, child_env, wait_for
from tests.scoring.tiny_models import tiny_llama, tiny_reward_model, tiny_tokenizer

pytestmark = pytest.mark.slow

N = 12
BUDGET = 4
SLUG = "e2e"
PASSWORD = "e2e-annotator-password"
LEASE_RE = re.compile(rf'action="(/p/{SLUG}/leases/\d+/label/)"')


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """The platform's processes, each logging to its own file; all stopped at the end."""

    def __init__(self, tmp_path, env: dict):
        self.tmp_path, self.env, self.running = tmp_path, env, {}

    def start(self, name: str, *argv: str) -> subprocess.Popen:
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *argv],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process.log_path = log_path
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return self.running[name].log_path.read_text(errors="replace")

    def wait_for_log(self, name: str, marker: str, timeout: float = 90) -> None:
        process = self.running[name]

        def seen():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            return marker in self.log(name)

        wait_for(seen, timeout=timeout, what=f"{name} to log {marker!r}")

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def platform(transactional_db, tmp_path, settings):
    """Starts the processes as docker/compose.yml does (without waiting for them: the test has its
    own set-up to do meanwhile) and stops them at the end."""
    from config.celery import app

    app.control.purge()  # messages an interrupted earlier run left on the broker
    # Background imports hand the upload over through this folder.
    settings.IMPORT_DIR = tmp_path / "imports"
    env = child_env(
        ALLOWED_HOSTS="127.0.0.1",
        SESSION_COOKIE_SECURE="false",  # plain http on loopback
        CSRF_COOKIE_SECURE="false",
        IMPORT_DIR=str(settings.IMPORT_DIR),
        REWARD_MODEL_DIR=str(tmp_path / "reward-models"),
        JUDGE_CHUNK_SIZE="4",
        REAPER_INTERVAL_SECONDS="2",  # beat's reapers within the test, not a minute in
        ROUTING_ROUND_DEBOUNCE_SECONDS="1",
        LOG_FORMAT="json",
    )
    processes = Processes(tmp_path, env)
    port = _free_port()
    processes.base_url = f"http://127.0.0.1:{port}"
    name = f"e2e-{time.monotonic_ns()}"
    worker = "celery -A config worker --without-mingle --without-gossip --loglevel=INFO"
    try:
        processes.start(
            "web",
            *f"gunicorn --config=python:config.gunicorn config.wsgi:application "
            f"--bind=127.0.0.1:{port} --worker-class=gthread "
            "--workers=1 --threads=4".split(),
        )
        processes.start(
            "worker",
            *f"{worker} --queues=default --concurrency=1 --hostname=default-{name}@%h".split(),
        )
        processes.start(
            "worker-gpu",
            *f"{worker} --queues=gpu --pool=solo --prefetch-multiplier=1 "
            f"--hostname=gpu-{name}@%h".split(),
        )
        processes.start(
            "beat", *f"celery -A config beat --schedule={tmp_path / 'beat'} --loglevel=INFO".split()
        )
        yield processes
    finally:
        processes.stop_all()


def _wait_until_ready(platform) -> None:
    for name in ("worker", "worker-gpu"):
        platform.wait_for_log(name, " ready.")
    platform.wait_for_log("beat", "beat: Starting")
    wait_for(
        lambda: _answers(platform.base_url + "/readyz", platform.running["web"]),
        timeout=60,
        what="gunicorn to be ready",
    )


def _answers(url: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        pytest.fail(f"gunicorn exited with {process.returncode}")
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _manage(*args: str) -> str:
    """A management command, as an operator runs it; returns what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _tiny_models(tmp_path):
    """A tiny judge model and a tiny reward-model base, saved as model directories."""
    tokenizer = tiny_tokenizer()
    judge_dir, base_dir = tmp_path / "judge-model", tmp_path / "reward-base"
    tiny_llama(tokenizer).save_pretrained(judge_dir)
    tiny_reward_model(tokenizer).save_pretrained(base_dir)
    for directory in (judge_dir, base_dir):
        tokenizer.save_pretrained(directory)
    return judge_dir, base_dir


@contextmanager
def _logged_in(base_url: str, username: str) -> Iterator[httpx.Client]:
    """A browser-like session: the login form, then the session and CSRF cookies."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.get("/accounts/login/")
        login = _post_form(client, "/accounts/login/", {"username": username, "password": PASSWORD})
        assert login.status_code == 302, login.text[:500]
        yield client


def _post_form(client: httpx.Client, url: str, data: dict) -> httpx.Response:
    return client.post(url, data=data | {"csrfmiddlewaretoken": client.cookies["csrftoken"]})


def _label_everything_offered(client: httpx.Client) -> int:
    """Take and label comparisons until none is left; returns how many labels were accepted."""
    submitted = 0
    for _ in range(N + 1):
        page = client.get(f"/p/{SLUG}/annotate/")
        assert page.status_code == 200
        found = LEASE_RE.search(page.text)
        if found is None:
            break
        answer = _post_form(client, found.group(1), {"overall": "2", "time_spent_s": "3.5"})
        assert answer.status_code == 302, answer.text[:500]
        submitted += 1
    return submitted


def _multipref_row(i: int) -> dict:
    """A MultiPref-shaped row without annotations; even ones are a three-turn conversation."""
    question = f"question {i} what is the capital of france ?"
    good, bad = "paris GOOD answer", "rome meh"
    text = (
        [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi, ask away"},
            {"role": "user", "content": question},
        ]
        if i % 2 == 0
        else question
    )
    return {
        "comparison_id": f"c{i}",
        "text": text,
        "completion_a": good if i % 2 else bad,
        "completion_b": bad if i % 2 else good,
        "model_a": "model-x",
        "model_b": "model-y",
        "source": "end-to-end",
        "category": "Open QA",
        "normal_worker_annotations": [],
        "expert_worker_annotations": [],
    }


def test_import_judge_route_label_train_export(platform, tmp_path, settings):
    pytest.importorskip("torch")
    judge_dir, base_dir = _tiny_models(tmp_path)  # while the processes start
    _wait_until_ready(platform)
    # The server checks passwords with the real hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

    # An admin sets up the project, a judge and an annotator (the admin pages do the same).
    project = project_create(slug=SLUG, name="End to end", labels_per_item=1, primary_judge="tiny")
    judge_save(
        judge=Judge(
            name="tiny", model_path=str(judge_dir), device="cpu", batch_size=8, tie_threshold=0.0
        )
    )
    for username, role in (("admin", Role.ADMIN), ("ann", Role.ANNOTATOR)):
        user = get_user_model().objects.create_user(username, password=PASSWORD)
        membership_set(project=project, user=user, role=role)

    # 1. Import in the background: the default worker reads the upload, MultiPref-shaped rows
    # (told by --format auto), every other one a conversation, with no annotations yet.
    source = tmp_path / "comparisons.jsonl"
    source.write_text("".join(json.dumps(_multipref_row(i)) + "\n" for i in range(N)))
    job_id = json.loads(
        _manage(
            "import_comparisons", str(source), "--project", SLUG, "--background", "--format", "auto"
        )
    )["job"]
    job = wait_for(
        lambda: ImportJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
        timeout=60,
        what="the background import",
    )
    assert job.status == "succeeded", job.errors
    assert (job.summary["created"], job.summary["format"]) == (N, "multipref")
    assert Comparison.objects.filter(prompt_messages__isnull=False).count() == N // 2
    assert "succeeded" in _manage("import_status", str(job_id))

    # 2. The project admin starts the judge from the project's judge panel; the gpu worker runs it.
    with _logged_in(platform.base_url, "admin") as admin:
        started = _post_form(admin, f"/p/{SLUG}/judge/runs/", {"judge": "tiny"})
    assert started.status_code == 302
    request_id = started.headers["X-Request-ID"]
    run = wait_for(
        lambda: JudgeRun.objects.filter(status__in=["succeeded", "failed"]).first(),
        timeout=90,
        what="the judge run",
    )
    assert (run.status, run.done, run.total) == ("succeeded", N, N), run.error
    assert LMLabel.objects.filter(judge_name="tiny").count() == N

    # The task's log lines on the worker carry the id of the request that queued it.
    def task_events() -> set[str]:
        lines = json_lines(platform.log("worker-gpu"))
        return {line["event"] for line in lines if line.get("request_id") == request_id}

    wait_for(
        lambda: {"task_started", "task_succeeded"} <= task_events(),
        timeout=30,
        what="the judge task's log lines with the request id",
    )

    # 3. The router's text features (MiniLM embeddings on CPU) are computed on the default worker,
    # then routing sends BUDGET comparisons, the judge's least confident, to humans; the rest keep
    # the LM label.
    queued = json.loads(_manage("route", "--project", SLUG, "--features-only", "--background"))
    assert queued["status"] == "queued"
    wait_for(
        lambda: (
            ComparisonFeatures.objects.filter(
                comparison__project=project, version=FEATURE_VERSION
            ).count()
            == N
        ),
        timeout=90,
        what="the routing features",
    )
    routed = json.loads(
        _manage(
            "route", "--project", SLUG, "--strategy", "judge_confidence", "--budget", str(BUDGET)
        ).splitlines()[-1]
    )
    assert (routed["strategy"], routed["human"], routed["lm"]) == (
        "judge_confidence",
        BUDGET,
        N - BUDGET,
    )
    routes = Counter(Comparison.objects.values_list("route", flat=True))
    assert routes == {"human": BUDGET, "lm": N - BUDGET}

    # 4. The annotator labels what was routed to humans, over HTTP against gunicorn.
    with _logged_in(platform.base_url, "ann") as annotator:
        assert _label_everything_offered(annotator) == BUDGET
    labels = HumanLabel.objects.filter(comparison__project=project)
    assert labels.count() == BUDGET
    assert set(labels.values_list("comparison__route", flat=True)) == {"human"}

    # 5. A reward model trains on the final labels (human where labelled, else the judge's).
    out = _manage(
        "train_reward_model",
        *f"--project {SLUG} --base {base_dir} --labels final --epochs 1 --batch-size 4 "
        "--max-length 48".split(),
    )
    assert "queued reward-model run #" in out
    trained = wait_for(
        lambda: RewardModelRun.objects.filter(status__in=["succeeded", "failed"]).first(),
        timeout=120,
        what="reward-model training",
    )
    assert trained.status == "succeeded", trained.error
    assert (tmp_path / "reward-models" / str(trained.pk) / "config.json").is_file()

    # 6. The export has one training pair per comparison, from humans where they labelled.
    export = tmp_path / "export.jsonl"
    _manage("export_dataset", "--project", SLUG, "--format", "trl", "--output", str(export))
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(rows) == N
    assert sorted(row["label_source"] for row in rows).count("human") == BUDGET
    assert {row["external_id"] for row in rows} == {f"c{i}" for i in range(N)}
    # ... and a MultiPref export gives the rows back, conversations as messages, the annotator's
    # labels as normal workers' annotations.
    export = tmp_path / "export-multipref.jsonl"
    _manage("export_dataset", "--project", SLUG, "--format", "multipref", "--output", str(export))
    back = {r["comparison_id"]: r for r in map(json.loads, export.read_text().splitlines())}
    assert back["c0"]["text"] == _multipref_row(0)["text"]
    assert back["c1"]["text"] == _multipref_row(1)["text"]
    annotated = [r for r in back.values() if r["normal_worker_annotations"]]
    assert len(annotated) == BUDGET

    # 7. Beat's periodic reapers reach the default worker.
    platform.wait_for_log(
        "worker",
        "Task annotator.leases_reap[",
        timeout=30,  # a run, not the banner's task list
    )
    assert "Sending due task leases-reap (annotator.leases_reap)" in platform.log("beat")


def test_a_live_policy_routes_in_rounds_as_labels_arrive(platform, settings):
    """A live routing policy on the real processes: starting it releases the seed (default
    worker), the annotator's labels over HTTP queue the next round, which refits the router on
    them and releases the next batch, until the budget is spent."""
    _wait_until_ready(platform)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    project = project_create(slug=SLUG, name="Live", labels_per_item=1, primary_judge="judge")
    user = get_user_model().objects.create_user("ann", password=PASSWORD)
    membership_set(project=project, user=user, role=Role.ANNOTATOR)
    for i in range(N):
        comparison = Comparison.objects.create(
            project=project,
            external_id=f"c{i}",
            prompt=f"question {i}",
            response_a=f"answer a {i}",
            response_b=f"answer b {i}",
            content_hash=str(i),
        )
        LMLabel.objects.create(
            comparison=comparison,
            judge_name="judge",
            choice="A" if i % 2 else "B",
            strength="unknown",
            p_a=0.5 + (i % 5) / 10 if i % 2 else 0.5 - (i % 5) / 10,
        )
    policy_save(project=project, budget=6, seed_size=3, batch_size=3, refit_every=2)
    policy_state_set(project=project, action="start")

    def released() -> int:
        return RoutingDecision.objects.filter(policy__project=project, purpose="release").count()

    wait_for(lambda: released() == 3, timeout=60, what="the seed round")
    labelled = []
    with _logged_in(platform.base_url, "ann") as annotator:
        # The annotator labels what is offered; as the seed's labels come in, the next round
        # releases another batch (annotators running short), until the budget is spent.
        def all_six_labelled() -> bool:
            labelled.append(_label_everything_offered(annotator))
            return sum(labelled) == 6 and released() == 6

        wait_for(all_six_labelled, timeout=90, what="the second round, labelled")
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert (policy.state, policy.labels_committed, policy.rounds) == ("spent", 6, 2)
    assert policy.router_version and policy.router_trained_on >= 2
    second = RoutingDecision.objects.filter(policy=policy, round=1)
    assert {d.router_version for d in second} == {policy.router_version}
    assert Comparison.objects.filter(project=project, route="human").count() == 6
    assert "routing.policy_round" in platform.log("worker")
