"""`helpsteer2`: nvidia/HelpSteer2 (default config), one response per row rated 0-4 on five
attributes by human annotators; the rows of one prompt become pairs by `--pairing`.

The published file puts a prompt's responses in consecutive rows, so only consecutive rows with the
same prompt are grouped (memory holds one group, not the file); a prompt with one response makes
no pair (counted). The preference is helpfulness's: gap = helpfulness(A) - helpfulness(B), a tie at
0, `slightly` at a gap below 2, `clearly` from 2; a human label named after the file, or an LM
label with `--label-source lm:JUDGE`. Every attribute and its gap (A minus B) is kept in metadata.
A multi-turn prompt (turns joined by `\\n<extra_id_1>User\\n` / `\\n<extra_id_1>Assistant\\n`) is
read as messages, a single turn as text. The A/B order is drawn from the pair's id.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, chosen_is_b, json_objects
from annotator.dataio.formats.dataset_fields import (
    gap_label,
    number_read,
    others,
    preference_label,
    text_read,
)
from annotator.dataio.formats.pairing import group_key, pairs_select
from annotator.dataio.records import FieldError

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
_USED = frozenset({"prompt", "response", *ATTRIBUTES})
_TURN = re.compile(r"\n<extra_id_1>(User|Assistant)\n")
_ALONE = "prompts with one response (no pair)"


def prompt_turns(prompt: str) -> str | list[dict]:
    """HelpSteer2's flattened prompt: the text of a single turn, or the turns as messages."""
    parts = _TURN.split(prompt)
    if len(parts) == 1:
        return prompt
    turns = [{"role": "user", "content": parts[0]}]
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        turns.append({"role": role.lower(), "content": content})
    return turns


@dataclass(slots=True)
class Rated:
    line: int
    response: str
    attributes: dict[str, float]
    extra: dict  # the row's other fields


def row_read(obj: dict, number: int) -> tuple[str | None, Rated | None, list[FieldError]]:
    errors: list[FieldError] = []
    prompt = text_read(obj, "prompt", errors)
    response = text_read(obj, "response", errors)
    attributes = {a: number_read(obj, a, errors, low=0, high=4) for a in ATTRIBUTES}
    if errors:
        return None, None, errors
    return prompt, Rated(number, response, attributes, others(obj, _USED)), []


def pair_native(prompt: str, key: str, pair: tuple[int, int], group: list[Rated], options) -> dict:
    external_id = f"hs2-{key}-{pair[0]}-{pair[1]}"
    first, second = group[pair[0]], group[pair[1]]
    a, b = (second, first) if chosen_is_b(external_id) else (first, second)
    gaps = {name: a.attributes[name] - b.attributes[name] for name in ATTRIBUTES}
    label = preference_label(options, gap_label(gaps["helpfulness"], clear_at=2))
    metadata = {"attributes_a": a.attributes, "attributes_b": b.attributes, "attribute_gaps": gaps}
    for side, row in (("a", a), ("b", b)):
        if row.extra:
            metadata[f"fields_{side}"] = row.extra
    return {
        "external_id": external_id,
        "prompt": prompt_turns(prompt),
        "response_a": a.response,
        "response_b": b.response,
        "metadata": metadata,
        "lm_labels" if options.lm_judge else "human_labels": [label],
    }


def group_pairs(
    prompt: str | None, group: list[Rated], source: str, options: ReadOptions
) -> Iterator[Parsed]:
    """The pairs of one prompt's consecutive rows, each located at its two rows' lines."""
    if len(group) == 1:
        options.report.counts[_ALONE] += 1
    if len(group) < 2:
        return
    key = group_key(prompt, [row.response for row in group])
    scores = [row.attributes["helpfulness"] for row in group]
    for pair in pairs_select(scores, pairing=options.pairing, seed=options.pairing_seed, key=key):
        where = f"{group[pair[0]].line},{group[pair[1]].line}"
        yield Parsed(source, where, pair_native(prompt, key, pair, group, options))


def read_helpsteer2(
    stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
) -> Iterator[Parsed]:
    prompt, group = None, []
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        row_prompt, row, errors = row_read(obj, number)
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        if row_prompt != prompt:
            yield from group_pairs(prompt, group, source, options)
            prompt, group = row_prompt, []
        group.append(row)
    yield from group_pairs(prompt, group, source, options)


def _looks_helpsteer2(first: dict) -> bool:
    """One rating per attribute (the `disagreements` config has a list per annotator)."""
    return all(isinstance(first[a], int | float) for a in ATTRIBUTES)


FORMAT = Format(
    name="helpsteer2",
    read=read_helpsteer2,
    keys=frozenset(_USED),
    summary=(
        "nvidia/HelpSteer2 (default config): a prompt's consecutive rows paired by --pairing, "
        "the preference helpfulness's, every attribute's gap in metadata"
    ),
    check=_looks_helpsteer2,
)
