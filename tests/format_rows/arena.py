"""lmsys-arena-human-preference-55k rows as the real row 0 shows them (id 30192): `prompt` and the
responses are JSON-encoded lists, one entry per turn, non-ASCII escaped as `\\uXXXX` (an emoji as
a surrogate pair); the winner is one-hot."""

import json
import random

MODELS = ("gpt-4-1106-preview", "gpt-4-0613", "claude-2.1", "llama-2-70b-chat", "mistral-medium")
WINNERS = ("winner_model_a", "winner_model_b", "winner_tie")


def row(rng: random.Random, i: int, *, turns: int | None = None) -> dict:
    n = turns or rng.choice((1, 1, 1, 2, 3))
    model_a, model_b = rng.sample(MODELS, 2)
    winner = rng.choice(WINNERS)
    prompts = [f"Question {i}.{t}: does pineapple belong on pizza?" for t in range(n)]
    return {
        "id": 30192 + i,
        "model_a": model_a,
        "model_b": model_b,
        # json.dumps escapes non-ASCII as the dataset does: "Bon app\u00e9tit \ud83c\udf4d".
        "prompt": json.dumps(prompts),
        "response_a": json.dumps([f"Bon appétit {i}.{t} 🍍 from {model_a}" for t in range(n)]),
        "response_b": json.dumps([f"As an AI, {i}.{t}, from {model_b}" for t in range(n)]),
        **{key: int(key == winner) for key in WINNERS},
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
