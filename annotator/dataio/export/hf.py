"""The `hf` export: a Hugging Face dataset that `datasets.load_dataset(DIR)` loads.

    data/train-00000-of-0000N.parquet ...   the parquet export's rows (parquet.py), in shards
    README.md                               the dataset card (card.py): YAML front matter
                                            (licence, size category, features, configs, split
                                            size) and prose (label provenance, agreement)

The command writes the directory; the API streams it as a zip (stored, not compressed: Parquet
is compressed already), the card last since it counts what the shards hold.

A shard holds the pairs of up to SHARD_COMPARISONS filtered comparisons (whole batches), so the
number of shards is known before the first row is read (one count); comparisons without a pair
leave a shard smaller, or empty (a valid Parquet file of no rows). Should comparisons be added
between the count and the export's snapshot, the last shard takes them.
"""

import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from django.db.models import QuerySet

from annotator.dataio.export.card import hf_card_markdown
from annotator.dataio.export.confidence import ExportConfidence
from annotator.dataio.export.pairs import pair_batches
from annotator.dataio.export.parquet import (
    PARQUET_FIELDS,
    ROW_GROUP_ROWS,
    ExportStats,
    ParquetStream,
    pair_rows,
    parquet_schema,
)
from annotator.models import Project

# Comparisons per shard unless asked otherwise.
SHARD_COMPARISONS = 100_000
CARD_NAME = "README.md"


@dataclass(frozen=True)
class HfExport:
    project: Project
    batch_size: int
    comparisons: QuerySet
    confidence: ExportConfidence | None
    options: object  # annotator.dataio.export.ExportOptions
    pairs: dict  # source, margin, conversational (decided)


class HfSummary(NamedTuple):
    path: Path
    shards: int
    stats: ExportStats


def hf_files(export: HfExport, stats: ExportStats) -> Iterator[tuple[str, Iterator[bytes]]]:
    """(path in the dataset, its bytes in pieces) of each file, in order; each file's pieces
    must be read before the next file is asked for. `stats` counts what the shards hold."""
    options, pairs = export.options, export.pairs
    schema = parquet_schema(
        conversational=pairs["conversational"],
        margin=pairs["margin"],
        confidence=export.confidence is not None,
    )
    shard_size = options.shard_size or SHARD_COMPARISONS
    batch_size = min(export.batch_size, shard_size)
    batches_per_shard = shard_size // batch_size
    shards = max(1, math.ceil(export.comparisons.count() / (batches_per_shard * batch_size)))
    batches = pair_batches(
        export.project,
        batch_size,
        export.comparisons,
        source=pairs["source"],
        fields=PARQUET_FIELDS,
    )
    shape = {"conversational": pairs["conversational"], "margin": pairs["margin"]}
    for index in range(shards):
        taken = batches if index == shards - 1 else islice(batches, batches_per_shard)
        stream = ParquetStream(schema, options.row_group_size or ROW_GROUP_ROWS, stats)
        yield (
            f"data/train-{index:05d}-of-{shards:05d}.parquet",
            _shard(stream, (pair_rows(p, export.confidence, **shape) for p in taken)),
        )
    yield CARD_NAME, _card(export, schema, stats, shards)


def _shard(stream: ParquetStream, rows: Iterator[list[dict]]) -> Iterator[bytes]:
    for batch in rows:
        chunk = stream.add(batch)
        if chunk:
            yield chunk
    yield stream.close()


def _card(export: HfExport, schema, stats: ExportStats, shards: int) -> Iterator[bytes]:
    """The card, written once the shards are (it counts their rows)."""
    yield hf_card_markdown(
        project=export.project,
        schema=schema,
        stats=stats,
        shards=shards,
        license=export.options.license,
        source=export.pairs["source"],
    ).encode()


def hf_directory_write(export: HfExport, path: Path) -> HfSummary:
    """Write the dataset into the directory `path` (made beside it as PATH.partial and renamed
    when complete: a failed export leaves nothing that looks whole). `path` must not exist, or
    be an empty directory."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path} already exists and is not an empty directory")
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        raise ValueError(f"{partial} exists (a previous export that failed?): remove it first")
    stats, shards = ExportStats(), 0
    for name, chunks in hf_files(export, stats):
        target = partial / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        shards += name != CARD_NAME
    if path.exists():
        path.rmdir()
    partial.rename(path)
    return HfSummary(path, shards, stats)


class _ZipSink:
    """Where the zip is written: a stream that cannot seek (entries carry data descriptors)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


def hf_zip_chunks(export: HfExport) -> Iterator[bytes]:
    """The dataset directory as a zip, in pieces as its files are written."""
    sink, stats = _ZipSink(), ExportStats()
    when = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, chunks in hf_files(export, stats):
            entry = zipfile.ZipInfo(name, date_time=when)
            entry.external_attr = 0o644 << 16  # rw-r--r-- once unzipped
            with archive.open(entry, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
                    if written := sink.drain():
                        yield written
    yield sink.drain()  # the entries' data descriptors and the central directory
