"""`helpsteer2-preference`: nvidia/HelpSteer2's preference config, two responses and the
annotators' preference strength -3..3 (negative: response 1 better).

Response 1 is A and response 2 is B, as published, so that the statements' `@Response 1` and
`@Response 2` still name the right sides. Strength: 0 a tie, -1 / 1 `slightly`, -2, -3 / 2, 3
`clearly` (the card's "better" and "much better" both above "slightly"). The aggregated strength is
a human label named after the file (or an LM label with `--label-source lm:JUDGE`), its statement
and elaboration the rationale. Each annotator's own strength and justification
(`all_preferences_unprocessed`, or HelpSteer3's `individual_preference` with `score` and
`reasoning`) is a human label of its own, named `<id>#<n>`: the dataset names no annotators, so
one name per comparison claims nothing across comparisons. `split` and the other fields are kept in
metadata (`three_most_similar_preferences`, a subset of the annotators' own, is not).
"""

from typing import Any

from annotator.dataio.formats.common import (
    Format,
    ReadOptions,
    pair_external_id,
    per_record,
)
from annotator.dataio.formats.dataset_fields import (
    kind,
    number_read,
    others,
    preference_label,
    text_read,
)
from annotator.dataio.formats.helpsteer2 import prompt_turns
from annotator.dataio.records import FieldError
from annotator.labels import Choice, Strength, label_format

_INDIVIDUAL = ("individual_preference", "all_preferences_unprocessed")
_USED = frozenset(
    {
        "prompt",
        "response_1",
        "response_2",
        "preference_strength",
        "preference_statement",
        "preference_elaboration",
        "three_most_similar_preferences",
        *_INDIVIDUAL,
    }
)


def strength_label(strength: int) -> str:
    """-3..3 (negative: response 1, i.e. A, better) as a label."""
    if strength == 0:
        return label_format(Choice.TIE, Strength.UNKNOWN)
    size = Strength.SLIGHTLY if abs(strength) == 1 else Strength.CLEARLY
    return label_format(Choice.A if strength < 0 else Choice.B, size)


def _strength(obj: dict, keys: tuple[str, ...], where: str, errors: list[FieldError]):
    key = next((k for k in keys if k in obj), keys[0])
    return number_read(obj, key, errors, low=-3, high=3, integral=True, where=f"{where}{key}")


def individual_labels(obj: dict, external_id: str, errors: list[FieldError]) -> list[dict]:
    """Each annotator's own preference as a human label (the first list of _INDIVIDUAL found)."""
    key = next((k for k in _INDIVIDUAL if obj.get(k) is not None), None)
    if key is None:
        return []
    entries: Any = obj[key]
    if not isinstance(entries, list):
        errors.append(FieldError(key, f"must be a list, not {kind(entries)}"))
        return []
    labels = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]."
        if not isinstance(entry, dict):
            errors.append(FieldError(where[:-1], f"must be an object, not {kind(entry)}"))
            continue
        strength = _strength(entry, ("strength", "score"), where, errors)
        why = entry.get("justification", entry.get("reasoning")) or ""
        if not isinstance(why, str):
            errors.append(FieldError(f"{where}justification", f"must be a string, not {kind(why)}"))
        elif strength is not None:
            labels.append(
                {
                    "annotator": f"{external_id}#{index + 1}",
                    "overall": strength_label(int(strength)),
                    "rationale": why,
                }
            )
    return labels


def preference_native(obj: dict, options: ReadOptions) -> tuple[dict | None, list[FieldError]]:
    errors: list[FieldError] = []
    prompt = text_read(obj, "prompt", errors)
    response_1 = text_read(obj, "response_1", errors)
    response_2 = text_read(obj, "response_2", errors)
    strength = _strength(obj, ("preference_strength",), "", errors)
    why = []
    for key in ("preference_statement", "preference_elaboration"):
        if obj.get(key) is not None:
            why.append(text_read(obj, key, errors) or "")
    if errors:
        return None, errors
    external_id = f"hs2p-{pair_external_id(prompt, response_1, response_2)}"
    individual = individual_labels(obj, external_id, errors)
    if errors:
        return None, errors
    label = preference_label(options, strength_label(int(strength)), "\n\n".join(filter(None, why)))
    native = {
        "external_id": external_id,
        "prompt": prompt_turns(prompt),
        "response_a": response_1,
        "response_b": response_2,
        "metadata": {**others(obj, _USED), "preference_strength": strength},
        "human_labels": individual,
    }
    if options.lm_judge:
        native["lm_labels"] = [label]
    else:
        native["human_labels"].insert(0, label)
    return native, []


read_helpsteer2_preference = per_record(preference_native)


FORMAT = Format(
    name="helpsteer2-preference",
    read=read_helpsteer2_preference,
    keys=frozenset({"prompt", "response_1", "response_2", "preference_strength"}),
    summary=(
        "nvidia/HelpSteer2 preference config: strength -3..3 a label (1 slightly, 2-3 clearly), "
        "the statement its rationale, each annotator's own preference a label too"
    ),
)
