"""JSON written by PostgreSQL must read (and mostly be spelled) exactly as orjson writes it."""

import math
import random
import struct

import orjson
import pytest
from django.db import connection

from annotator.dataio.pg_json import json_object_sql, json_value_sql
from annotator.labels import Choice, Strength, label_format
from tests.annotator.dataio.export.helpers import AWKWARD_FLOATS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL writes the JSON only on PostgreSQL")


def _written(kind: str, values: list, sql_type: str, *columns: str) -> list[str]:
    """Each value through json_value_sql, in order."""
    expression = json_value_sql(kind, *columns) if columns else json_value_sql(kind, "x")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {expression} FROM unnest(%s::{sql_type}[]) WITH ORDINALITY AS t(x, i)"
            " ORDER BY i",
            [values],
        )
        return [row[0] for row in cursor.fetchall()]


def _doubles(n: int) -> list[float]:
    """Doubles of every magnitude and every bit pattern, plus integral values near 1e15."""
    rng = random.Random(7)
    values = []
    for _ in range(n):
        values.append(rng.random() * 10 ** rng.uniform(-325, 308))
        values.append(struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0])
        values.append(float(rng.randrange(10**14, 10**16)))
    return values


def test_doubles_are_spelled_as_orjson_spells_them():
    values = [*AWKWARD_FLOATS, -1.5e-5, -1e15, 1000000000000000.2, None, *_doubles(20_000)]

    written = _written("float", values, "float8")

    assert len(written) == len(values)
    for value, text in zip(values, written, strict=True):
        finite = value is not None and math.isfinite(value)
        if finite and value == int(value) and abs(value) >= 1e16:
            # PostgreSQL writes such integers with all their digits: the same number.
            assert float(text) == value
        else:
            assert text == orjson.dumps(value).decode(), value


def test_texts_have_orjson_escapes():
    odd = "".join(chr(i) for i in range(1, 0x80)) + "é ✓ 😀 \u2028 \u2029 \ufeff"

    assert _written("text", [odd, "", None], "text") == [
        orjson.dumps(odd).decode(),
        '""',
        "null",
    ]


def test_labels_are_the_label_texts():
    pairs = [(c, s) for c in Choice.values for s in Strength.values if c != "tie" or s == "unknown"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {json_value_sql('label', 'c', 's')} FROM unnest(%s::text[], %s::text[])"
            " WITH ORDINALITY AS t(c, s, i) ORDER BY i",
            [[c for c, _ in pairs] + [None], [s for _, s in pairs] + [None]],
        )
        written = [row[0] for row in cursor.fetchall()]

    assert written == [orjson.dumps(label_format(c, s)).decode() for c, s in pairs] + ["null"]


def test_an_object_is_compact_and_in_order_and_a_null_blanks_nothing():
    fields = [
        ("n", "int", ("NULL::int",)),
        ("b", "bool", ("true",)),
        ("j", "json", ("'{\"k\": [1, 2.5]}'::jsonb",)),
        ("t", "time", ("'2026-03-01 10:00:00.25+00'::timestamptz",)),
        ("c", "choice", ("NULL::text",)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {json_object_sql(fields)}, {json_object_sql(fields, close=False)}")
        closed, open_ = cursor.fetchone()

    assert closed == (
        '{"n":null,"b":true,"j":{"k": [1, 2.5]},"t":"2026-03-01T10:00:00.250000+00:00","c":null}'
    )
    assert open_ == closed[:-1]
    assert orjson.loads(closed)["j"] == {"k": [1, 2.5]}
