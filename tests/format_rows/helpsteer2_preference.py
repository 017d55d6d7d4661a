"""nvidia/HelpSteer2 preference-config rows as its card shows them: two responses, the aggregated
strength -3..3 with its statement and elaboration, the split, and each annotator's strength and
justification (`all_preferences_unprocessed`; `three_most_similar_preferences` the ones kept)."""

import random

from tests.format_rows.helpsteer2 import prompt_text

STATEMENTS = {
    -3: "@Response 1 is much better than @Response 2",
    -2: "@Response 1 is better than @Response 2",
    -1: "@Response 1 is slightly better than @Response 2",
    0: "@Response 1 and @Response 2 are about the same",
    1: "@Response 2 is slightly better than @Response 1",
    2: "@Response 2 is better than @Response 1",
    3: "@Response 2 is much better than @Response 1",
}


def preference_row(rng: random.Random, i: int, strength: int) -> dict:
    votes = [max(-3, min(3, strength + rng.choice([-1, 0, 0, 1]))) for _ in range(3)]
    return {
        "split": rng.choice(["train", "validation"]),
        "prompt": prompt_text(rng, i),
        "response_1": f"A signal is a form of energy ({i}).",
        "response_2": f"A signal is a message from a sender ({i}).",
        "preference_strength": strength,
        "preference_statement": f"{STATEMENTS[strength]} because it covers more ({i}).",
        "preference_elaboration": f"It discusses noise, phase and envelope ({i}).",
        "three_most_similar_preferences": [
            {"statement": STATEMENTS[v], "elaboration": f"vote {k}", "strength": v}
            for k, v in enumerate(votes)
        ],
        "all_preferences_unprocessed": [
            {"strength": v, "justification": f"{STATEMENTS[v]}. Vote {k} on {i}."}
            for k, v in enumerate(votes)
        ],
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [preference_row(rng, i, rng.randint(-3, 3)) for i in range(n)]
