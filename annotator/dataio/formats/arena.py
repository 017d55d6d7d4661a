"""`arena`: LMSYS arena-human-preference-55k rows (Kaggle "LMSYS - Chatbot Arena" train.csv as
JSON Lines), the voter's one-hot winner as a human label.

`prompt`, `response_a` and `response_b` hold JSON-encoded lists with one entry per turn (the i-th
response answers the i-th prompt). One turn reads as plain strings, several as messages
(vote_fields.turns_native). A null response (the dataset has `[null]` rows) reads as "".
"""

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, ReadReport, json_objects
from annotator.dataio.formats.vote_fields import NULL_RESPONSES, turns_native
from annotator.dataio.records import FieldError

# The dataset names no voter: every vote is one anonymous arena user's.
ARENA_VOTER = "arena-voter"
# one-hot field -> the label's overall
WINNER_FIELDS = {"winner_model_a": "A", "winner_model_b": "B", "winner_tie": "Tie"}
TURN_FIELDS = ("prompt", "response_a", "response_b")
SOURCE = "lmsys-arena-human-preference-55k"
LONE_SURROGATES = "lone UTF-16 surrogates replaced by U+FFFD"


def read_arena(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors: list[FieldError] = []
        turns = {key: _turns(obj, key, errors, options.report) for key in TURN_FIELDS}
        winner = _winner(obj, errors)
        external_id = obj.get("id")
        if isinstance(external_id, int) and not isinstance(external_id, bool):
            external_id = str(external_id)
        elif not isinstance(external_id, str) or not external_id.strip():
            errors.append(FieldError("id", "missing" if "id" not in obj else "must be an id"))
        if not errors:
            _aligned(turns, errors)
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        prompt, response_a, response_b = turns_native(*(turns[key] for key in TURN_FIELDS))
        used = {"id", "model_a", "model_b", *TURN_FIELDS, *WINNER_FIELDS}
        native = {
            "external_id": external_id,
            "prompt": prompt,
            "response_a": response_a,
            "response_b": response_b,
            "metadata": {"source": SOURCE} | {k: v for k, v in obj.items() if k not in used},
            "human_labels": [
                {"annotator": ARENA_VOTER, "annotator_type": "normal", "overall": winner}
            ],
        }
        native.update({k: obj[k] for k in ("model_a", "model_b") if obj.get(k) is not None})
        yield Parsed(source, number, native)


def _turns(obj: dict, key: str, errors: list[FieldError], report: ReadReport) -> list[str] | None:
    """The turns in `key`: a JSON-encoded list of strings (or the list itself). Null responses
    read as "" (counted); a null prompt turn is an error."""
    value = obj.get(key)
    if isinstance(value, str):
        value, problem = _json_list(value, report)
        if problem:
            errors.append(FieldError(key, problem))
            return None
    if not isinstance(value, list) or not value:
        problem = "missing" if key not in obj else "must be a JSON-encoded list of turns"
        errors.append(FieldError(key, problem))
        return None
    turns = []
    for index, turn in enumerate(value):
        if turn is None and key != "prompt":
            report.counts[NULL_RESPONSES] += 1
            turn = ""
        if not isinstance(turn, str):
            errors.append(FieldError(f"{key}[{index}]", "must be a string"))
            return None
        turns.append(turn)
    return turns


def _json_list(text: str, report: ReadReport) -> tuple[Any, str | None]:
    """The value JSON-encoded in `text`, or a problem. Python's reader takes what orjson refuses
    only for lone UTF-16 surrogates (a cut emoji); the database cannot store those, so they
    become U+FFFD (counted)."""
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError as exc:
        problem = f"is not a JSON-encoded list of turns ({exc.msg} at column {exc.colno})"
    try:
        value = json.loads(text)
    except ValueError:
        return None, problem
    if isinstance(value, list):
        repaired = [_surrogates_replaced(v) if isinstance(v, str) else v for v in value]
        if repaired != value:
            report.counts[LONE_SURROGATES] += 1
        value = repaired
    return value, None


def _surrogates_replaced(text: str) -> str:
    # UTF-16 pairs surrogates that belong together and replaces the lone ones.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _winner(obj: dict, errors: list[FieldError]) -> str | None:
    """The overall label from the one-hot winner fields (each 0 or 1, exactly one 1)."""
    values = []
    for key in WINNER_FIELDS:
        value = obj.get(key)
        if isinstance(value, bool) or value in (0, 1, "0", "1"):  # CSV copies hold strings
            values.append(int(value))
        else:
            problem = "missing" if key not in obj else f"{value!r} is not 0 or 1"
            errors.append(FieldError(key, problem))
    if len(values) < len(WINNER_FIELDS):
        return None
    if sum(values) != 1:
        got = ", ".join(f"{k}={v}" for k, v in zip(WINNER_FIELDS, values, strict=True))
        errors.append(FieldError(", ".join(WINNER_FIELDS), f"exactly one must be 1 ({got})"))
        return None
    return next(label for label, v in zip(WINNER_FIELDS.values(), values, strict=True) if v)


def _aligned(turns: dict[str, list[str]], errors: list[FieldError]) -> None:
    """Each response answers every prompt turn: the lists are as long as the prompt's."""
    for key in ("response_a", "response_b"):
        if len(turns[key]) != len(turns["prompt"]):
            problem = f"has {len(turns[key])} turns; prompt has {len(turns['prompt'])}"
            errors.append(FieldError(key, problem))


FORMAT = Format(
    name="arena",
    read=lambda stream, source, options, path: read_arena(stream, source, options),
    keys=frozenset({"prompt", "response_a", "response_b", *WINNER_FIELDS}),
    summary=(
        "LMSYS arena-human-preference-55k: JSON-encoded turns, the one-hot winner as a human "
        "label by arena-voter"
    ),
    check=None,
)
