"""docker/compose.yml, checked without a Docker engine: every service runs a command that exists,
every queue has a worker, services wait for what they need, and every environment variable that
compose or the settings read is documented. `docker compose config` runs too where the client has
the compose plugin."""

import ast
import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (DOCKER / "env.example").read_text()
# Services that run this project's images (the others are PostgreSQL and Redis).
APP_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}


def _argv(command) -> list[str]:
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:  # a guard, then `exec` of the real command
        argv = shlex.split(argv[2].split("exec ", 1)[1])
    return argv


def _option(argv: list[str], name: str) -> str | None:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _module_defines(module: str, name: str) -> bool:
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    return any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets)
        for node in tree.body
    )


WSGI_APPLICATION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module.path:name


def assert_runs_something_that_exists(argv: list[str], where: str) -> None:
    if argv[:2] == ["python", "manage.py"]:
        assert argv[2] in get_commands(), f"{where}: no manage.py command {argv[2]!r}"
    elif argv[0] == "celery":
        assert argv[1:3] == ["-A", "config"], f"{where}: the Celery app is config.celery.app"
        assert argv[3] in {"worker", "beat", "flower"}, f"{where}: celery {argv[3]}?"
        if argv[3] == "flower":
            assert importlib.util.find_spec("flower"), "the flower extra is not installed"
    elif argv[0] == "gunicorn":
        (application,) = [a for a in argv[1:] if WSGI_APPLICATION.match(a)]
        module, name = application.split(":")
        assert _module_defines(module, name), f"{where}: {application} does not exist"
        # Its own log lines in the application's format (config/gunicorn.py).
        config = _option(argv, "config") or argv[argv.index("--config") + 1]
        assert config == "python:config.gunicorn", where
        assert _module_defines("config.gunicorn", "logconfig_dict")
    else:
        pytest.fail(f"{where}: unexpected command {argv}")


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_service_runs_a_command_that_exists(name):
    assert_runs_something_that_exists(_argv(APP_SERVICES[name]["command"]), name)


def test_the_celery_app_is_where_the_commands_say():
    from celery import Celery

    from config.celery import app

    assert isinstance(app, Celery)


def _worker_queues() -> dict[str, set[str]]:
    queues = {}
    for name, service in APP_SERVICES.items():
        argv = _argv(service["command"])
        if argv[0] == "celery" and argv[3] == "worker":
            queues[name] = set(_option(argv, "queues").split(","))
    return queues


def test_every_queue_has_a_worker_and_every_worker_a_queue():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    consumed = set().union(*_worker_queues().values())
    assert consumed == declared
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= consumed
    assert settings.CELERY_TASK_DEFAULT_QUEUE in consumed


