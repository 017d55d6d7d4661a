"""What every format reader shares: the `Parsed` item, the read options, decompression, JSON
Lines with line numbers, and the chosen/rejected -> A/B record."""

import gzip
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from annotator.dataio.records import FieldError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class FormatError(ValueError):
    """The input's format cannot be told (`auto`) or is not the one named."""


@dataclass(slots=True)
class Parsed:
    """One input item: where it came from, its native-shaped object, or what was wrong with it."""

    source: str
    line: int | str
    obj: dict | None
    errors: list[FieldError] = field(default_factory=list)


@dataclass(slots=True)
class ReadReport:
    """What a read tells besides its items: the format read (`auto` names what it chose) and
    counts of what it accepted but changed (e.g. null responses read as empty)."""

    format: str = ""
    counts: Counter = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    # trl / hh-rlhf: where the dataset's own preference goes.
    label_name: str = "imported"
    lm_judge: str | None = None  # set: store it as an LM label of this judge instead
    # llmbar: also read evaluators/<JUDGE>/<PROMPT>/result.json beside dataset.json
    with_evaluators: bool = False
    # Datasets with several rated responses per prompt: which pairs to compare (pairing.py).
    pairing: str = "best-vs-each"
    pairing_seed: int = 0
    report: ReadReport = field(default_factory=ReadReport, compare=False)

    def to_json(self) -> dict:
        """The options a background import job stores (everything but the report)."""
        return {f: getattr(self, f) for f in self.__slots__ if f != "report"}

    @classmethod
    def from_json(cls, data: dict) -> "ReadOptions":
        return cls(**{k: v for k, v in data.items() if k in cls.__slots__ and k != "report"})


Reader = Callable[[BinaryIO, str, ReadOptions, Path | None], Iterator[Parsed]]


@dataclass(frozen=True, slots=True)
class Format:
    """An import format: its reader, and the signature `auto` knows it by: the keys its records
    always have, and optionally a check of their values. The more keys, the more specific."""

    name: str
    read: Reader
    keys: frozenset[str]
    summary: str
    check: Callable[[dict], bool] | None = None

    def match(self, first: Any) -> int:
        """How specifically the first record matches (0: not at all)."""
        if not isinstance(first, dict) or not self.keys <= first.keys():
            return 0
        if self.check is not None and not self.check(first):
            return 0
        return len(self.keys)


def open_binary(stream: BinaryIO) -> BinaryIO:
    """Wrap a binary stream, transparently decompressing gzip and skipping a UTF-8 byte-order
    mark (some tools write one before JSON)."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        buffered = io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"))
    if buffered.peek(3)[:3] == UTF8_BOM:
        buffered.read(3)
    return buffered


class _Replayed(io.RawIOBase):
    """`head` again, then the rest of `stream`: the bytes `first_record` read to look."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self.head, self.stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def first_record(stream: BinaryIO) -> tuple[BinaryIO, Any]:
    """The first record of a JSON Lines file (or the first element of a JSON array file), and a
    stream that still reads from the start."""
    reader = open_binary(stream)
    if reader.peek(64).lstrip()[:1] == b"[":
        data = reader.read()  # a JSON array file is read whole by its reader anyway
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FormatError(
                f"cannot tell the format: the file is not valid JSON ({exc})"
            ) from None
        first = value[0] if isinstance(value, list) and value else value
        return io.BufferedReader(io.BytesIO(data)), first
    seen = []
    for number, raw in enumerate(iter(reader.readline, b""), 1):
        seen.append(raw)
        if raw.strip():
            try:
                first = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise FormatError(
                    f"cannot tell the format: line {number}: {_json_problem(raw)}"
                ) from None
            return io.BufferedReader(_Replayed(b"".join(seen), reader)), first
    raise FormatError("cannot tell the format: the file is empty")


def json_lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any, list[FieldError]]]:
    for number, raw in enumerate(open_binary(stream), 1):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw), []
        except orjson.JSONDecodeError:
            yield number, None, [FieldError("(line)", _json_problem(raw))]


def _json_problem(raw: bytes) -> str:
    """orjson's message for one line, with the column counted within that line."""
    try:
        orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return "invalid JSON"


def json_objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, dict, Parsed | None]]:
    """(line number, object, None) per JSON-object line, or (line, None, the failed item)."""
    for number, obj, errors in json_lines(stream, source):
        if errors:
            yield number, None, Parsed(source, number, None, errors)
        elif not isinstance(obj, dict):
            yield (
                number,
                None,
                Parsed(source, number, None, [FieldError("(line)", "must be a JSON object")]),
            )
        else:
            yield number, obj, None


def pair_external_id(prompt: str, chosen: str, rejected: str) -> str:
    """A stable id for a pair that has none: a hash of its content (order-independent of A/B)."""
    digest = hashlib.sha256(orjson.dumps([prompt, chosen, rejected])).hexdigest()
    return digest[:24]


def chosen_is_b(external_id: str) -> bool:
    """Reproducible A/B order for chosen/rejected data, seeded by the external id."""
    return hashlib.sha256(external_id.encode()).digest()[0] & 1 == 1


def preference_record(
    *,
    external_id: str,
    prompt: str,
    chosen: str,
    rejected: str,
    metadata: dict,
    options: ReadOptions,
) -> dict:
    swap = chosen_is_b(external_id)
    winner = "B" if swap else "A"
    record = {
        "external_id": external_id,
        "prompt": prompt,
        "response_a": rejected if swap else chosen,
        "response_b": chosen if swap else rejected,
        "metadata": metadata,
    }
    if options.lm_judge:
        record["lm_labels"] = [{"judge": options.lm_judge, "overall": winner}]
    else:
        record["human_labels"] = [{"annotator": options.label_name, "overall": winner}]
    return record
