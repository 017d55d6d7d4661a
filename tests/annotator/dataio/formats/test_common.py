"""What every reader shares (formats/common.py): the limits checked while the input streams
(bytes once decompressed, the length of a line, JSON depth) and the message for a file that is
not UTF-8, each an error naming FILE:LINE: field, with nothing written."""

import gzip
import io
import tracemalloc
import zlib

import orjson
import pytest

from annotator.dataio.formats.common import bounded_lines
from tests.conftest import table_counts
from tests.import_records import native


def _gzip_bomb(path, size: int) -> None:
    """A native line whose prompt is `size` bytes of one character, gzipped a chunk at a time
    (about a thousandth of its size on disk)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    with path.open("wb") as out:
        out.write(packer.compress(b'{"external_id": "bomb", "response_a": "a", "prompt": "'))
        chunk = b"x" * (1 << 20)
        for _ in range(size // len(chunk)):
            out.write(packer.compress(chunk))
        out.write(packer.compress(b'", "response_b": "b"}\n'))
        out.write(packer.flush())


def test_a_gzip_bomb_is_refused_at_its_line_in_bounded_memory(project, run_import, tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    _gzip_bomb(path, 300 * 1024**2)
    assert path.stat().st_size < 1024**2

    tracemalloc.start()
    try:
        result = run_import(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result.error_lines == [
        f"{path}:1: (line): the line is over 64000000 bytes, more than IMPORT_MAX_TEXT_CHARS "
        "allows (64 bytes a character); it was not read"
    ]
    assert not result.ok
    # The 300 MB line is skipped a chunk at a time: at most one line's limit is ever held.
    assert peak < 200 * 1024**2
    assert table_counts() == (0, 0, 0)


def test_the_decompressed_size_is_capped_while_streaming(
    project, write_lines, run_import, settings
):
    settings.IMPORT_MAX_DECOMPRESSED_BYTES = 10_000
    path = write_lines([native(f"c{i}") for i in range(1000)], name="many.jsonl.gz", compress=True)

    result = run_import(path)

    assert not result.ok
    [error] = result.error_lines
    # The error is on the line that holds the 10,001st byte.
    line = 1 + sum(1 for _ in _running_total(path, 10_000))
    assert error.startswith(f"{path}:{line}: (file): ")
    message = error.split(": (file): ")[1]
    assert message == (
        "the input is over 10000 bytes once decompressed (IMPORT_MAX_DECOMPRESSED_BYTES); "
        "stopped reading here"
    )
    assert table_counts() == (0, 0, 0)


def _running_total(path, limit: int):
    """The lines of the gzipped file that end within its first `limit` bytes."""
    total = 0
    for line in gzip.decompress(path.read_bytes()).splitlines(keepends=True):
        total += len(line)
        if total > limit:
            return
        yield line


def test_the_format_cannot_be_told_from_a_line_over_the_limit(
    project, write_lines, run_import, settings
):
    settings.IMPORT_MAX_TEXT_CHARS = 10
    path = write_lines([native("c1", prompt="p" * 1000)])

    result = run_import(path, format="auto")

    assert not result.ok
    assert result.error == (
        "cannot tell the format: line 1: the line is over 640 bytes, more than "
        "IMPORT_MAX_TEXT_CHARS allows (64 bytes a character); it was not read"
    )


def test_a_line_that_is_not_utf8_is_named(project, write_lines, run_import):
    latin1 = orjson.dumps(native("cafe", prompt="café?")).decode().encode("latin-1")
    path = write_lines([native("ok")])
    path.write_bytes(path.read_bytes() + latin1 + b"\n")

    result = run_import(path)

    at = latin1.index("é".encode("latin-1")) + 1
    assert not result.ok
    assert result.error_lines == [
        f"{path}:2: (line): the file is not UTF-8 (byte 0xe9 at byte {at} of this line); "
        "convert it to UTF-8"
    ]


def test_a_deep_line_names_its_top_level_field_before_any_reader_sees_it(
    project, write_lines, run_import, settings
):
    settings.IMPORT_MAX_JSON_DEPTH = 4
    deep = '{"prompt": "p", "chosen": "a", "rejected": "b", "extra": [[[[[1]]]]]}'
    path = write_lines([deep])

    result = run_import(path, format="trl")

    assert result.error_lines == [
        f"{path}:1: extra: nests arrays and objects deeper than 4 levels (IMPORT_MAX_JSON_DEPTH)"
    ]


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"12345\n123456\n1234", [b"12345\n", None, b"1234"]),
        (b"123456789\nab\n", [None, b"ab\n"]),
        (b"12345", [b"12345"]),
    ],
)
def test_bounded_lines_skips_a_line_over_the_limit_without_holding_it(data, lines):
    assert list(bounded_lines(io.BufferedReader(io.BytesIO(data)), 5)) == lines


def test_a_gzip_over_the_cap_in_a_json_array_file_is_refused(settings):
    from annotator.dataio.formats.common import document_read, open_binary

    settings.IMPORT_MAX_TEXT_CHARS = 1
    with pytest.raises(ValueError, match="the file is over 64 bytes"):
        document_read(
            open_binary(io.BytesIO(gzip.compress(b"[" + b"1," * 100 + b"1]"))), "the file"
        )
