"""Synthetic native-format records, for load tests and benchmarks (deterministic per seed)."""

import random
from collections.abc import Iterator

import orjson

_WORDS = [
    "model",
    "answer",
    "question",
    "reason",
    "careful",
    "detail",
    "example",
    "summary",
    "context",
    "source",
    "result",
    "evidence",
    "claim",
    "step",
    "method",
    "value",
    "error",
    "test",
    "check",
    "data",
    "label",
    "prefer",
    "better",
    "worse",
    "clear",
]
_LABELS = (
    "A-is-clearly-better",
    "A-is-slightly-better",
    "Tie",
    "B-is-slightly-better",
    "B-is-clearly-better",
)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(_WORDS, k=words))


def synthetic_records(
    n: int, *, seed: int = 0, human_labels: int = 3, lm_labels: int = 2, words: int = 60
) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(n):
        p_ab, p_ba = rng.random(), rng.random()
        p_a = (p_ab + p_ba) / 2
        yield {
            "external_id": f"syn-{seed}-{i:08d}",
            "prompt": _text(rng, words // 2) + "?",
            "response_a": _text(rng, words),
            "response_b": _text(rng, words),
            "model_a": f"model-{i % 7}",
            "model_b": f"model-{(i + 3) % 7}",
            "metadata": {"source": "synthetic", "subject": rng.choice(_WORDS)},
            "human_labels": [
                {
                    "annotator": f"annotator-{(i + k) % 50}",
                    "annotator_type": "expert" if k == 0 else "normal",
                    "overall": rng.choice(_LABELS),
                    "helpful": rng.choice(_LABELS),
                    "confidence": rng.choice(("absolutely", "fairly", "not")),
                    "reasons": ["correct", "concise"][: rng.randint(0, 2)],
                    "rationale": _text(rng, 8),
                    "time_spent_s": round(rng.uniform(5, 120), 1),
                    "shown_order": rng.choice(("AB", "BA")),
                }
                for k in range(human_labels)
            ],
            "lm_labels": [
                {
                    "judge": f"judge-{k}",
                    "judge_version": "v1",
                    "overall": "A" if p_a > 0.55 else "B" if p_a < 0.45 else "Tie",
                    "p_a": p_a,
                    "p_a_ab": p_ab,
                    "p_a_ba": p_ba,
                    "position_consistent": (p_ab > 0.5) == (p_ba > 0.5),
                }
                for k in range(lm_labels)
            ],
        }


def synthetic_jsonl(n: int, **options) -> Iterator[bytes]:
    for record in synthetic_records(n, **options):
        yield orjson.dumps(record) + b"\n"
