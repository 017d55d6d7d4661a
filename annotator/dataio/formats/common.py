"""What every format reader shares: the `Parsed` item, the read options, decompression, JSON
Lines with line numbers, and the chosen/rejected -> A/B record."""

import gzip
import hashlib
import io
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from django.conf import settings

from annotator.dataio.records import FieldError, depth_problem, json_too_deep

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# A damaged upload (a truncated or corrupt gzip stream) fails while it is read, not line by line.
READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


class FormatError(ValueError):
    """The input's format cannot be told (`auto`) or is not the one named."""


class InputTooLarge(ValueError):
    """The input holds more bytes, once decompressed, than IMPORT_MAX_DECOMPRESSED_BYTES."""


def line_bytes_max() -> int:
    """The longest line (or JSON file read whole) that is parsed: three texts of
    IMPORT_MAX_TEXT_CHARS written as 12-byte JSON escapes (a surrogate pair per character), and
    as much again for labels and metadata. Longer ones are refused unread."""
    return 64 * settings.IMPORT_MAX_TEXT_CHARS


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


class _Counted(io.RawIOBase):
    """Reads `stream` and raises InputTooLarge once more than `limit` bytes came out of it, so
    that a small gzip cannot expand without bound (a "gzip bomb")."""

    def __init__(self, stream: BinaryIO, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.count > self.limit:
            raise InputTooLarge(
                f"the input is over {self.limit} bytes once decompressed "
                "(IMPORT_MAX_DECOMPRESSED_BYTES)"
            )
        # Never more than one byte past the limit: the error comes when a reader asks for the
        # bytes beyond it, on the line that needs them, not a buffer's length earlier.
        data = self.stream.read(min(len(buffer), self.limit + 1 - self.count))
        self.count += len(data)
        buffer[: len(data)] = data
        return len(data)


def open_binary(stream: BinaryIO) -> BinaryIO:
    """Wrap a binary stream, transparently decompressing gzip and skipping a UTF-8 byte-order
    mark (some tools write one before JSON). Reading more than IMPORT_MAX_DECOMPRESSED_BYTES
    from it raises InputTooLarge."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        buffered = gzip.GzipFile(fileobj=buffered, mode="rb")
    counted = _Counted(buffered, settings.IMPORT_MAX_DECOMPRESSED_BYTES)
    buffered = io.BufferedReader(counted, buffer_size=1 << 16)
    if buffered.peek(3)[:3] == UTF8_BOM:
        buffered.read(3)
    return buffered


def bounded_lines(reader: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """The lines of `reader`, each None when it is longer than `limit` bytes: such a line is
    skipped a chunk at a time, never held whole."""
    while raw := reader.readline(limit + 1):
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = reader.readline(1 << 20)
        yield None


def document_read(reader: BinaryIO, what: str) -> bytes:
    """A whole JSON file's bytes, if it is no longer than a line may be; ValueError if not."""
    limit = line_bytes_max()
    data = reader.read(limit + 1)
    if len(data) > limit:
        raise ValueError(
            f"{what} is over {limit} bytes, more than one JSON document may be "
            "(64 x IMPORT_MAX_TEXT_CHARS); split it into JSON Lines"
        )
    return data


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
        # A JSON array file is read whole by its reader anyway.
        data = document_read(reader, "the file (a JSON array)")
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FormatError(
                f"cannot tell the format: the file is not valid JSON ({exc})"
            ) from None
        first = value[0] if isinstance(value, list) and value else value
        return io.BufferedReader(io.BytesIO(data)), first
    seen = []
    limit = line_bytes_max()
    for number, raw in enumerate(bounded_lines(reader, limit), 1):
        if raw is None:
            raise FormatError(f"cannot tell the format: line {number}: {_line_too_long(limit)}")
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
    """(line number, value, []) per non-blank line, or (line, None, what is wrong with it). A line
    too long or too deeply nested is refused before it is parsed or walked; past
    IMPORT_MAX_DECOMPRESSED_BYTES the input ends with an error on the line it reached."""
    limit, depth = line_bytes_max(), settings.IMPORT_MAX_JSON_DEPTH
    number = 0
    try:
        for number, raw in enumerate(bounded_lines(open_binary(stream), limit), 1):
            if raw is None:
                yield number, None, [FieldError("(line)", _line_too_long(limit))]
            elif raw.strip():
                yield number, *_json_line(raw, depth)
    except InputTooLarge as exc:
        yield number + 1, None, [FieldError("(file)", f"{exc}; stopped reading here")]


def _json_line(raw: bytes, depth: int) -> tuple[Any, list[FieldError]]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, [FieldError("(line)", _json_problem(raw))]
    # Brackets counted in the raw bytes bound the depth from above: most lines need no walk.
    if raw.count(b"[") + raw.count(b"{") > depth and json_too_deep(value, depth + 1):
        return None, [FieldError(_deep_field(value, depth), depth_problem(depth))]
    return value, []


def _deep_field(value: Any, depth: int) -> str:
    """The top-level field of a line that nests too deeply (the line itself if it is no object)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if json_too_deep(child, depth):
                return str(key)
    return "(line)"


def _line_too_long(limit: int) -> str:
    return (
        f"the line is over {limit} bytes, more than IMPORT_MAX_TEXT_CHARS allows "
        "(64 bytes a character); it was not read"
    )


def _json_problem(raw: bytes) -> str:
    """orjson's message for one line, with the column counted within that line; bytes that are
    not UTF-8 are named as such (orjson would speak of surrogates)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of this "
            "line); convert it to UTF-8"
        )
    try:
        orjson.loads(raw.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    return "invalid JSON"


def per_record(convert: Callable[[dict, "ReadOptions"], tuple[dict | None, list]]) -> Reader:
    """A reader of JSON Lines where each object is one comparison: `convert(obj, options)` gives
    its native dict or its errors."""

    def read(
        stream: BinaryIO, source: str, options: ReadOptions, path: Path | None
    ) -> Iterator[Parsed]:
        for number, obj, problem in json_objects(stream, source):
            if problem is not None:
                yield problem
                continue
            native, errors = convert(obj, options)
            yield Parsed(source, number, native, errors)

    return read


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
