"""A Bradley-Terry reward-model trainer (docs/architecture.md, "Reward models"), in a plain
PyTorch loop: `RewardTraining` runs it in named steps (setup, step, evaluate, finish) and
`train_reward_model` is the whole run.

Model: `AutoModelForSequenceClassification(num_labels=1)`; a decoder model's score is read at the
last non-pad token (`config.pad_token_id` is always set), a BERT-like model's from its [CLS]
pooler. Loss per batch: `-logsigmoid(r_c - r_r - margin).mean() + c * mean((r_c + r_r)^2)`
(margin 0 where a pair has none or margins are off; c = `center_coef`, 0 disables).

Optimisation: AdamW (no weight decay on biases and norm weights), linear or cosine decay after a
linear warmup of `warmup_ratio` of the optimizer steps, gradient accumulation, gradient clipping,
dropout off (as TRL does). On CUDA the forward runs under bf16 autocast (fp32 weights and
optimizer); on CPU everything is fp32 (scoring.local_models.autocast).

Batches (`batching`): "random" (the default) draws each batch at random, as TRL does, and runs
it as forward passes over its pairs sorted by length, each padded to its own longest text and
at most `chunk_tokens` padded tokens (4096 on a CPU; on a GPU the whole batch in one pass), cut
where padding and the passes' own cost are least in all (`_chunks`); each pass's loss is its
pairs' terms over the batch size, so the gradient is that of one pass over the whole batch: only
the cost changes. "grouped" makes length-grouped batches instead (pairs
shuffled, cut into mega-batches of 50 batches, sorted by length inside each, the batches
shuffled, the longest first so that an out-of-memory shows at step 1) - it pads less, but on HH
harmless it cost validation accuracy against random batches, for our loop and for TRL's grouped
sampler alike (bench/reward.py; figures: bench/README.md), so it is not the default.

Other speed (bench/reward.py): texts are tokenised once, in batches, each prompt once, before the
first step; chosen and rejected go through the model together; the parameters and gradients live
in flat buffers (`FlatParameters`), so that clipping, the fused AdamW step and zeroing are one
operation each rather than one per tensor; losses and accuracies stay on the device between log
steps; evaluation runs under `torch.inference_mode()` on single sequences sorted by length.

Truncation policy (`truncate`): a text is `prefix + prompt + response + suffix`, where prefix and
suffix are the tokenizer's own special tokens ([CLS] ... [SEP] for BERT; BOS ... for a decoder,
to which EOS is appended when the tokenizer has one distinct from its pad token). The prompt and
the response are tokenised separately. When they do not fit in `max_length`:

- the response gets all it needs except a reserve of a quarter of the budget for the prompt (less
  when the prompt is shorter);
- the prompt is cut from the LEFT: its end (the latest turn, next to the response) stays;
- a response longer than its share is cut in the MIDDLE: its first quarter-share and its last
  three quarters stay, so the response's last tokens (and the EOS after them) are always seen.

torch and transformers are imported inside the functions, never at module import.
"""

import logging
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scoring.local_models import autocast, padded, resolve_device, to_device
from scoring.training.data import PreferencePair

logger = logging.getLogger(__name__)

SCHEDULERS = ("linear", "cosine")
PROMPT_RESERVE = 4  # the prompt keeps up to budget // PROMPT_RESERVE tokens when the text is long
RESPONSE_HEAD = 4  # a cut response keeps share // RESPONSE_HEAD tokens of its start
MEGA_BATCHES = 50  # batches per length-sorted mega-batch
BATCHINGS = ("random", "grouped")
# Padded tokens per forward pass on a CPU at most (chunk_tokens=0).
CPU_CHUNK_TOKENS = 4096
# What a forward and backward pass costs beyond its tokens, in padded tokens: on a CPU a pass of
# MiniLM costs about 0.2 ms a token and 12 ms whatever its size (2 cores, bench/README.md); a
# little more than that keeps shared cores, where every pass waits for its threads, in mind.
PASS_COST = 192


