"""`nectar`: berkeley-nest/Nectar, an HH-style prompt and seven answers ranked by GPT-4; pairs of
answers chosen by `--pairing`, the better rank winning.

The prompt transcript (`\\n\\nHuman: ...\\n\\nAssistant:`, ending in the open Assistant turn) is
read as its turns: one Human turn is the prompt's text, more are messages (user / assistant). Rank
1 is best; the lower rank wins and equal ranks tie. The ranks are GPT-4's, so the label is an LM
label of judge `nectar-gpt-4` (`--label-source lm:NAME` renames it) with no strength and no p_a: a
rank orders the answers but says nothing of by how much. The ranks, `turns`, `num_responses`,
`source` and `good_natured` are kept in metadata; the A/B order is drawn from the pair's id.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, chosen_is_b, json_objects
from annotator.dataio.formats.dataset_fields import (
    kind,
    list_read,
    number_read,
    others,
    prompt_from_turns,
    text_read,
)
from annotator.dataio.formats.pairing import group_key, pairs_select
from annotator.dataio.records import FieldError

NECTAR_JUDGE = "nectar-gpt-4"
_USED = frozenset({"prompt", "answers"})
_MARK = re.compile(r"(?:^|\n\n)(Human|Assistant): ?")
_ROLES = {"Human": "user", "Assistant": "assistant"}
_TOO_FEW = "prompts with fewer than two answers (no pair)"


def transcript_turns(text: str) -> list[dict] | None:
    """The turns before the final, open Assistant turn of an HH transcript; None when `text`
    is not one (it must start with a Human turn and end with `Assistant:`)."""
    parts = _MARK.split(text)
    roles, contents = parts[1::2], parts[2::2]
    if parts[0].strip() or len(roles) < 2 or roles[0] != "Human":
        return None
    if roles[-1] != "Assistant" or contents[-1].strip():
        return None
    return [
        {"role": _ROLES[role], "content": content}
        for role, content in zip(roles[:-1], contents[:-1], strict=True)
    ]


def answer_read(value: Any, index: int, errors: list[FieldError]) -> dict | None:
    where = f"answers[{index}]"
    if not isinstance(value, dict):
        errors.append(FieldError(where, f"must be an object, not {kind(value)}"))
        return None
    before = len(errors)
    answer = text_read(value, "answer", errors, where=f"{where}.answer")
    rank = number_read(value, "rank", errors, low=1, high=100, where=f"{where}.rank")
    model = value.get("model") or ""
    if not isinstance(model, str):
        errors.append(FieldError(f"{where}.model", f"must be a string, not {kind(model)}"))
    if len(errors) > before:
        return None
    return {"index": index, "answer": answer, "rank": rank, "model": model}


def pair_native(prompt, key: str, first: dict, second: dict, meta: dict, judge: str) -> dict:
    external_id = f"nectar-{key}-{first['index']}-{second['index']}"
    a, b = (second, first) if chosen_is_b(external_id) else (first, second)
    overall = "A" if a["rank"] < b["rank"] else "B" if a["rank"] > b["rank"] else "Tie"
    return {
        "external_id": external_id,
        "prompt": prompt,
        "response_a": a["answer"],
        "response_b": b["answer"],
        "model_a": a["model"],
        "model_b": b["model"],
        "metadata": {**meta, "rank_a": a["rank"], "rank_b": b["rank"]},
        "lm_labels": [
            {
                "judge": judge,
                "overall": overall,
                "rationale": f"GPT-4 ranked A {a['rank']:g} and B {b['rank']:g}.",
            }
        ],
    }


def row_read(obj: dict) -> tuple[Any, list[dict], list[FieldError]]:
    """(the prompt in the native shape, the answers), or the row's problems."""
    errors: list[FieldError] = []
    text = text_read(obj, "prompt", errors)
    turns = transcript_turns(text) if text is not None else None
    if text is not None and turns is None:
        problem = "is not an HH transcript ('\\n\\nHuman: ...\\n\\nAssistant:')"
        errors.append(FieldError("prompt", problem))
    values = list_read(obj, "answers", errors) or []
    answers = [answer_read(value, index, errors) for index, value in enumerate(values)]
    if errors:
        return None, [], errors
    return prompt_from_turns(turns), answers, []


def read_nectar(
    stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
) -> Iterator[Parsed]:
    judge = options.lm_judge or NECTAR_JUDGE
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        prompt, answers, errors = row_read(obj)
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        if len(answers) < 2:
            options.report.counts[_TOO_FEW] += 1
            continue
        key = group_key(prompt, [a["answer"] for a in answers])
        meta = others(obj, _USED)
        scores = [-a["rank"] for a in answers]
        for i, j in pairs_select(
            scores, pairing=options.pairing, seed=options.pairing_seed, key=key
        ):
            yield Parsed(
                source, number, pair_native(prompt, key, answers[i], answers[j], meta, judge)
            )


FORMAT = Format(
    name="nectar",
    read=read_nectar,
    keys=frozenset({"prompt", "answers", "turns", "num_responses", "good_natured"}),
    summary=(
        "berkeley-nest/Nectar: an HH-style prompt's seven answers paired by --pairing, GPT-4's "
        "better rank winning (an LM label)"
    ),
)
