"""Anthropic HH-RLHF rows: two transcripts sharing everything up to the last Assistant turn."""

import random


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        context = f"\n\nHuman: Question {i}, about {rng.choice(['cats', 'tax', 'rust'])}?"
        if i % 2:
            context += "\n\nAssistant: Could you say more?\n\nHuman: Just the basics."
        context += "\n\nAssistant:"
        out.append({"chosen": context + f" A helpful answer {i}.", "rejected": context + " No."})
    return out
