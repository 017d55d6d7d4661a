"""The `parquet` export: one row per exported pair with its label's provenance, written with
pyarrow a row group at a time as the batches come, so memory holds one row group.

Columns (parquet_schema): `external_id`; `prompt`, `chosen`, `rejected` (strings, or lists of
{role, content} messages when the export is conversational: TRL's two shapes); `response_a`,
`response_b` (the text), `model_a`, `model_b`; `choice` (A or B), `strength`, `label_source`
(human or lm) of the label that decides (pairs.py); `agreement` (share of the human votes for
their most common choice), `n_human_labels`, `judge_p_a` (the primary judge's latest probability
that A is better); `margin` (with --margin); `posterior` and `label_confidence` (with
--with-confidence); `prompt_messages`, `response_a_messages`, `response_b_messages` (the stored
conversation, null where the text was plain); `metadata` (JSON text).
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from annotator.dataio.export.confidence import ExportConfidence, posterior_dict
from annotator.dataio.export.pairs import MARGINS, MESSAGE_FIELDS, Pair, pair_batches
from annotator.dataio.export.trl import conversation, label_confidence, messages_parse
from annotator.labels import Choice
from annotator.models import Project

# Rows per row group unless asked otherwise: memory holds about one row group of pairs.
ROW_GROUP_ROWS = 10_000
# Comparison fields read besides the pair's own (Pair.extra), in this order.
PARQUET_FIELDS = ("model_a", "model_b", "metadata", *MESSAGE_FIELDS)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_POSTERIOR = pa.struct([("A", pa.float64()), ("B", pa.float64()), ("tie", pa.float64())])


def parquet_schema(*, conversational: bool, margin: bool, confidence: bool) -> pa.Schema:
    pair = MESSAGES if conversational else pa.string()
    fields = [
        pa.field("external_id", pa.string(), nullable=False),
        ("prompt", pair),
        ("chosen", pair),
        ("rejected", pair),
        *((name, pa.string()) for name in ("response_a", "response_b", "model_a", "model_b")),
        *((name, pa.string()) for name in ("choice", "strength", "label_source")),
        ("agreement", pa.float64()),
        ("n_human_labels", pa.int32()),
        ("judge_p_a", pa.float64()),
    ]
    if margin:
        fields.append(("margin", pa.float64()))
    if confidence:
        fields += [("posterior", _POSTERIOR), ("label_confidence", pa.float64())]
    fields += [(name, MESSAGES) for name in MESSAGE_FIELDS]
    fields.append(("metadata", pa.string()))
    return pa.schema(fields)


@dataclass
class ExportStats:
    """What an export wrote, for the dataset card."""

    rows: int = 0
    sources: Counter = field(default_factory=Counter)  # label_source -> rows
    voted: int = 0  # rows with two or more human votes
    agreement_sum: float = 0.0  # of their agreement
    unanimous: int = 0  # of them, those whose votes all agree
    arrow_bytes: int = 0  # the rows in memory (Arrow), as `datasets` counts a split
    file_bytes: int = 0  # the Parquet files

    def count(self, row: dict) -> None:
        self.rows += 1
        self.sources[row["label_source"]] += 1
        if row["n_human_labels"] >= 2:
            self.voted += 1
            self.agreement_sum += row["agreement"]
            self.unanimous += row["agreement"] == 1.0


def pair_rows(
    pairs: list[Pair],
    confidence: ExportConfidence | None,
    *,
    conversational: bool,
    margin: bool,
) -> list[dict]:
    """The rows of a batch of pairs (Pair.extra: PARQUET_FIELDS), those `confidence` keeps."""
    posteriors = confidence.batch(pairs) if confidence else {}
    rows = []
    for pair in pairs:
        final = pair.label
        model_a, model_b, metadata, *stored = pair.extra
        messages = messages_parse(tuple(stored))
        if conversational:
            prompt, chosen, rejected = conversation(pair, messages)
        else:
            prompt, a, b = pair.prompt, pair.response_a, pair.response_b
            chosen, rejected = (a, b) if final.choice == Choice.A else (b, a)
        row = {
            "external_id": pair.external_id,
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            "response_a": pair.response_a,
            "response_b": pair.response_b,
            "model_a": model_a,
            "model_b": model_b,
            "choice": final.choice,
            "strength": final.strength,
            "label_source": final.source,
            "agreement": pair.agreement,
            "n_human_labels": pair.n_human,
            "judge_p_a": pair.judge_p_a,
            "margin": MARGINS[final.strength] if margin else None,
            **dict(zip(MESSAGE_FIELDS, messages, strict=True)),
            "metadata": metadata,
        }
        if confidence:
            posterior = posteriors.get(pair.pk)
            value = label_confidence(final, posterior)
            if not confidence.keeps(value):
                continue
            row["posterior"] = posterior_dict(posterior)
            row["label_confidence"] = value if value is None else round(value, 4)
        rows.append(row)
    return rows


class _Sink:
    """Where the Parquet writer writes: bytes kept until drained (a write-only stream)."""

    def __init__(self):
        self._parts: list[bytes] = []
        self._size = 0
        self.closed = False

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class ParquetStream:
    """One Parquet file, written a row group of `row_group_size` rows at a time; each call hands
    back the bytes written since the last."""

    def __init__(self, schema: pa.Schema, row_group_size: int, stats: ExportStats):
        self._schema, self._size, self._stats = schema, row_group_size, stats
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(self._sink, schema)
        self._rows: list[dict] = []

    def add(self, rows: list[dict]) -> bytes:
        self._rows += rows
        while len(self._rows) >= self._size:
            self._write(self._rows[: self._size])
            del self._rows[: self._size]
        return self._drained()

    def close(self) -> bytes:
        if self._rows:
            self._write(self._rows)
            self._rows = []
        self._writer.close()
        return self._drained()

    def _write(self, rows: list[dict]) -> None:
        table = pa.Table.from_pylist(rows, schema=self._schema)
        self._writer.write_table(table, row_group_size=len(rows))
        self._stats.arrow_bytes += table.nbytes
        for row in rows:
            self._stats.count(row)

    def _drained(self) -> bytes:
        out = self._sink.drain()
        self._stats.file_bytes += len(out)
        return out


def parquet_chunks(
    project: Project,
    batch_size: int,
    comparisons,
    confidence: ExportConfidence | None,
    row_group_size: int | None,
    *,
    source: str,
    margin: bool,
    conversational: bool,
) -> Iterator[bytes]:
    """The Parquet file of the pairs, in pieces as its row groups are written."""
    schema = parquet_schema(
        conversational=conversational, margin=margin, confidence=confidence is not None
    )
    stream = ParquetStream(schema, row_group_size or ROW_GROUP_ROWS, ExportStats())
    shape = {"conversational": conversational, "margin": margin}
    batches = pair_batches(project, batch_size, comparisons, source=source, fields=PARQUET_FIELDS)
    for pairs in batches:
        chunk = stream.add(pair_rows(pairs, confidence, **shape))
        if chunk:
            yield chunk
    yield stream.close()
