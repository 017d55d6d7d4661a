"""berkeley-nest/Nectar rows as the published row 0 and the card show them: an Anthropic-style
transcript prompt ending in the open `\n\nAssistant: ` turn (some with several turns), seven answers
with their model and GPT-4's rank (floats 1.0-7.0, listed best first as in row 0), `turns`,
`num_responses`, `source` (a list) and `good_natured`."""

import random

MODELS = (
    "gpt-3.5-turbo",
    "gpt-4-0613",
    "gpt-4",
    "llama-2-7b-chat",
    "gpt-3.5-turbo-instruct",
    "mistral-7b-instruct-v0.1",
    "llama-2-70b-chat",
    "wizardlm-13b",
)
SOURCES = ("sharegpt", "evol_instruct", "ultrachat", "lmsys-chat-1m", "flan_v2_niv2")


def prompt(rng: random.Random, i: int) -> tuple[str, int]:
    if rng.random() < 0.25:
        text = (
            f"\n\nHuman: 0.002 = 1000 \n1 = x? ({i})\n\nAssistant: x = 500,000."
            f"\n\nHuman: Why ({i})?\n\nAssistant: "
        )
        return text, 2
    return f"\n\nHuman: 0.002 = 1000 \n1 = x? ({i})\n\nAssistant: ", 1


def row(rng: random.Random, i: int) -> dict:
    text, turns = prompt(rng, i)
    return {
        "prompt": text,
        "answers": [
            {
                "answer": f"Answer {k} to {i}: x = {500_000 // (k + 1)}.",
                "model": model,
                "rank": k + 1.0,
            }
            for k, model in enumerate(rng.choices(MODELS, k=7))
        ],
        "turns": turns,
        "num_responses": 7,
        "source": [rng.choice(SOURCES)],
        "good_natured": rng.random() < 0.9,
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
