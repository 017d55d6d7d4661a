"""A large import streams: memory stays far below the file size."""

import tracemalloc

import pytest
from django.test import override_settings

from annotator.dataio.importer import comparisons_import
from annotator.dataio.synthetic import synthetic_jsonl
from annotator.models import Comparison, LMLabel

FILE_MB = 50


@pytest.mark.slow
@override_settings(IMPORT_BATCH_SIZE=500)
def test_a_50_mb_file_imports_with_flat_memory(project, tmp_path):
    path = tmp_path / "big.jsonl"
    n = 0
    with path.open("wb") as out:
        for line in synthetic_jsonl(10**7, words=80):
            out.write(line)
            n += 1
            if out.tell() >= FILE_MB * 2**20:
                break

    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            summary = comparisons_import(project=project, stream=stream, source_name=path.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert summary.created == n == Comparison.objects.count()
    assert LMLabel.objects.count() == 2 * n
    # One batch of 500 records is about 1 MB of JSON; the whole file is 50 MB.
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {FILE_MB} MB file"
