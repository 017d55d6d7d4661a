"""The import_comparisons command on files it cannot read: a clean error naming the file, no
traceback, nothing written."""

import gzip

import orjson
import pytest

from tests.conftest import table_counts
from tests.import_records import native


def _gzipped_lines(n: int) -> bytes:
    # Distinct texts, so that the compressed stream is long enough to cut and to damage.
    return gzip.compress(
        b"".join(orjson.dumps(native(f"c{i}", prompt=f"q{i * 7919}")) + b"\n" for i in range(n))
    )


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[: len(data) // 2], "Compressed file ended before the end-of-stream"),
        (lambda data: data[:20] + b"\xff" * 40 + data[60:], "Error -3 while decompressing"),
        (lambda data: data[:-8] + b"\0" * 8, "CRC check failed"),
    ],
    ids=["truncated", "corrupt", "bad-checksum"],
)
def test_a_damaged_gzip_is_a_clean_error_naming_the_file(
    project, run_import, tmp_path, damage, problem
):
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(damage(_gzipped_lines(2000)))

    result = run_import(path)

    assert not result.ok
    assert result.error.startswith(f"{path}: the file cannot be read: ")
    assert problem in result.error
    assert result.error.endswith("; nothing was written")
    assert table_counts() == (0, 0, 0)
