"""Preference pairs for reward-model training, built from plain per-comparison records.

No ORM and no torch here: the Django side reads the project's comparisons and labels into dicts,
`pairs_from_rows` applies the label rules, and `split_by_prompt` makes the train/validation split.

Label rules (annotator.final_labels, the same as the `trl` export's):

- `human`: the majority of the comparison's human votes; a tied vote or a Tie majority gives no
  pair; comparisons without human votes give none.
- `lm`: the primary judge's latest label; a Tie gives no pair.
- `final`: the final label: the human majority where the comparison has human votes (even when
  that majority is a tie or tied, which then gives no pair: the humans decided), else the LM
  label.

Ties are always dropped. With `use_margin`, a pair's margin comes from the winning strength:
clearly = 1.0, slightly = 0.5, unknown = None (the trainer reads None as 0).
"""

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from annotator.final_labels import final_label

LABEL_SOURCES = ("human", "lm", "final")

# Choice and Strength values (annotator.labels), as plain strings so that this module does not
# need Django.
_A, _B, _TIE = "A", "B", "tie"
STRENGTH_MARGIN = {"clearly": 1.0, "slightly": 0.5, "unknown": None}


@dataclass(frozen=True)
class PreferencePair:
    """One training pair. `group` is what the split keeps together (the stripped prompt)."""

    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None
    group: str = ""
    source: str = ""  # "human" or "lm": where the label came from
    key: Any = None  # the caller's id for the comparison, if any

    def __post_init__(self):
        if not self.group:
            object.__setattr__(self, "group", prompt_group(self.prompt))


def prompt_group(prompt: str) -> str:
    """The split key of a prompt: the prompt, stripped."""
    return prompt.strip()


def margin_for(strength: str | None) -> float | None:
    """The margin of a label's strength: clearly 1.0, slightly 0.5, unknown (or missing) None."""
    return STRENGTH_MARGIN.get(strength) if strength else None


def _make_pair(row: Mapping, choice: str, strength: str | None, source: str, use_margin: bool):
    if choice == _A:
        chosen, rejected = row["response_a"], row["response_b"]
    elif choice == _B:
        chosen, rejected = row["response_b"], row["response_a"]
    else:
        return None
    return PreferencePair(
        prompt=row["prompt"],
        chosen=chosen,
        rejected=rejected,
        margin=margin_for(strength) if use_margin else None,
        source=source,
        key=row.get("id", row.get("external_id")),
    )


def pairs_from_rows(
    rows: Iterable[Mapping], *, label_source: str = "final", use_margin: bool = False
) -> list[PreferencePair]:
    """Training pairs from per-comparison records, by the rules in the module docstring.

    Each row: {"prompt", "response_a", "response_b", "human_votes": [(choice, strength), ...],
    "lm": (choice, strength) or None}, optionally "id" / "external_id" (kept as the pair's key).
    """
    if label_source not in LABEL_SOURCES:
        raise ValueError(
            f"unknown label source {label_source!r}; expected one of {', '.join(LABEL_SOURCES)}"
        )
    pairs = []
    for row in rows:
        votes = (
            [tuple(vote) for vote in row.get("human_votes") or ()] if label_source != "lm" else []
        )
        lm = row.get("lm") if label_source != "human" else None
        label = final_label(votes, (*lm[:2], None) if lm is not None else None)
        if label is not None:
            pair = _make_pair(row, label.choice, label.strength, label.source, use_margin)
            if pair is not None:
                pairs.append(pair)
    return pairs


def split_by_prompt(
    pairs: Sequence[PreferencePair], *, validation_fraction: float = 0.2, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, validation): every pair of a prompt group on the same side, seeded, deterministic.

    The distinct groups are sorted, shuffled with `random.Random(seed)` and handed to validation
    until it holds at least `round(validation_fraction * len(pairs))` pairs; the rest train. The
    result depends only on the set of groups and the seed, not on the order of `pairs`, and each
    side keeps the input order. With two groups or more, training always gets at least one.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError("validation_fraction must be in [0, 1)")
    sizes: dict[str, int] = {}
    for pair in pairs:
        sizes[pair.group] = sizes.get(pair.group, 0) + 1
    groups = sorted(sizes)
    random.Random(seed).shuffle(groups)
    target = round(validation_fraction * len(pairs))
    validation_groups: list[str] = []
    count = 0
    for group in groups:
        if count >= target:
            break
        validation_groups.append(group)
        count += sizes[group]
    if len(validation_groups) == len(groups) and len(groups) > 1:
        validation_groups.pop()
    held_out = set(validation_groups)
    train = [pair for pair in pairs if pair.group not in held_out]
    validation = [pair for pair in pairs if pair.group in held_out]
    return train, validation
