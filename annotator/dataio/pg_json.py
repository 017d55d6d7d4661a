"""JSON written by PostgreSQL, byte for byte as orjson writes the same values.

The `full` export on PostgreSQL has the database write each comparison's fields and each label as
JSON text; Python only joins the pieces into lines. Per comparison that is six strings to handle
instead of some eighty values turned into Python objects and back, which is what limited the
export to one core's worth of Python.

Each value kind has an SQL expression that writes what `orjson.dumps` writes for it:

- text with `to_json` (the same escapes as orjson: `\\n`, `\\u001f`, non-ASCII as it is);
- values from a checked list (choices, sources) and our own constants, quoted as they are;
- JSON columns as PostgreSQL prints them (as the Python path embeds them on PostgreSQL);
- a prompt or response: its messages (a JSON column) where stored, else its text;
- doubles in orjson's layout of the shortest round-trip digits, which both share: PostgreSQL
  switches to exponents below 1e-4 and from 1e15 and pads them (`1e-05`, `1.5e-07`), orjson from
  below 1e-5 and from 1e16 without padding (`0.00001`, `1.5e-7`); NaN and infinities are null.
  One difference is left: integral doubles of 1e16 and above, which PostgreSQL writes with all
  their digits (`3.3431474702401232e+16` for orjson's `3.343147470240123e+16`), the same
  number; no stored time or probability comes near;
- booleans, integers, ISO timestamps in UTC with microseconds.

Every piece that can be NULL is coalesced: one NULL would blank the whole line.
"""

from collections.abc import Sequence
from typing import Literal

Kind = Literal["text", "choice", "label", "json", "float", "int", "bool", "time", "messages"]


def _quoted(expression: str) -> str:
    """A value written without escapes: only for checked lists and our own constants."""
    return f"""COALESCE('"' || {expression} || '"', 'null')"""


def _label(choice: str, strength: str) -> str:
    """The label text of a judgement (annotator.labels.label_format): `A-is-clearly-better`,
    `A` when the strength is unknown, `Tie`."""
    return (
        f"""CASE WHEN {choice} IS NULL THEN 'null' WHEN {choice} = 'tie' THEN '"Tie"'"""
        f""" WHEN {strength} = 'unknown' THEN '"' || {choice} || '"'"""
        f""" ELSE '"' || {choice} || '-is-' || {strength} || '-better"' END"""
    )


def _float(x: str) -> str:
    """A double as orjson writes it. The common cases (no exponent in either) come first."""
    text = f"{x}::text"
    mantissa = f"split_part({text}, 'e', 1)"
    exponent = f"split_part({text}, 'e', 2)::int"
    digits = f"replace(ltrim({mantissa}, '-'), '.', '')"
    sign = f"CASE WHEN {x} < 0 THEN '-' ELSE '' END"
    return (
        f"CASE WHEN {x} IS NULL OR {x} IN ('NaN', 'Infinity', '-Infinity') THEN 'null'"
        f" WHEN abs({x}) < 1e15 AND {x} = trunc({x}) THEN {text} || '.0'"
        f" WHEN abs({x}) >= 1e-4 AND abs({x}) < 1e15 THEN {text}"
        # From here PostgreSQL wrote an exponent: d.ddde-05 ... or d.ddde+15 ...
        f" WHEN {exponent} = -5 THEN {sign} || '0.0000' || {digits}"
        f" WHEN {exponent} = 15 THEN {sign} || rpad(left({digits}, 16), 16, '0') || '.'"
        f" || COALESCE(NULLIF(substr({digits}, 17), ''), '0')"
        f" WHEN {exponent} > 0 THEN {mantissa} || 'e+' || {exponent}::text"
        f" ELSE {mantissa} || 'e' || {exponent}::text END"
    )


def _time(x: str) -> str:
    return (
        f"""'"' || to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || '"'"""
    )


_WRITERS = {
    "text": lambda x: f"COALESCE(to_json({x})::text, 'null')",
    "choice": _quoted,
    "json": lambda x: f"COALESCE({x}::text, 'null')",
    "float": _float,
    "int": lambda x: f"COALESCE({x}::text, 'null')",
    "bool": lambda x: f"COALESCE({x}::text, 'null')",
    "time": lambda x: f"COALESCE({_time(x)}, 'null')",
}


def json_value_sql(kind: Kind, *columns: str) -> str:
    """SQL text of one JSON value of `kind` from `columns` (a label: its choice and strength;
    messages: the JSON column of the messages, then the text column written when it is NULL)."""
    if kind == "label":
        return _label(*columns)
    if kind == "messages":
        messages, text = columns
        return f"COALESCE({messages}::text, to_json({text})::text, 'null')"
    (column,) = columns
    return _WRITERS[kind](column)


def json_object_sql(fields: Sequence[tuple[str, Kind, tuple[str, ...]]], *, close=True) -> str:
    """SQL text of a JSON object with `fields` (key, kind, columns) in order, compact as orjson
    writes it; with `close=False` the closing brace is left off, for the caller to add keys."""
    parts = []
    for index, (key, kind, columns) in enumerate(fields):
        parts.append("'" + ("{" if index == 0 else ",") + f'"{key}":' + "'")
        parts.append(json_value_sql(kind, *columns))
    if close:
        parts.append("'}'")
    return " || ".join(parts)
