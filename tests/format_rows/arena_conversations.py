"""lmsys/chatbot_arena_conversations rows with the 13 columns of its schema: OpenAI-style
conversations sharing their user turns, `winner` in model_a/model_b/tie/tie (bothbad), an
anonymised judge, `tstamp` in Unix seconds, moderation and toxic-chat structs."""

import random

MODELS = ("chatglm-6b", "koala-13b", "vicuna-13b", "alpaca-13b", "oasst-pythia-12b")
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def conversation(users: list[str], model: str) -> list[dict]:
    messages = []
    for turn, text in enumerate(users):
        messages.append({"content": text, "role": "user"})
        messages.append(
            {"content": f"{model} answers turn {turn}: {text[:20]}", "role": "assistant"}
        )
    return messages


def row(rng: random.Random, i: int, *, turns: int | None = None) -> dict:
    n = turns or rng.choice((1, 1, 1, 2, 3))
    model_a, model_b = rng.sample(MODELS, 2)
    users = [
        f"Battle {i}, turn {t}: what is the difference between OpenCL and CUDA?" for t in range(n)
    ]
    scores = {c: round(rng.random() / 1000, 8) for c in CATEGORIES}
    return {
        "question_id": f"{i:08x}{rng.getrandbits(96):024x}",
        "model_a": model_a,
        "model_b": model_b,
        "winner": rng.choice(WINNERS),
        "judge": f"arena_user_{rng.randint(1, 5000)}",
        "conversation_a": conversation(users, model_a),
        "conversation_b": conversation(users, model_b),
        "turn": n,
        "anony": rng.random() < 0.9,
        "language": rng.choice(("English", "Chinese", "Spanish")),
        "tstamp": 1682351591.1322 + i * 37.5,
        "openai_moderation": {
            "categories": {c: False for c in CATEGORIES},
            "category_scores": scores,
            "flagged": False,
        },
        # The schema does not confirm this struct's keys; the reader keeps it as it is.
        "toxic_chat_tag": {
            "roberta-large": {"flagged": False, "probability": round(rng.random() / 100, 6)},
            "t5-large": {"flagged": False, "score": round(rng.random() / 100, 6)},
        },
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
