"""Which pairs of one prompt's rated or ranked responses become comparisons (`--pairing`).

- `best-vs-each` (default): the best response against each of the others, n - 1 pairs. Every
  response is compared once, always with the one the dataset ranks highest.
- `all-pairs`: every two responses, n (n - 1) / 2 pairs: all the order the dataset holds, at
  n / 2 times the labelling cost of `best-vs-each`.
- `best-vs-random`: the best against one of the others drawn at random, one pair per prompt (as
  UltraFeedback binarized was made).

The best is the highest score; among equal scores the earliest response. The random draw is
seeded by `--pairing-seed` and the prompt group's own key (a hash of its content), so the same
file and seed give the same pairs whatever order the rows come in and whatever else the file
holds. A pair is (i, j) with i < j, the responses' positions in their group, so a pair's id does
not depend on which response won or on the pairing that chose it: importing again with another
pairing adds only the pairs not imported yet.
"""

import hashlib
import random
from collections.abc import Sequence

import orjson

BEST_VS_EACH = "best-vs-each"
ALL_PAIRS = "all-pairs"
BEST_VS_RANDOM = "best-vs-random"
PAIRINGS = (BEST_VS_EACH, ALL_PAIRS, BEST_VS_RANDOM)


def group_key(prompt: object, responses: Sequence[object]) -> str:
    """A stable key for one prompt's group of responses: a hash of its content (16 hex digits)."""
    return hashlib.sha256(orjson.dumps([prompt, list(responses)])).hexdigest()[:16]


def pairs_select(
    scores: Sequence[float], *, pairing: str, seed: int, key: str
) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of positions in `scores` (higher is better) that `pairing`
    compares; none when fewer than two responses."""
    n = len(scores)
    if pairing not in PAIRINGS:
        raise ValueError(f"unknown pairing {pairing!r}; expected one of {', '.join(PAIRINGS)}")
    if n < 2:
        return []
    if pairing == ALL_PAIRS:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    best = max(range(n), key=lambda i: (scores[i], -i))
    others = [k for k in range(n) if k != best]
    if pairing == BEST_VS_RANDOM:
        # A string seed is hashed with SHA-512 by `random`: the same on every run and platform.
        others = [random.Random(f"{seed}:{key}").choice(others)]
    return [(min(best, k), max(best, k)) for k in others]
