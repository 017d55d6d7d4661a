"""MultiPref rows (allenai/multipref, split `train`) as its card and readers describe them: one
comparison per row with two crowd workers' and two domain experts' annotations."""

import random

PREFS = (
    "A-is-clearly-better",
    "A-is-slightly-better",
    "Tie",
    "B-is-slightly-better",
    "B-is-clearly-better",
)
CONFIDENCES = ("absolutely-confident", "fairly-confident", "not-confident")
MODELS = ("allenai/tulu-2-70b", "gpt-4-turbo-2024-04-09", "meta-llama/Meta-Llama-3-70B-Instruct")
CHECKED = {
    "helpful": ["correct", "informative", "concise"],
    "truthful": ["factual", "aware-of-time"],
    "harmless": ["not-dangerous"],
}


def annotation(rng: random.Random, evaluator: str) -> dict:
    """One annotator's record: every aspect's preference, confidence and reasons."""
    out = {"evaluator": evaluator}
    for aspect in ("overall", "helpful", "truthful", "harmless"):
        out[f"{aspect}_pref"] = rng.choice(PREFS)
        out[f"{aspect}_confidence"] = rng.choice(CONFIDENCES)
    for aspect, reasons in CHECKED.items():
        out[f"{aspect}_checked_reasons"] = rng.sample(reasons, rng.randint(0, len(reasons)))
        out[f"{aspect}_own_reason"] = rng.choice(["", f"{aspect} differs in detail"])
    out["time_spent"] = rng.randint(30, 900)
    out["timestamp"] = f"2024-06-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:14:05.123456"
    return out


def row(rng: random.Random, i: int) -> dict:
    model_a, model_b = rng.sample(MODELS, 2)
    return {
        "comparison_id": f"{i:08x}{rng.getrandbits(96):024x}",
        "prompt_id": f"{i // 2:08x}{'0' * 24}",  # prompts repeat with other responses
        "text": f"Question {i}: how do tides work?",
        "model_a": model_a,
        "completion_a": f"Answer {i} from {model_a}.",
        "model_b": model_b,
        "completion_b": f"Answer {i} from {model_b}.",
        "source": rng.choice(["anthropic/helpful-base", "anthropic/harmless-base", "lmsys/chat"]),
        "category": rng.choice(["Open QA", "Brainstorm", ""]),
        "subject_study": rng.choice(["Physics", "History", "Computer Science"]),
        "highest_level_degree": rng.choice(["Natural sciences", "Humanities"]),
        "normal_worker_annotations": [annotation(rng, f"w{n}") for n in rng.sample(range(200), 2)],
        "expert_worker_annotations": [annotation(rng, f"x{n}") for n in rng.sample(range(50), 2)],
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
