"""Readers for the import formats, one module each, and the registry that names them.

A reader yields `Parsed` items in the native shape; it only parses and reshapes, and
`records.record_from_native` validates. Line-oriented formats stream (memory does not grow with the
file). Gzip input is recognised by its magic bytes and a UTF-8 byte-order mark is skipped, so
neither needs a special name. `auto` picks the format from the first record's keys
(`format_detect`) and refuses when no format, or more than one equally, matches.
"""

from annotator.dataio.formats.common import (
    READ_ERRORS,
    Format,
    FormatError,
    InputTooLarge,
    Parsed,
    ReadOptions,
    ReadReport,
    open_binary,
)
from annotator.dataio.formats.registry import (
    AUTO,
    FORMAT_CHOICES,
    FORMATS,
    REGISTRY,
    format_detect,
    read_items,
)

__all__ = [
    "AUTO",
    "FORMATS",
    "FORMAT_CHOICES",
    "READ_ERRORS",
    "REGISTRY",
    "Format",
    "FormatError",
    "InputTooLarge",
    "Parsed",
    "ReadOptions",
    "ReadReport",
    "format_detect",
    "open_binary",
    "read_items",
]