def test_gpu_workers_take_one_task_at_a_time_on_a_reserved_gpu():
    gpu = [name for name, queues in _worker_queues().items() if "gpu" in queues]
    assert gpu == ["worker-gpu"]
    service = SERVICES["worker-gpu"]
    argv = _argv(service["command"])
    assert _option(argv, "pool") == "solo"
    assert _option(argv, "prefetch-multiplier") == "1"
    assert service["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # The CPU worker stays off the GPU queue.
    assert "gpu" not in _worker_queues()["worker"]


def test_exactly_one_beat_runs_the_periodic_reapers():
    beats = [n for n, s in APP_SERVICES.items() if _argv(s["command"])[3:4] == ["beat"]]
    assert beats == ["beat"]
    # Its schedule file goes to the writable data volume (the code folder is read-only).
    schedule = _option(_argv(SERVICES["beat"]["command"]), "schedule")
    assert any(schedule.startswith(v.split(":")[1]) for v in SERVICES["beat"]["volumes"])


def test_services_wait_for_what_they_need():
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert rule["condition"] in conditions
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"
            if rule["condition"] == "service_completed_successfully":
                assert SERVICES[target]["restart"] == "no", f"{target} must run once"
    # Migrations run once, on a healthy database, before anything that uses the database.
    assert _argv(SERVICES["migrate"]["command"])[2] == "migrate"
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES.keys() - {"migrate"}:
        needs = SERVICES[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["redis"]["condition"] == "service_healthy", name
    for name in ("postgres", "redis", "web", "worker", "worker-gpu"):
        assert "healthcheck" in SERVICES[name], name
    assert SERVICES["flower"]["profiles"] == ["flower"]


def test_the_services_share_one_data_volume_and_declare_every_volume():
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    data = {s["volumes"][0] for n, s in APP_SERVICES.items() if n != "flower"}
    assert data == {"appdata:/var/lib/hybrid-prefs"}  # imports and checkpoints are shared


def test_builds_point_at_files_and_targets_that_exist():
    images = {}
    for name, service in APP_SERVICES.items():
        build = service["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT, name
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), name
        if "target" in build:
            stage = re.compile(rf"^FROM \S+ AS {re.escape(build['target'])}$", re.MULTILINE)
            assert stage.search(dockerfile.read_text()), f"{name}: no stage {build['target']}"
        images[name] = (build["dockerfile"], build.get("target"), service["image"])
    # Only the workers get torch: the CPU build for the default queue, CUDA for the gpu queue.
    assert images == {
        **{
            name: ("docker/Dockerfile", "web", "${APP_IMAGE:-hybrid-prefs:latest}")
            for name in ("migrate", "web", "beat", "flower")
        },
        "worker": (
            "docker/Dockerfile",
            "cpu-worker",
            "${CPU_WORKER_IMAGE:-hybrid-prefs-cpu-worker:latest}",
        ),
        "worker-gpu": ("docker/Dockerfile.gpu", None, "${GPU_IMAGE:-hybrid-prefs-gpu:latest}"),
    }


# --- Environment variables ---
SETTINGS_VARIABLE = re.compile(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"")
INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)")
DOCUMENTED = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _used_variables() -> dict[str, str]:
    used = {
        name: "config/settings.py"
        for name in SETTINGS_VARIABLE.findall((ROOT / "config" / "settings.py").read_text())
    }
    used |= {name: "compose.yml" for name in INTERPOLATED.findall(yaml.safe_dump(COMPOSE))}
    for name, service in SERVICES.items():
        used |= {key: f"compose.yml ({name})" for key in service.get("environment", {})}
    return used


def _documented() -> set[str]:
    readme = (DOCKER / "README.md").read_text()
    return set(DOCUMENTED.findall(ENV_EXAMPLE)) | set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))


def test_every_variable_that_is_read_is_documented():
    undocumented = {
        name: where for name, where in _used_variables().items() if name not in _documented()
    }
    assert undocumented == {}, "document these in docker/env.example or docker/README.md"


def test_every_documented_variable_is_read_somewhere():
    code = "\n".join(
        path.read_text()
        for folder in ("config", "annotator", "scoring", "routing")
        for path in (ROOT / folder).rglob("*.py")
    )
    stale = {
        name
        for name in DOCUMENTED.findall(ENV_EXAMPLE)
        if name not in _used_variables()
        and f'"{name}"' not in code
        and name not in {"FLOWER_BASIC_AUTH"}  # read by Flower itself
    }
    assert stale == set()


def test_an_unfilled_copy_of_the_example_cannot_start():
    active = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.splitlines() if line and line[0] != "#"
    )
    for required in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert active[required] == "", required
    # compose stops with a message naming the variable instead of starting without a password.
    text = (DOCKER / "compose.yml").read_text()
    for required in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert f"${{{required}:?set {required} in docker/.env}}" in text


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="needs the docker client's compose plugin")
def test_docker_compose_accepts_the_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.replace("SECRET_KEY=\n", "SECRET_KEY=" + "k" * 50 + "\n")
        .replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=0123abcd\n")
        .replace("REDIS_PASSWORD=\n", "REDIS_PASSWORD=0123abcd\n")
    )
    result = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(DOCKER / "compose.yml"),
            "--env-file",
            str(env_file),
            "--profile",
            "flower",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
