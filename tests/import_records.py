"""Records in the import format (native JSON Lines) for tests that import: `native` builds one,
RICH has every field, `planted_records` is a data set with a planted answer for the analytics;
`chosen_rejected` reads an imported pair back."""

import random


def native(external_id="c1", **overrides):
    record = {
        "external_id": external_id,
        "prompt": f"Question {external_id}?",
        "response_a": "Answer one.",
        "response_b": "Answer two.",
    }
    record.update(overrides)
    return record


RICH = native(
    "rich",
    model_a="model-x",
    model_b="model-y",
    metadata={"source": "unit", "subject": "math", "tags": ["a", "b"]},
    human_labels=[
        {
            "annotator": "ann-1",
            "annotator_type": "expert",
            "overall": "A-is-slightly-better",
            "helpful": "a-is-clearly-better",
            "truthful": "Tie",
            "harmless": None,
            "confidence": "fairly-confident",
            "reasons": ["correct", "concise"],
            "rationale": "A answers the question.",
            "time_spent_s": 12.5,
            "shown_order": "BA",
            "guidelines_version": 2,
            "created_at": "2026-01-02T03:04:05+00:00",
        },
        {"annotator": "ann-2", "overall": "B"},
    ],
    lm_labels=[
        {
            "judge": "judge-x",
            "judge_version": "v1",
            "overall": "A",
            "p_a": 0.8,
            "p_a_ab": 0.9,
            "p_a_ba": 0.7,
            "position_consistent": True,
            "rationale": "",
        }
    ],
)


LABELS = {0: "A-is-clearly-better", 1: "B-is-slightly-better", 2: "Tie"}


def planted_records(n: int, *, seed: int = 0, humans: int = 3, lm: bool = True) -> list[dict]:
    """Comparisons between four models of increasing strength, labelled by five annotators of
    whom `bad` answers at random, and by one judge that is right 80% of the time."""
    rng = random.Random(seed)
    strength = {"m0": 0.0, "m1": 0.5, "m2": 1.0, "m3": 1.5}
    annotators = ["good-1", "good-2", "good-3", "good-4", "bad"]
    records = []
    for i in range(n):
        model_a, model_b = rng.sample(sorted(strength), 2)
        p_a = 1 / (1 + 2.718281828 ** (strength[model_b] - strength[model_a]))
        truth = 0 if rng.random() < p_a else 1
        record = {
            "external_id": f"c{i}",
            "prompt": f"prompt {i}",
            "response_a": f"answer a {i}",
            "response_b": f"answer b {i}",
            "model_a": model_a,
            "model_b": model_b,
            "human_labels": [],
        }
        for name in rng.sample(annotators, humans):
            right = rng.random() < (0.9 if name != "bad" else 0.34)
            choice = truth if right else rng.choice([c for c in range(3) if c != truth])
            record["human_labels"].append(
                {
                    "annotator": name,
                    "overall": LABELS[choice],
                    "time_spent_s": 30.0 if name != "bad" else 3.0,
                    "shown_order": rng.choice(["AB", "BA"]),
                    "confidence": "fairly",
                }
            )
        if lm:
            right = rng.random() < 0.8
            choice = truth if right else 1 - truth
            record["lm_labels"] = [
                {
                    "judge": "judge-1",
                    "judge_version": "v1",
                    "overall": "A" if choice == 0 else "B",
                    "p_a": 0.9 if choice == 0 else 0.1,
                }
            ]
        records.append(record)
    return records


def chosen_rejected(comparison) -> tuple[str, str]:
    """(chosen, rejected) as stored, read back through the imported label (human, else LM)."""
    label = comparison.human_labels.first()
    choice = label.overall_choice if label else comparison.lm_labels.get().choice
    a, b = comparison.response_a, comparison.response_b
    return (a, b) if choice == "A" else (b, a)
