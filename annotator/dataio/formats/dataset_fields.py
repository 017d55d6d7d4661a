"""What the readers of published preference datasets share: typed reads of one row's fields that
collect every problem (never raise), a score gap turned into a label, the dataset's preference as
a human or an LM label (`--label-source`), and a conversation's turns as the native prompt."""

import math
from typing import Any

from annotator.dataio.formats.common import ReadOptions
from annotator.dataio.records import FieldError
from annotator.labels import Choice, Strength, label_format


def kind(value: Any) -> str:
    """How a JSON value is named in an error message."""
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _absent(obj: dict, key: str) -> str:
    return "missing" if key not in obj else "must not be null"


def text_read(obj: dict, key: str, errors: list[FieldError], *, where: str = "") -> str | None:
    """obj[key] as a string (empty allowed), or None and a problem named `where` (default key)."""
    value = obj.get(key)
    if isinstance(value, str):
        return value
    problem = _absent(obj, key) if value is None else f"must be a string, not {kind(value)}"
    errors.append(FieldError(where or key, problem))
    return None


def number_read(
    obj: dict,
    key: str,
    errors: list[FieldError],
    *,
    low: float,
    high: float,
    integral: bool = False,
    where: str = "",
) -> float | None:
    """obj[key] as a number in [low, high] (a whole number when `integral`), or None and a
    problem."""
    value = obj.get(key)
    name = where or key
    if value is None:
        errors.append(FieldError(name, _absent(obj, key)))
    elif isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        errors.append(FieldError(name, f"must be a number, not {kind(value)}"))
    elif integral and value != int(value):
        errors.append(FieldError(name, f"{value!r} is not a whole number"))
    elif not low <= value <= high:
        errors.append(FieldError(name, f"{value!r} is outside [{low:g}, {high:g}]"))
    else:
        return value
    return None


def list_read(obj: dict, key: str, errors: list[FieldError], *, where: str = "") -> list | None:
    """obj[key] as a list, or None and a problem."""
    value = obj.get(key)
    if isinstance(value, list):
        return value
    problem = _absent(obj, key) if value is None else f"must be a list, not {kind(value)}"
    errors.append(FieldError(where or key, problem))
    return None


def others(obj: dict, used: frozenset[str]) -> dict:
    """The row's fields a reader does not map: they go to `metadata` as they are."""
    return {k: v for k, v in obj.items() if k not in used}


def gap_label(gap: float, clear_at: float) -> str:
    """The label of a score gap (A's score minus B's): a tie at 0, `slightly` below `clear_at`,
    `clearly` from it."""
    if gap == 0:
        return label_format(Choice.TIE, Strength.UNKNOWN)
    strength = Strength.CLEARLY if abs(gap) >= clear_at else Strength.SLIGHTLY
    return label_format(Choice.A if gap > 0 else Choice.B, strength)


def logistic(x: float) -> float:
    """1 / (1 + e^-x), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def preference_label(options: ReadOptions, overall: str, rationale: str = "") -> dict:
    """The dataset's preference as a human label named after the file, or as an LM label of
    `--label-source lm:JUDGE`."""
    if options.lm_judge:
        return {"judge": options.lm_judge, "overall": overall, "rationale": rationale}
    return {"annotator": options.label_name, "overall": overall, "rationale": rationale}


def prompt_from_turns(turns: list[dict]) -> str | list[dict]:
    """The native prompt of a conversation's turns: one user turn is its text, several turns
    stay messages."""
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return turns
