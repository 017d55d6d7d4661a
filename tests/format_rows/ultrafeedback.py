"""Raw openbmb/UltraFeedback rows as its README and the published schema describe them: an
instruction, four sampled models and their completions, each with GPT-4's four aspect ratings
(strings "1".."5"), rationales and critique."""

import random

SOURCES = ("evol_instruct", "false_qa", "flan", "sharegpt", "truthful_qa", "ultrachat")
MODELS = (
    "alpaca-7b",
    "falcon-40b-instruct",
    "gpt-4",
    "starchat",
    "vicuna-33b",
    "wizardlm-7b",
)
PRINCIPLES = ("helpfulness", "truthfulness", "honesty", "verbalized_calibration", "harmlessness")


def annotations(ratings: dict[str, str]) -> dict:
    """GPT-4's annotations of one completion with these ratings (aspect -> "1".."5" or "N/A")."""
    out = {}
    for aspect, rating in ratings.items():
        entry = {"Rating": rating, "Rationale": f"{aspect} rated {rating} because of its content."}
        if aspect in ("truthfulness", "helpfulness"):
            entry = {
                "Type": ["1", "2"],
                "Rationale": entry["Rationale"],
                "Rating": rating,
                "Rationale For Rating": f"The text earns {rating} for {aspect}.",
            }
        out[aspect] = entry
    return out


def completion(model: str, response: str, ratings: dict[str, str], rng: random.Random) -> dict:
    numbers = [int(r) for r in ratings.values() if r != "N/A"]
    return {
        "model": model,
        "principle": rng.choice(PRINCIPLES),
        "custom_system_prompt": "As an AI assistant, be accurate, positive and engaging.",
        "response": response,
        "annotations": annotations(ratings),
        "critique": f"The response by {model} could be more specific.",
        "overall_score": float(rng.randint(2, 9)) + rng.choice([0.0, 0.5]),
        "fine-grained_score": sum(numbers) / len(numbers) if numbers else 0.0,
    }


def row(rng: random.Random, i: int) -> dict:
    models = sorted(rng.sample(MODELS, 4))
    aspects = ("instruction_following", "honesty", "truthfulness", "helpfulness")
    return {
        "source": rng.choice(SOURCES),
        "instruction": f"Instruction {i}: plan a {rng.randint(2, 9)}-day trip to Cairo.",
        "models": models,
        "completions": [
            completion(
                model,
                f"Answer {k} to instruction {i} by {model}: visit the pyramids, then rest.",
                {aspect: str(rng.randint(1, 5)) for aspect in aspects},
                rng,
            )
            for k, model in enumerate(models)
        ],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
