"""nvidia/HelpSteer2 rows (default config) as its card describes them: one response per row with
five attributes 0-4 (ints), a prompt's two responses in consecutive rows, about a third of the
prompts multi-turn (flattened with `<extra_id_1>` separators)."""

import random

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def prompt_text(rng: random.Random, i: int) -> str:
    if rng.random() < 0.3:
        return (
            f"Define signal {i}\n<extra_id_1>Assistant\nA signal carries information."
            f"\n<extra_id_1>User\nDiscuss its properties {i} with a diagram"
        )
    return f"c# question {i}"


def rated(rng: random.Random, prompt: str, response: str) -> dict:
    row = {"prompt": prompt, "response": response}
    row.update({name: rng.randint(0, 4) for name in ATTRIBUTES})
    return row


def rows(n: int, seed: int = 0) -> list[dict]:
    """n rows, two per prompt (consecutive; an odd n leaves the last prompt one response)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = prompt_text(rng, i // 2) if i % 2 == 0 else out[-1]["prompt"]
        out.append(rated(rng, prompt, f"C# is a high-level language ({i // 2}, {i % 2})."))
    return out
