"""stanfordnlp/SHP rows as its card describes them: a Reddit post (`history`, with JSON-escaped
`\\/` in URLs as published), two top-level comments, their scores and times, and `labels` 1 when A
is preferred (about half the rows). A post has several pairs of comments."""

import random

DOMAINS = ("askculinary", "askphysics", "explainlikeimfive", "legaladvice")


def row(rng: random.Random, i: int) -> dict:
    post = i // 3
    domain = f"{DOMAINS[post % len(DOMAINS)]}_{rng.choice(['train', 'validation', 'test'])}"
    created = [1_600_000_000 + rng.randint(0, 10**6) for _ in range(2)]
    scores = [rng.randint(2, 400) for _ in range(2)]
    label = 1 if scores[0] >= scores[1] else 0
    preferred, other = (0, 1) if label == 1 else (1, 0)
    return {
        "post_id": f"qt{post:04x}",
        "domain": domain,
        "upvote_ratio": round(rng.uniform(0.5, 1.0), 2),
        "history": f"Post {post}: why does my pasta stick? See https:\\/\\/example.org\\/{post}",
        "c_root_id_A": f"hkd{i:04x}a",
        "c_root_id_B": f"hkd{i:04x}b",
        "created_at_utc_A": created[0],
        "created_at_utc_B": created[1],
        "score_A": scores[0],
        "score_B": scores[1],
        "human_ref_A": f"Use more water ({i}).",
        "human_ref_B": f"Stir it in the first minutes ({i}).",
        "labels": label,
        "seconds_difference": float(abs(created[preferred] - created[other])),
        "score_ratio": scores[preferred] / scores[other],
    }


def rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [row(rng, i) for i in range(n)]
