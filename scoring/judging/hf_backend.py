"""A local Hugging Face causal LM as the judge: one forward pass per shown order, scored.

Speed (docs/architecture.md, "The LM judge"): left padding (so `logits[:, -1]` is each
sequence's real last token, with position ids computed from the mask), `logits_to_keep=1` (the
full logits of a batch would be gigabytes), `torch.inference_mode()`, SDPA attention, bf16 on
CUDA, batches sorted by length so that little is padding, and both orders of a comparison next
to each other. Loading, devices, padding and prefix caches come from scoring.local_models.

Batching depends on the device. On CUDA a batch holds `batch_size` sequences, whole: a GPU is
latency-bound at these sizes, so few large forward passes win, and results stay on the device
until the end of the call (one synchronisation). On a CPU a batch holds ONE comparison (its two
shown orders): a CPU forward pass over a few hundred tokens is already a large matrix product,
so batching more gains nothing and every padding token is real work (measured with bench/judge.py;
figures: bench/README.md).

Shared prefixes are computed once (`prefix_cache`; by default on a CPU, off on CUDA, where the
extra steps cost more than they save): every sequence of a call starts with the same system text,
and the two orders of a comparison share the user prompt up to the first response as well. The
common prefix of the call runs once; a batch then runs either its sequences' remaining tokens,
or, where that pads less in all, its comparisons' own prefixes (left-padded) and then both
orders' remaining tokens, each step from the cached keys and values. Position ids come from the
attention mask, so padding between the segments is invisible to the model and the label
log-probabilities equal a plain forward pass's (to float rounding).
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scoring.judging.backend import JudgeBackendError, OrderScore
from scoring.judging.combine import p_first_better, renormalise
from scoring.judging.prompts import TRUNCATION_MARKER, JudgeInput, PromptSpec, judge_messages
from scoring.local_models import (
    LocalModelError,
    cache_for_rows,
    common_prefix_length,
    load_causal_lm,
    mask_positions,
    padded,
    prefix_cache,
    release_device,
    resolve_device,
    resolve_dtype,
    to_device,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    index: int
    ids: list[int]
    truncated: bool


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
        """`model_path` None: the demo SmolLM2 (scoring.local_models.smollm2_location)."""
        self.spec = spec
        self.batch_size = max(1, batch_size)
        self.max_input_tokens = max_input_tokens
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(self.device, dtype)
        on_cpu = self.device == "cpu"
        self.prefix_cache = on_cpu if prefix_cache is None else prefix_cache
        # Sequences per batch; on a CPU a batch is one comparison (see the module docstring).
        self.one_comparison_per_batch = on_cpu
        try:
            self.model, self.tokenizer, self.pad_id = load_causal_lm(
                model_path, gguf_file, self.device, self.dtype, model=model, tokenizer=tokenizer
            )
        except LocalModelError as error:
            raise JudgeBackendError(str(error)) from error
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
            for batch, logprobs in self._scored_batches(encoded, self._batches(inputs, encoded)):
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

    def _batches(
        self, inputs: Sequence[JudgeInput], encoded: list[Encoded]
    ) -> list[list[list[Encoded]]]:
        """Batches of comparisons (each its list of shown orders), sorted by length: one
        comparison per batch on a CPU, else about `batch_size` sequences."""
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
        return batches

    def _scored_batches(self, encoded: list[Encoded], batches: list[list[list[Encoded]]]):
        """(batch of Encoded, their label log-probs on the device), batch by batch."""
        if not self.prefix_cache:
            for group in batches:
                flat = [e for unit in group for e in unit]
                yield flat, self._whole_label_logprobs([e.ids for e in flat])
            return
        # Every sequence keeps at least one token of its own after the shared prefix.
        shared = common_prefix_length([e.ids for e in encoded], cap=1)
        base = prefix_cache(self.model, encoded[0].ids[:shared], self.device) if shared else None
        for group in batches:
            flat = [e for unit in group for e in unit]
            cuts = self._unit_prefixes(group, shared)
            middles = [unit[0].ids[shared:cut] for unit, cut in zip(group, cuts, strict=True)]
            suffixes = [e.ids[cut:] for unit, cut in zip(group, cuts, strict=True) for e in unit]
            owner = [u for u, unit in enumerate(group) for _ in unit]
            yield flat, self._cached_label_logprobs(base, shared, middles, suffixes, owner)

    @staticmethod
    def _unit_prefixes(group: list[list[Encoded]], shared: int) -> list[int]:
        """Where each comparison's own prefix ends: after the prompt its shown orders share, or
        at `shared` for all when running those prefixes separately would pad more than it
        saves (each segment pads to its own longest row)."""
        flat = [e for unit in group for e in unit]
        cuts = [max(shared, common_prefix_length([e.ids for e in unit], cap=1)) for unit in group]
        two_step = len(group) * max(c - shared for c in cuts) + len(flat) * max(
            len(e.ids) - c for unit, c in zip(group, cuts, strict=True) for e in unit
        )
        if two_step >= len(flat) * (max(len(e.ids) for e in flat) - shared):
            return [shared] * len(group)
        return cuts

    def _forward(self, ids, mask_so_far, cache=None, *, use_cache: bool):
        """One forward pass over `ids` (the last columns of `mask_so_far`, after what `cache`
        holds), keeping the last position's logits only."""
        positions = mask_positions(mask_so_far)[:, -ids.shape[1] :]
        return self.model(
            input_ids=to_device(ids, self.device),
            attention_mask=to_device(mask_so_far, self.device),
            position_ids=to_device(positions, self.device),
            cache=cache,
            use_cache=use_cache,
            logits_to_keep=1,
        )

    def _cached_label_logprobs(self, base, shared, middles, suffixes, owner):
        """Label log-probs of sequences = shared prefix (`base`, cached) + their comparison's
        middle (`middles[owner[i]]`) + `suffixes[i]`, padding on the left of each segment."""
        import torch

        units = len(middles)
        mask = torch.ones((units, shared), dtype=torch.long)
        cache = cache_for_rows(base, units, self.device) if base is not None else None
        with torch.inference_mode():
            if any(middles):
                ids, middle_mask = padded(middles, self.pad_id, left=True)
                mask = torch.cat([mask, middle_mask], dim=1)
                cache = self._forward(ids, mask, cache, use_cache=True).cache
            index = torch.tensor(owner, dtype=torch.long)
            if cache is not None:
                cache.batch_select_indices(to_device(index, self.device))
            ids, suffix_mask = padded(suffixes, self.pad_id, left=True)
            mask = torch.cat([mask[index], suffix_mask], dim=1)
            return self._label_columns(self._forward(ids, mask, cache, use_cache=True).logits)

    def _whole_label_logprobs(self, sequences: list[list[int]]):
        """Label log-probs of whole sequences, left-padded, in one forward pass."""
        import torch

        ids, mask = padded(sequences, self.pad_id, left=True)
        with torch.inference_mode():
            return self._label_columns(self._forward(ids, mask, use_cache=False).logits)

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
