"""HuggingFaceH4/ultrafeedback_binarized `train_prefs` rows as the published row 0 shows them: the
prompt, its SHA-256 `prompt_id`, chosen and rejected as a user turn then an assistant turn,
`messages` equal to chosen, and the two overall scores (1-10, halves; equal scores happen). The
texts keep UltraFeedback's double-escaped apostrophes (the six characters `\\u2019`)."""

import hashlib
import random


def conversation(prompt: str, answer: str) -> list[dict]:
    return [{"content": prompt, "role": "user"}, {"content": answer, "role": "assistant"}]


def row(rng: random.Random, i: int) -> dict:
    prompt = f"how can i develop a habit number {i} of drawing daily"
    score_rejected = rng.randint(2, 16) / 2
    score_chosen = min(10.0, score_rejected + rng.choice([0.0, 0.5, 1.0, 2.5, 4.0]))
    chosen = conversation(prompt, f"Set a specific time {i}. Don\\u2019t try a masterpiece.")
    rejected = conversation(prompt, f"As an AI language model, I cannot draw {i}.")
    return {
        "prompt": prompt,
        "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(),
        "chosen": chosen,
        "rejected": rejected,
        "messages": chosen,
        "score_chosen": score_chosen,
        "score_rejected": score_rejected,
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