@dataclass
class TrainConfig:
    base_model: str = ""  # a local directory with the base model and its tokenizer
    lr: float = 2e-5
    epochs: int = 1
    batch_size: int = 16  # pairs per micro-batch
    # "random": batches drawn at random (TRL's default), each run as forward passes over its
    # pairs sorted by length (`chunk_tokens`), which changes the cost, not the gradient;
    # "grouped": length-grouped batches (faster still, but see the module docstring on accuracy).
    batching: str = "random"
    chunk_tokens: int = 0  # padded tokens per forward pass; 0: 4096 on CPU, whole batch on GPU
    grad_accum: int = 1  # micro-batches per optimizer step
    max_length: int = 512  # tokens per text (prompt + response + special tokens)
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    scheduler: str = "linear"  # "linear" or "cosine"
    use_margin: bool = False
    center_coef: float = 0.01  # reward-centering coefficient; 0 disables
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when there is one), "cpu", "cuda", "cuda:1", ...
    eval_every: int = 0  # optimizer steps between evaluations; 0: only at the end
    log_every: int = 10  # optimizer steps between on_log calls
    max_grad_norm: float = 1.0  # 0 disables clipping
    disable_dropout: bool = True
    eval_batch_size: int = 0  # sequences per evaluation batch; 0: 2 * batch_size
    num_threads: int = 0  # torch CPU threads; 0 leaves torch's default

    def validate(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"batching must be one of {', '.join(BATCHINGS)}")
        for name in ("epochs", "batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.lr <= 0:
            raise ValueError("lr must be positive")


@dataclass
class EvalResult:
    accuracy: float  # share of pairs with r_chosen > r_rejected (a tie counts as wrong)
    mean_margin: float  # mean of r_chosen - r_rejected
    reward_mean: float  # over chosen and rejected rewards together
    reward_std: float
    n: int
    chosen: list[float] = field(default_factory=list, repr=False)
    rejected: list[float] = field(default_factory=list, repr=False)

    def as_metrics(self, prefix: str = "val_") -> dict[str, float]:
        return {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}margin": self.mean_margin,
            f"{prefix}reward_mean": self.reward_mean,
            f"{prefix}reward_std": self.reward_std,
            f"{prefix}pairs": self.n,
        }


@dataclass
class TrainResult:
    model: Any  # the trained model, in eval mode
    tokenizer: Any
    config: TrainConfig
    final_metrics: dict[str, Any]
    metrics: list[dict[str, Any]]  # the logged series, as passed to on_log
    stopped: bool = False  # should_stop() asked to stop; no final evaluation then


# --- tokenisation and truncation ---


@dataclass(frozen=True)
class TextFormat:
    """How one (prompt, response) becomes token ids for a given tokenizer."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    max_length: int

    @property
    def budget(self) -> int:
        return self.max_length - len(self.prefix) - len(self.suffix)


def prepare_tokenizer(tokenizer, model=None):
    """Give the tokenizer a pad token (its own, else EOS, else a new [PAD], growing the model's
    embeddings) and set `config.pad_token_id` on the model, which decoder models need to find
    their last real token. Returns the tokenizer."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            if model is not None and len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
                model.resize_token_embeddings(len(tokenizer))
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
        text_config = model.config.get_text_config()
        if text_config is not model.config:
            text_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


def text_format(tokenizer, max_length: int) -> TextFormat:
    """The tokenizer's own special tokens around a text, plus EOS where it adds none and has one
    that differs from its pad token (so that a decoder's score is read at the EOS)."""
    probe = "hello world"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    prefix: list[int] = []
    suffix: list[int] = []
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            prefix, suffix = full[:start], full[start + len(bare) :]
            break
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if not suffix and eos is not None and eos != pad:
        suffix = [eos]
    fmt = TextFormat(tuple(prefix), tuple(suffix), max_length)
    if fmt.budget < 2:
        raise ValueError(
            f"max_length={max_length} leaves no room for a prompt and a response "
            f"after {len(prefix) + len(suffix)} special tokens"
        )
    return fmt


