"""`ultrafeedback-binarized`: HuggingFaceH4/ultrafeedback_binarized's preference splits, chosen and
rejected conversations with GPT-4's overall scores.

The conversations stay messages: the prompt is the turns chosen and rejected share, each response
the turns after them (assistant or tool turns). The label is an LM label of the same GPT-4 judge as
`ultrafeedback` (default `ultrafeedback-gpt-4`, `--label-source lm:NAME` renames it), version
`overall_score`, from the scores' gap (1-10 scale): `p_a = 1 / (1 + e^(-gap / 2))`, a tie with p_a
0.5 at equal scores (the published data has them), `slightly` below a gap of 2 and `clearly` from
it. The A/B order is drawn from the id, `<prompt_id>-<hash of the two responses>` (prompts repeat).
"""

import hashlib
from typing import Any

import orjson

from annotator.dataio.formats.common import Format, ReadOptions, chosen_is_b, per_record
from annotator.dataio.formats.dataset_fields import (
    gap_label,
    kind,
    logistic,
    number_read,
    others,
)
from annotator.dataio.formats.ultrafeedback import ULTRAFEEDBACK_JUDGE
from annotator.dataio.records import FieldError

_USED = frozenset(
    {"prompt", "prompt_id", "chosen", "rejected", "messages", "score_chosen", "score_rejected"}
)
_RESPONSE_ROLES = ("assistant", "tool")
_BELOW = "pairs whose chosen scored below rejected (labelled by the scores)"


def conversation_read(obj: dict, key: str, errors: list[FieldError]) -> list[dict] | None:
    """obj[key] as a non-empty list of {"role": str, "content": str} messages."""
    value = obj.get(key)
    if not isinstance(value, list) or not value:
        problem = (
            ("missing" if key not in obj else "must not be null")
            if value is None
            else "must not be empty"
            if isinstance(value, list)
            else f"must be a list of messages, not {kind(value)}"
        )
        errors.append(FieldError(key, problem))
        return None
    for index, message in enumerate(value):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            errors.append(FieldError(f"{key}[{index}]", 'must be a message {"role", "content"}'))
            return None
    return value


def conversations_split(
    chosen: list[dict], rejected: list[dict], errors: list[FieldError]
) -> tuple[list[dict], list[dict], list[dict]] | None:
    """(shared turns, chosen's own turns, rejected's own turns); each side keeps one turn at
    least, and its own turns are the assistant's (or a tool's)."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        errors.append(FieldError("chosen", "chosen and rejected share no first turn (the prompt)"))
        return None
    for key, turns in (("chosen", chosen), ("rejected", rejected)):
        for index in range(shared, len(turns)):
            if turns[index]["role"] not in _RESPONSE_ROLES:
                problem = f"{turns[index]['role']!r} after the shared turns; expected assistant"
                errors.append(FieldError(f"{key}[{index}].role", problem))
    return None if errors else (chosen[:shared], chosen[shared:], rejected[shared:])


def _external_id(obj: dict, prompt: Any, chosen: Any, rejected: Any, errors) -> str | None:
    prompt_id = obj.get("prompt_id")
    if prompt_id is not None and not isinstance(prompt_id, str):
        errors.append(FieldError("prompt_id", f"must be a string, not {kind(prompt_id)}"))
        return None
    if not prompt_id:
        prompt_id = hashlib.sha256(orjson.dumps(prompt)).hexdigest()
    digest = hashlib.sha256(orjson.dumps([chosen, rejected])).hexdigest()[:12]
    return f"{prompt_id}-{digest}"


def binarized_native(obj: dict, options: ReadOptions) -> tuple[dict | None, list[FieldError]]:
    errors: list[FieldError] = []
    chosen_turns = conversation_read(obj, "chosen", errors)
    rejected_turns = conversation_read(obj, "rejected", errors)
    scores = [
        number_read(obj, k, errors, low=0, high=10) for k in ("score_chosen", "score_rejected")
    ]
    split = conversations_split(chosen_turns, rejected_turns, errors) if not errors else None
    if split is None:
        return None, errors
    prompt, chosen, rejected = split
    external_id = _external_id(obj, prompt, chosen, rejected, errors)
    if errors:
        return None, errors
    sides = [(chosen, scores[0]), (rejected, scores[1])]
    if chosen_is_b(external_id):
        sides.reverse()
    (response_a, score_a), (response_b, score_b) = sides
    if scores[0] < scores[1]:
        options.report.counts[_BELOW] += 1
    gap = score_a - score_b
    return {
        "external_id": external_id,
        "prompt": prompt,
        "response_a": response_a,
        "response_b": response_b,
        "metadata": {
            **others(obj, _USED),
            **({"prompt_id": obj["prompt_id"]} if obj.get("prompt_id") else {}),
            "score_a": score_a,
            "score_b": score_b,
        },
        "lm_labels": [
            {
                "judge": options.lm_judge or ULTRAFEEDBACK_JUDGE,
                "judge_version": "overall_score",
                "overall": gap_label(gap, clear_at=2),
                "p_a": logistic(gap / 2),
            }
        ],
    }, []


read_ultrafeedback_binarized = per_record(binarized_native)


FORMAT = Format(
    name="ultrafeedback-binarized",
    read=read_ultrafeedback_binarized,
    keys=frozenset({"prompt", "prompt_id", "chosen", "rejected", "score_chosen", "score_rejected"}),
    summary=(
        "HuggingFaceH4/ultrafeedback_binarized: chosen/rejected conversations as messages, "
        "labelled by GPT-4's overall scores (an LM label; equal scores a tie)"
    ),
)
