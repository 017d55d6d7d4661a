"""docker/Dockerfile and docker/Dockerfile.gpu, checked without a Docker engine: what they copy
exists, they end as a non-root user, they install the extras pyproject.toml has, the web image never
gets torch (neither from its dependencies nor because the web app imports it), and the static
files collect with the manifest storage, as in the image build."""

import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.docker.test_compose import assert_runs_something_that_exists

DOCKERFILES = {
    name: (ROOT / "docker" / name).read_text() for name in ("Dockerfile", "Dockerfile.gpu")
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n\s*",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in joined.splitlines()
        if line.strip()
    ]


def _final_stage(text: str) -> list[tuple[str, str]]:
    instructions = _instructions(text)
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_runs_as_an_unprivileged_user(name):
    users = [args for instruction, args in _final_stage(DOCKERFILES[name]) if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_what_the_image_copies_exists(name):
    for instruction, args in _instructions(DOCKERFILES[name]):
        if instruction == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"{name}: COPY {source}"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_image_has_every_package_of_the_project(name):
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {
        args.split()[0]
        for instruction, args in _final_stage(DOCKERFILES[name])
        if instruction == "COPY" and "--from=" not in args
    }
    assert packages | {"manage.py", "templates"} <= copied


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_extras_it_installs_exist(name):
    extras = re.findall(r"--extra (\w+)", DOCKERFILES[name])
    assert extras
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_default_command_exists(name):
    (command,) = [a for i, a in _final_stage(DOCKERFILES[name]) if i == "CMD"]
    assert_runs_something_that_exists(eval(command), name)  # a JSON array is a Python list


def test_the_gpu_image_gets_torch_for_cuda_on_a_cuda_base():
    text = DOCKERFILES["Dockerfile.gpu"]
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu", text)
    assert re.search(r"ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cu\d+", text)
    assert (
        "torch==2.13.0" in text
        and "torch==2.13.0" in PYPROJECT["project"]["optional-dependencies"]["ml"]
    )
    assert "python:3.11" in DOCKERFILES["Dockerfile"] and "--python 3.11" in text


def _requires(name: str, extras: frozenset, found: set[str], visited: set) -> None:
    """Adds the distributions that installing `name[extras]` brings, from installed metadata."""
    if (name.lower(), extras) in visited:
        return
    visited.add((name.lower(), extras))
    found.add(name.lower().replace("_", "-"))
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        environments = [{"extra": e} for e in extras] or [{"extra": ""}]
        if requirement.marker is None or any(requirement.marker.evaluate(e) for e in environments):
            _requires(requirement.name, frozenset(requirement.extras), found, visited)


def test_the_web_images_dependencies_never_bring_torch():
    project = PYPROJECT["project"]
    wanted = [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["flower"]
    ]
    installed, visited = set(), set()
    for requirement in wanted:
        _requires(requirement.name, frozenset(requirement.extras), installed, visited)
    assert {"django", "celery", "redis", "gunicorn", "flower"} <= installed
    assert not installed & {"torch", "transformers", "accelerate", "safetensors", "tokenizers"}


IMPORT_EVERYTHING_THE_WEB_IMAGE_RUNS = """
import sys
import config.wsgi
from django.urls import get_resolver
from config.celery import app

def walk(patterns):
    for pattern in patterns:
        walk(getattr(pattern, "url_patterns", []))
        getattr(pattern, "callback", None)

walk(get_resolver().url_patterns)
app.loader.import_default_modules()  # every tasks module, as a worker loads them
import django.contrib.admin
django.contrib.admin.autodiscover()
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_the_web_app_and_the_cpu_worker_never_import_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING_THE_WEB_IMAGE_RUNS],
        env={
            "PATH": "/usr/bin:/bin",
            "SECRET_KEY": "k",
            "ALLOWED_HOSTS": "x",
            "VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_static_files_collect_with_the_manifest_storage_as_in_the_build(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        env={
            "PATH": "/usr/bin:/bin",
            "SECRET_KEY": "collectstatic-only",
            "VAR_DIR": str(tmp_path / "var"),
            "STATIC_MANIFEST": "1",
            "STATIC_ROOT": str(tmp_path / "static"),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert list((tmp_path / "static").rglob("annotate.*.js.gz"))  # hashed and compressed
