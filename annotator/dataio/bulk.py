"""Fast multi-row inserts: PostgreSQL COPY, or executemany elsewhere.

The ORM's bulk_create spends most of its time building model instances; imports write tens of
thousands of rows per second, so they write plain tuples here. Callers pass values already in
Python types: str for text, dict/list for JSON, datetime, bool, int, float, None (SQL NULL, also
in a JSON column).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson
from django.db import connection, models
from psycopg.types.json import Jsonb


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """Reserve `count` primary keys for rows the caller will insert in this transaction.

    PostgreSQL: from the identity sequence (safe under concurrency). SQLite: after the current
    maximum, which is safe because a write transaction holds the database's single write lock.
    """
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')
        start = cursor.fetchone()[0] + 1
        # AUTOINCREMENT tables never reuse ids, even deleted ones: start past the sequence too.
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        if row is not None:
            start = max(start, row[0] + 1)
        return list(range(start, start + count))


_COPY_TYPE_NAMES = {
    "timestamp with time zone": "timestamptz",
    "double precision": "float8",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "boolean": "bool",
}


def _copy_type(field: models.Field) -> str:
    """The type name psycopg's binary COPY needs for a model field ("varchar(200)" -> "varchar")."""
    db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
    db_type = db_type.split("(")[0].strip()
    return _COPY_TYPE_NAMES.get(db_type, db_type)


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert rows of values for `columns` (model field attnames) into the model's table."""
    meta = model._meta
    fields = [meta.get_field(name) for name in columns]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    time_at = [i for i, f in enumerate(fields) if isinstance(f, models.DateTimeField)]
    db_columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(meta.db_table)
    count = 0
    with connection.cursor() as cursor:
        if _is_postgres():
            sql = f"COPY {table} ({db_columns}) FROM STDIN (FORMAT BINARY)"
            with cursor.cursor.copy(sql) as copy:
                # Binary COPY: values go out through psycopg's C dumpers, no text escaping.
                copy.set_types([_copy_type(f) for f in fields])
                for row in rows:
                    if json_at:
                        row = list(row)
                        for i in json_at:
                            if row[i] is not None:
                                row[i] = Jsonb(row[i], dumps=orjson.dumps)
                    copy.write_row(row)
                    count += 1
            return count
        adapt = connection.ops.adapt_datetimefield_value
        prepared = []
        for row in rows:
            row = list(row)
            for i in json_at:
                if row[i] is not None:
                    row[i] = orjson.dumps(row[i]).decode()
            for i in time_at:
                if isinstance(row[i], datetime):
                    row[i] = adapt(row[i])
            prepared.append(row)
        if prepared:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({db_columns}) VALUES ({placeholders})", prepared
            )
        return len(prepared)
