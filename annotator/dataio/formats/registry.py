"""The import formats by name, and `auto`: the format told from the first record's keys."""

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from annotator.dataio.formats.arena import FORMAT as ARENA
from annotator.dataio.formats.arena_conversations import FORMAT as ARENA_CONVERSATIONS
from annotator.dataio.formats.common import Format, FormatError, Parsed, ReadOptions, first_record
from annotator.dataio.formats.helpsteer2 import FORMAT as HELPSTEER2
from annotator.dataio.formats.helpsteer2_preference import FORMAT as HELPSTEER2_PREFERENCE
from annotator.dataio.formats.hh_rlhf import FORMAT as HH_RLHF
from annotator.dataio.formats.llmbar import FORMAT as LLMBAR
from annotator.dataio.formats.mt_bench_human import FORMAT as MT_BENCH_HUMAN
from annotator.dataio.formats.multipref import FORMAT as MULTIPREF
from annotator.dataio.formats.native import FORMAT as NATIVE
from annotator.dataio.formats.nectar import FORMAT as NECTAR
from annotator.dataio.formats.pku_saferlhf import FORMAT as PKU_SAFERLHF
from annotator.dataio.formats.shp import FORMAT as SHP
from annotator.dataio.formats.trl import FORMAT as TRL
from annotator.dataio.formats.ultrafeedback import FORMAT as ULTRAFEEDBACK
from annotator.dataio.formats.ultrafeedback_binarized import FORMAT as ULTRAFEEDBACK_BINARIZED

# One entry per format, in the order the README's table lists them.
REGISTRY: dict[str, Format] = {
    f.name: f
    for f in (
        NATIVE,
        TRL,
        HH_RLHF,
        LLMBAR,
        MULTIPREF,
        ULTRAFEEDBACK,
        ULTRAFEEDBACK_BINARIZED,
        HELPSTEER2,
        HELPSTEER2_PREFERENCE,
        SHP,
        PKU_SAFERLHF,
        NECTAR,
        ARENA,
        ARENA_CONVERSATIONS,
        MT_BENCH_HUMAN,
    )
}
FORMATS = tuple(REGISTRY)
AUTO = "auto"
FORMAT_CHOICES = (AUTO, *FORMATS)


def format_detect(first: object) -> str:
    """The format whose signature the first record matches best; FormatError when none does or
    when two match equally (name the format then)."""
    scored = sorted(
        ((f.match(first), f.name) for f in REGISTRY.values()), key=lambda s: s[0], reverse=True
    )
    scored = [s for s in scored if s[0] > 0]
    keys = sorted(first) if isinstance(first, dict) else f"a JSON {type(first).__name__}"
    if not scored:
        raise FormatError(
            f"no format matches the first record (keys: {keys}); name one with --format "
            f"({', '.join(FORMATS)})"
        )
    best = [name for score, name in scored if score == scored[0][0]]
    if len(best) > 1:
        raise FormatError(
            f"the first record (keys: {keys}) matches {' and '.join(best)} equally; "
            f"name one with --format"
        )
    return best[0]


def read_items(
    stream: BinaryIO, *, fmt: str, source: str, options: ReadOptions, path: Path | None = None
) -> Iterator[Parsed]:
    """The items of `stream` read as format `fmt` (`auto`: detected; options.report.format says
    which)."""
    if fmt == AUTO:
        stream, first = first_record(stream)
        fmt = format_detect(first)
    if fmt not in REGISTRY:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMAT_CHOICES)}")
    options.report.format = fmt
    return REGISTRY[fmt].read(stream, source, options, path)
