"""TRL preference rows (prompt / chosen / rejected), every third one conversational."""

import random


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        question = f"Question {i}: how do I {rng.choice(['sort', 'merge', 'split'])} a list?"
        good, bad = f"Use the built-in, for example {i}.", f"You cannot {i}."
        if i % 3 == 0:
            user = [{"role": "user", "content": question}]
            out.append(
                {
                    "prompt": user,
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}],
                }
            )
        else:
            out.append({"prompt": question, "chosen": good, "rejected": bad})
    return out
