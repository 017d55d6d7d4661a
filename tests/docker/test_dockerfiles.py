"""docker/Dockerfile (targets web and cpu-worker) and docker/Dockerfile.gpu, checked without a
Docker engine: what they copy exists, each image has the whole project and its collected static
files and ends as a non-root user, they install extras that pyproject.toml has, the web image never
gets torch (neither from its dependencies nor because something it runs imports it), and the static
files collect with the manifest storage, as in the image build."""

import json
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


class Stage:
    def __init__(self, name: str, base: str):
        self.name, self.base, self.instructions = name, base, []

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def _stages(text: str) -> dict[str, Stage]:
    stages = {}
    for instruction, args in _instructions(text):
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else f"#{len(stages)}"
            stages[name] = Stage(name, words[0])
        elif stages:
            list(stages.values())[-1].instructions.append((instruction, args))
    return stages


def _chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built on, the root first."""
    chain = [stages[name]]
    while chain[0].base in stages:
        chain.insert(0, stages[chain[0].base])
    return chain


def _copied_from(stages: dict[str, Stage], name: str) -> list[tuple[str, Stage]]:
    """(COPY arguments, the stage they come from) for the stage, its bases and the stages it
    copies from."""
    copies = []
    for stage in _chain(stages, name):
        for args in stage.args("COPY"):
            source = re.search(r"--from=(\S+)", args)
            if source and source.group(1) in stages:
                copies += _copied_from(stages, source.group(1))
            copies.append((args, stage))
    return copies


def _images() -> list[tuple[str, str]]:
    """(Dockerfile, target) of every image that runs something (a stage chain with a CMD)."""
    images = []
    for file, text in DOCKERFILES.items():
        stages = _stages(text)
        bases = {stage.base for stage in stages.values()}
        images += [
            (file, name)
            for name in stages
            if name not in bases and any(s.args("CMD") for s in _chain(stages, name))
        ]
    return images


IMAGES = _images()


def _image(file: str, target: str) -> tuple[dict[str, Stage], list[Stage]]:
    stages = _stages(DOCKERFILES[file])
    return stages, _chain(stages, target)


def test_each_file_builds_the_images_compose_runs():
    assert set(IMAGES) == {
        ("Dockerfile", "web"),
        ("Dockerfile", "cpu-worker"),
        ("Dockerfile.gpu", "gpu-worker"),
    }
    # The web image is the default target (the last stage).
    assert list(_stages(DOCKERFILES["Dockerfile"]))[-1] == "web"


@pytest.mark.parametrize(("file", "target"), IMAGES)
def test_the_image_runs_as_an_unprivileged_user(file, target):
    _, chain = _image(file, target)
    users = [user for stage in chain for user in stage.args("USER")]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_what_the_images_copy_exists(name):
    stages = _stages(DOCKERFILES[name])
    for stage in stages.values():
        for args in stage.args("COPY"):
            if "--from=" not in args:
                *sources, _ = args.split()
                for source in sources:
                    assert (ROOT / source).exists(), f"{name}: COPY {source}"
            else:
                source = re.search(r"--from=(\S+)", args).group(1)
                assert source in stages or source.startswith(("ghcr.io/", "uv")), args


@pytest.mark.parametrize(("file", "target"), IMAGES)
def test_the_image_has_the_whole_project_and_its_static_files(file, target):
    stages, chain = _image(file, target)
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {args.split()[0] for args, _ in _copied_from(stages, target) if "--from=" not in args}
    assert packages | {"manage.py", "templates", "static"} <= copied
    # Settings load with STATIC_MANIFEST=1, so the collected files must be there.
    environment = " ".join(env for stage in chain for env in stage.args("ENV"))
    assert "STATIC_MANIFEST=1" in environment
    runs = [args for stage in chain for args in stage.args("RUN")] + [
        args for args, stage in _copied_from(stages, target) if "staticfiles" in args
    ]
    assert any("collectstatic" in r or "/app/staticfiles" in r for r in runs)


def _extras(file: str, target: str) -> set[str]:
    """The pyproject extras installed into the image's virtual environment."""
    stages, _ = _image(file, target)
    venv_stages = [
        re.search(r"--from=(\S+)", args).group(1)
        for args, _ in _copied_from(stages, target)
        if "/opt/venv" in args and "--from=" in args
    ] or [target]
    runs = [args for name in venv_stages for s in _chain(stages, name) for args in s.args("RUN")]
    return {extra for run in runs for extra in re.findall(r"--extra (\w+)", run)}


@pytest.mark.parametrize(("file", "target"), IMAGES)
def test_the_extras_it_installs_exist(file, target):
    extras = _extras(file, target)
    assert extras
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])


def test_only_the_workers_get_the_ml_extra():
    assert "ml" not in _extras("Dockerfile", "web")
    assert "ml" in _extras("Dockerfile", "cpu-worker")
    assert "ml" in _extras("Dockerfile.gpu", "gpu-worker")


@pytest.mark.parametrize(("file", "target"), IMAGES)
def test_the_default_command_exists(file, target):
    _, chain = _image(file, target)
    command = [c for stage in chain for c in stage.args("CMD")][-1]
    assert_runs_something_that_exists(json.loads(command), f"{file} {target}")


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
    extras = _extras("Dockerfile", "web")
    wanted = [
        Requirement(r)
        for r in project["dependencies"]
        + [r for extra in extras for r in project["optional-dependencies"][extra]]
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


def test_nothing_the_web_image_runs_imports_torch(tmp_path):
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
