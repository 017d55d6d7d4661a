import io
import random

import orjson
import pytest

from annotator.dataio.importer import comparisons_import

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


@pytest.fixture
def load_records():
    def load(project, records) -> None:
        body = b"".join(orjson.dumps(r) + b"\n" for r in records)
        comparisons_import(project=project, stream=io.BytesIO(body), source_name="test.jsonl")

    return load