def truncate(prompt: Sequence[int], response: Sequence[int], budget: int) -> tuple[list, list]:
    """(prompt, response) cut to `budget` tokens together, by the policy in the module docstring.

    The response always keeps its last tokens; the prompt always keeps its end.
    """
    prompt, response = list(prompt), list(response)
    if len(prompt) + len(response) <= budget:
        return prompt, response
    prompt_keep = min(len(prompt), max(budget - len(response), budget // PROMPT_RESERVE))
    response_keep = budget - prompt_keep
    if len(response) > response_keep:
        head = response_keep // RESPONSE_HEAD
        tail = response_keep - head
        response = response[:head] + response[len(response) - tail :]
    prompt = prompt[len(prompt) - prompt_keep :] if prompt_keep else []
    return prompt, response


def _token_ids(tokenizer, texts: Sequence[str], chunk: int = 1024) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        out.extend(tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"])
    return out


def encode_texts(
    tokenizer, items: Sequence[tuple[str, str]], fmt: TextFormat
) -> tuple[list[list[int]], int]:
    """Token ids of (prompt, response) texts, each prompt tokenised once; and how many were cut."""
    prompts = list(dict.fromkeys(prompt for prompt, _ in items))
    prompt_ids = dict(zip(prompts, _token_ids(tokenizer, prompts), strict=True))
    response_ids = _token_ids(tokenizer, [response for _, response in items])
    prefix, suffix, budget = list(fmt.prefix), list(fmt.suffix), fmt.budget
    encoded, cut = [], 0
    for (prompt, _), response in zip(items, response_ids, strict=True):
        p = prompt_ids[prompt]
        if len(p) + len(response) > budget:
            cut += 1
            p, response = truncate(p, response, budget)
        encoded.append(prefix + p + response + suffix)
    return encoded, cut


@dataclass
class EncodedPairs:
    chosen: list[list[int]]
    rejected: list[list[int]]
    margins: list[float]
    truncated: int  # texts that were cut

    def __len__(self) -> int:
        return len(self.chosen)


def encode_pairs(
    tokenizer, pairs: Sequence[PreferencePair], fmt: TextFormat, *, use_margin: bool = False
) -> EncodedPairs:
    items = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    encoded, cut = encode_texts(tokenizer, items, fmt)
    n = len(pairs)
    margins = [(p.margin or 0.0) if use_margin else 0.0 for p in pairs]
    return EncodedPairs(encoded[:n], encoded[n:], margins, cut)


# --- batching ---


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, mega_batches: int = MEGA_BATCHES
) -> list[list[int]]:
    """Index batches of similar lengths: shuffled, sorted within mega-batches, batches shuffled,
    the batch holding the longest item first."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * mega_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    if batches:
        longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def make_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, grouped: bool = False
) -> list[list[int]]:
    """Index batches for one epoch: random (seeded), or length-grouped."""
    if grouped:
        return length_grouped_batches(lengths, batch_size, seed=seed)
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _chunks(
    batch: Sequence[int], lengths: Sequence[int], max_tokens: int, pass_cost: int = PASS_COST
) -> list[list[int]]:
    """The batch's pairs, longest first, cut into forward passes (chosen and rejected together)
    of at most `max_tokens` padded tokens, at least one pair each; 0: one pass.

    Where to cut is chosen to cost least in all, a pass costing its padded tokens plus
    `pass_cost`: a pass pads every text to its longest, so long and short pairs are better
    apart, but each pass has a fixed cost too."""
    if max_tokens <= 0 or len(batch) == 1:
        return [list(batch)]
    ordered = sorted(batch, key=lambda i: -lengths[i])
    # best[j]: the least cost of the first j pairs; start[j]: where their last pass begins.
    best = [0] + [math.inf] * len(ordered)
    start = [0] * (len(ordered) + 1)
    for end in range(1, len(ordered) + 1):
        for begin in range(end - 1, -1, -1):  # a longer pass, its first pair the widest
            tokens = 2 * (end - begin) * lengths[ordered[begin]]
            if tokens > max_tokens and end - begin > 1:
                break
            cost = best[begin] + tokens + pass_cost
            if cost < best[end]:
                best[end], start[end] = cost, begin
    chunks, end = [], len(ordered)
    while end:
        chunks.append(ordered[start[end] : end])
        end = start[end]
    return chunks[::-1]


# --- model helpers ---


def _rewards(model, ids, mask):
    return model(input_ids=ids, attention_mask=mask).logits.squeeze(-1).float()


def _on_device(tensors, device) -> tuple:
    return tuple(to_device(t, str(device)) for t in tensors)


def score_sequences(
    model, sequences: Sequence[Sequence[int]], *, pad_id: int, batch_size: int = 32
) -> list[float]:
    """The model's reward for each token sequence, in input order (batched by length)."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = [0.0] * len(sequences)
    with torch.inference_mode(), autocast(device):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = _on_device(
                padded([sequences[i] for i in chunk], pad_id, left=False), device
            )
            for i, value in zip(chunk, _rewards(model, ids, mask).tolist(), strict=True):
                out[i] = value
    if was_training:
        model.train()
    return out


def _eval_encoded(model, encoded: EncodedPairs, pad_id: int, batch_size: int) -> EvalResult:
    n = len(encoded)
    if n == 0:
        return EvalResult(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    rewards = score_sequences(
        model, encoded.chosen + encoded.rejected, pad_id=pad_id, batch_size=batch_size
    )
    chosen, rejected = rewards[:n], rewards[n:]
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    return EvalResult(
        accuracy=sum(c > r for c, r in zip(chosen, rejected, strict=True)) / n,
        mean_margin=sum(c - r for c, r in zip(chosen, rejected, strict=True)) / n,
        reward_mean=mean,
        reward_std=std,
        n=n,
        chosen=chosen,
        rejected=rejected,
    )


def evaluate(
    model,
    tokenizer,
    pairs: Sequence[PreferencePair],
    *,
    max_length: int = 512,
    batch_size: int = 32,
) -> EvalResult:
    """Pairwise accuracy (strict r_chosen > r_rejected), mean margin and reward mean/std of
    `pairs`, each text encoded by the truncation policy, on the model's device."""
    prepare_tokenizer(tokenizer, model)
    fmt = text_format(tokenizer, usable_length(model, max_length))
    encoded = encode_pairs(tokenizer, pairs, fmt)
    return _eval_encoded(model, encoded, tokenizer.pad_token_id, batch_size)


def usable_length(model, max_length: int) -> int:
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and 0 < limit < max_length:
        logger.warning("max_length %d is over the model's %d positions", max_length, limit)
        return limit
    return max_length


def _decay_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lowered = name.lower()
        if param.ndim < 2 or "norm" in lowered or lowered.endswith(".bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class FlatParameters:
    """The trainable parameters as views into one flat buffer per weight-decay group, their
    gradients as views into one flat gradient buffer each.

    Backward accumulates into the views in place (a defined `.grad` is added to, not replaced),
    so gradient clipping, the AdamW step and zeroing are one operation per buffer instead of one
    per tensor (MiniLM has about a hundred). On a CPU each elementwise operation is an OpenMP
    region whose barrier waits for every thread; with the cores shared, per-tensor updates cost
    seconds a step where flat ones cost hundredths (bench/README.md). `restore()` gives every
    parameter its own storage again (for saving).
    """

    def __init__(self, torch, model, weight_decay: float):
        self.params: list = []
        self.groups: list[dict] = []
        self.grads: list = []
        for group in _decay_groups(model, weight_decay):
            params = group["params"]
            if not params:
                continue
            first = params[0]
            if any(p.dtype != first.dtype or p.device != first.device for p in params):
                raise ValueError("FlatParameters needs one dtype and device per group")
            total = sum(p.numel() for p in params)
            buffer = torch.empty(total, dtype=first.dtype, device=first.device)
            grad = torch.zeros(total, dtype=first.dtype, device=first.device)
            offset = 0
            for p in params:
                n = p.numel()
                buffer[offset : offset + n].copy_(p.detach().reshape(-1))
                p.data = buffer[offset : offset + n].view_as(p)
                p.grad = grad[offset : offset + n].view_as(p)
                offset += n
            flat = torch.nn.Parameter(buffer)
            flat.grad = grad
            self.groups.append({"params": [flat], "weight_decay": group["weight_decay"]})
            self.params.extend(params)
            self.grads.append(grad)

    def flat(self) -> list:
        return [group["params"][0] for group in self.groups]

    def zero_grad(self) -> None:
        for grad in self.grads:
            grad.zero_()

    def restore(self) -> None:
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None
        self.groups, self.grads = [], []


def _disable_dropout(torch, model) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def peak_memory_mb(device) -> tuple[float | None, str]:
    """(peak MB, what it measures): CUDA's peak allocation, else the process's peak RSS."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    try:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_peak_rss"
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return None, "unavailable"


def load_base(config: TrainConfig):
    """(model, tokenizer) from `config.base_model`, the reward head freshly initialised."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    model = AutoModelForSequenceClassification.from_pretrained(
        config.base_model, num_labels=1, dtype=torch.float32
    )
    return model, tokenizer


# --- training ---


@dataclass
class _Window:
    """What the loop sums between two log entries; the sums stay on the device."""

    loss: Any
    correct: Any
    pairs: int = 0
    batches: int = 0


class RewardTraining:
    """One training run in named steps: `setup()` (device, model, encoded pairs, optimizer),
    `step(group)` (one optimizer step), `evaluate(epoch)` and `finish()`; `run()` is the whole
    run. The arguments are those of `train_reward_model`."""

    def __init__(
        self,
        config: TrainConfig,
        train_pairs: Sequence[PreferencePair],
        validation_pairs: Sequence[PreferencePair] = (),
        *,
        on_log: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        model=None,
        tokenizer=None,
    ):
        config.validate()
        if not train_pairs:
            raise ValueError("no training pairs")
        self.config = config
        self.train_pairs, self.validation_pairs = train_pairs, validation_pairs
        self.on_log, self.should_stop = on_log, should_stop
        self.model, self.tokenizer = model, tokenizer
        self.metrics: list[dict] = []  # the logged series
        self.steps = 0  # optimizer steps done
        self.pairs_seen = 0
        self.stopped = False
        self.eval_seconds = self.eval_cpu_seconds = 0.0

    def run(self) -> TrainResult:
        self.setup()
        config = self.config
        for epoch in range(config.epochs):
            batches = make_batches(
                self.lengths,
                config.batch_size,
                seed=config.seed + epoch,
                grouped=config.batching == "grouped",
            )
            for start in range(0, len(batches), config.grad_accum):
                group = batches[start : start + config.grad_accum]
                if not self.step(group):
                    break
                self._after_step(epoch + min(1.0, (start + len(group)) / len(batches)))
            if self.stopped:
                break
        return self.finish()

    # --- setup ---

    def setup(self) -> None:
        """The device, the model on it, the pairs encoded (once, for the whole run), the
        optimizer and its schedule; the training clocks start."""
        import torch

        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self.device = torch.device(resolve_device(self.config.device))
        torch.manual_seed(self.config.seed)  # the reward head's initialisation
        self._prepare_model(torch)
        self._encode()
        self._prepare_optimizer(torch)
        self.model.train()
        zero = torch.zeros((), device=self.device)
        self.window = _Window(zero.clone(), zero.clone())
        self.loop_started, self.loop_cpu_started = time.perf_counter(), time.process_time()

    def _prepare_model(self, torch) -> None:
        if self.model is None or self.tokenizer is None:
            self.model, self.tokenizer = load_base(self.config)
        if getattr(self.model.config, "num_labels", 1) != 1:
            raise ValueError("a reward model needs num_labels=1")
        prepare_tokenizer(self.tokenizer, self.model)
        self.model.to(self.device)
        if self.config.disable_dropout:
            _disable_dropout(torch, self.model)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.pad_id = self.tokenizer.pad_token_id

    def _encode(self) -> None:
        started = time.perf_counter()
        self.fmt = text_format(self.tokenizer, usable_length(self.model, self.config.max_length))
        self.train = encode_pairs(
            self.tokenizer, self.train_pairs, self.fmt, use_margin=self.config.use_margin
        )
        self.validation = encode_pairs(self.tokenizer, self.validation_pairs, self.fmt)
        self.tokenize_seconds = time.perf_counter() - started
        pairs = zip(self.train.chosen, self.train.rejected, strict=True)
        self.lengths = [max(len(c), len(r)) for c, r in pairs]

    def _prepare_optimizer(self, torch) -> None:
        from transformers import get_scheduler

        config = self.config
        micro_per_epoch = math.ceil(len(self.train) / config.batch_size)
        self.total_steps = math.ceil(micro_per_epoch / config.grad_accum) * config.epochs
        # 0: padding costs a CPU its full price, while a GPU takes whole batches.
        self.chunk_tokens = config.chunk_tokens or (
            CPU_CHUNK_TOKENS if self.device.type == "cpu" else 0
        )
        self.eval_batch = config.eval_batch_size or 2 * config.batch_size
        self.flat = FlatParameters(torch, self.model, config.weight_decay)
        self.optimizer = torch.optim.AdamW(self.flat.groups, lr=config.lr, fused=True)
        self.scheduler = get_scheduler(
            config.scheduler,
            self.optimizer,
            num_warmup_steps=math.ceil(config.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        self.margins = torch.tensor(self.train.margins, dtype=torch.float32)

    # --- steps ---

    def step(self, group: Sequence[Sequence[int]]) -> bool:
        """One optimizer step over a group of `grad_accum` micro-batches (lists of pair
        indices). False, and no step, when should_stop() asks to stop before a micro-batch."""
        import torch

        for batch in group:
            if self.should_stop is not None and self.should_stop():
                self.stopped = True
                return False
            # The batch's loss is a mean over its pairs, so each pass adds its pairs' terms
            # divided by the batch size: the gradient is that of one pass over the batch.
            self._backward(batch, scale=1.0 / (len(batch) * len(group)))
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.flat.flat(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.flat.zero_grad()
        self.steps += 1
        return True

    def _backward(self, batch: Sequence[int], scale: float) -> None:
        """The gradient of one micro-batch, in forward passes of at most `chunk_tokens`."""
        train, window = self.train, self.window
        for chunk in _chunks(batch, self.lengths, self.chunk_tokens):
            texts = [train.chosen[i] for i in chunk] + [train.rejected[i] for i in chunk]
            ids, mask = _on_device(padded(texts, self.pad_id, left=False), self.device)
            with autocast(self.device):
                rewards = _rewards(self.model, ids, mask)
            chosen, rejected = rewards[: len(chunk)], rewards[len(chunk) :]
            loss = self._loss(chosen, rejected, chunk)
            (loss * scale).backward()
            window.loss += loss.detach() / len(batch)
            window.correct += (chosen > rejected).sum().detach()
        window.pairs += len(batch)
        window.batches += 1
        self.pairs_seen += len(batch)

    def _loss(self, chosen, rejected, chunk: Sequence[int]):
        """The sum of the chunk's Bradley-Terry terms (with margins and centering)."""
        import torch

        diff = chosen - rejected
        if self.config.use_margin:
            diff = diff - self.margins[chunk].to(self.device)
        terms = -torch.nn.functional.logsigmoid(diff)
        if self.config.center_coef:
            terms = terms + self.config.center_coef * (chosen + rejected) ** 2
        return terms.sum()

    def _after_step(self, epoch: float) -> None:
        config, step = self.config, self.steps
        if step % config.log_every == 0 or step == self.total_steps:
            self._log_train(epoch)
        due = config.eval_every and step % config.eval_every == 0
        if due and step < self.total_steps and len(self.validation):
            self.evaluate(epoch)

    def _log_train(self, epoch: float) -> None:
        window = self.window
        elapsed = time.perf_counter() - self.loop_started - self.eval_seconds
        self._emit(
            {
                "kind": "train",
                **self._position(epoch),
                "loss": window.loss.item() / max(1, window.batches),
                "accuracy": window.correct.item() / max(1, window.pairs),
                "lr": self.scheduler.get_last_lr()[0],
                "pairs_per_s": self.pairs_seen / elapsed if elapsed > 0 else None,
            }
        )
        window.loss.zero_()
        window.correct.zero_()
        window.pairs = window.batches = 0

    def _position(self, epoch: float) -> dict:
        return {
            "step": self.steps,
            "epoch": round(epoch, 4),
            "progress": round(self.steps / self.total_steps, 4),
        }

    def _emit(self, entry: dict) -> None:
        self.metrics.append(entry)
        if self.on_log is not None:
            self.on_log(entry)

    # --- evaluation and the end ---

    def evaluate(self, epoch: float) -> EvalResult:
        """Score the validation pairs and log them as an "eval" entry; the time it takes is not
        training time."""
        started, cpu_started = time.perf_counter(), time.process_time()
        result = _eval_encoded(self.model, self.validation, self.pad_id, self.eval_batch)
        self._emit({"kind": "eval", **self._position(epoch), **result.as_metrics()})
        self.eval_seconds += time.perf_counter() - started
        self.eval_cpu_seconds += time.process_time() - cpu_started
        return result

    def finish(self) -> TrainResult:
        """Stop the clocks, give the parameters their own storage back, evaluate (unless
        stopped) and gather the final metrics."""
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        train_seconds = time.perf_counter() - self.loop_started - self.eval_seconds
        train_cpu_seconds = time.process_time() - self.loop_cpu_started - self.eval_cpu_seconds
        self.flat.restore()
        self.optimizer = self.scheduler = None  # the AdamW state goes
        self.model.eval()
        final: dict[str, Any] = {}
        if not self.stopped and len(self.validation):
            final.update(self.evaluate(float(self.config.epochs)).as_metrics())
        final.update(self._run_metrics(train_seconds, train_cpu_seconds))
        last_train = next((m for m in reversed(self.metrics) if m["kind"] == "train"), None)
        if last_train is not None:
            final["train_loss"] = last_train["loss"]
            final["train_accuracy"] = last_train["accuracy"]
        return TrainResult(
            model=self.model,
            tokenizer=self.tokenizer,
            config=self.config,
            final_metrics=final,
            metrics=self.metrics,
            stopped=self.stopped,
        )

    def _run_metrics(self, train_seconds: float, train_cpu_seconds: float) -> dict[str, Any]:
        peak, peak_kind = peak_memory_mb(self.device)
        return {
            "train_pairs": len(self.train),
            "validation_pairs": len(self.validation),
            "truncated_texts": self.train.truncated + self.validation.truncated,
            "steps": self.steps,
            "total_steps": self.total_steps,
            "pairs_trained": self.pairs_seen,
            "train_seconds": round(train_seconds, 3),
            "train_cpu_seconds": round(train_cpu_seconds, 3),
            "tokenize_seconds": round(self.tokenize_seconds, 3),
            "pairs_per_s": self.pairs_seen / train_seconds if train_seconds > 0 else None,
            "peak_memory_mb": round(peak, 1) if peak is not None else None,
            "peak_memory_kind": peak_kind,
            "device": str(self.device),
            "max_length": self.fmt.max_length,
            "stopped": self.stopped,
        }


def train_reward_model(
    config: TrainConfig,
    train_pairs: Sequence[PreferencePair],
    validation_pairs: Sequence[PreferencePair] = (),
    *,
    on_log: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model=None,
    tokenizer=None,
) -> TrainResult:
    """Train a reward model on `train_pairs`; evaluate on `validation_pairs` every
    `config.eval_every` optimizer steps (if set) and at the end.

    `on_log(entry)` is called every `log_every` optimizer steps with {"kind": "train", "step",
    "epoch", "progress", "loss", "accuracy", "lr", "pairs_per_s"} and after each evaluation with
    {"kind": "eval", "step", "epoch", "progress", "val_accuracy", "val_margin", "val_reward_mean",
    "val_reward_std", "val_pairs"}; the same entries make `TrainResult.metrics`. `should_stop()`
    is polled before each micro-batch; when it returns True the loop ends, without a final
    evaluation, and the result has `stopped=True`. `model` / `tokenizer` replace loading from
    `config.base_model` (the model must be a sequence classifier with one label).
    """
    return RewardTraining(
        config,
        train_pairs,
        validation_pairs,
        on_log=on_log,
        should_stop=should_stop,
        model=model,
        tokenizer=tokenizer,
    ).run()
