"""`native`: this platform's own JSON Lines, the shape every other reader produces and the full
export writes; validated by `records.record_from_native`."""

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, json_lines


def _read_native(
    stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
) -> Iterator[Parsed]:
    for number, obj, errors in json_lines(stream, source):
        yield Parsed(source, number, obj, errors)


FORMAT = Format(
    name="native",
    read=_read_native,
    keys=frozenset({"prompt", "response_a", "response_b"}),
    summary="this platform's own JSON Lines (what the full export writes)",
)
