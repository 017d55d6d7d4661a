"""`--format auto`: the format told from the first record, said, and refused when unclear."""

import io
import json

import pytest

from annotator.dataio.formats import REGISTRY, Format, FormatError, format_detect
from annotator.models import Comparison
from tests.conftest import DATA
from tests.import_records import native

HH = "\n\nHuman: Hi?\n\nAssistant:"
USER = {"role": "user", "content": "Q?"}


def said(text: str) -> dict:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (native("x"), "native"),
        ({"prompt": "Q?", "chosen": "good", "rejected": "bad"}, "trl"),
        ({"chosen": [USER, said("yes")], "rejected": [USER, said("no")]}, "trl"),
        ({"chosen": HH + " yes", "rejected": HH + " no"}, "hh-rlhf"),
        ({"input": "Q?", "output_1": "a", "output_2": "b", "label": 1}, "llmbar"),
    ],
)
def test_each_format_is_told_from_its_first_record(first, expected):
    assert format_detect(first) == expected


def test_a_record_no_format_knows_is_refused_with_its_keys():
    with pytest.raises(FormatError, match=r"no format matches .*\['answer', 'question'\]"):
        format_detect({"question": "Q?", "answer": "A."})


def test_two_formats_matching_equally_are_refused_by_name(monkeypatch):
    twin = Format(
        name="twin",
        read=REGISTRY["native"].read,
        keys=REGISTRY["native"].keys,
        summary="the same signature as native",
    )
    monkeypatch.setitem(REGISTRY, "twin", twin)
    with pytest.raises(FormatError, match="matches native and twin equally"):
        format_detect(native("x"))


def test_auto_imports_and_says_what_it_chose(project, write_lines, run_import):
    rows = [{"prompt": f"Q{i}?", "chosen": "good", "rejected": "bad"} for i in range(3)]
    result = run_import(write_lines(rows, compress=True), format="auto")

    assert result.ok, result.stderr
    assert result.summary["format"] == "trl" and result.summary["created"] == 3
    assert "format: trl (told from the first record's keys)" in result.stderr


def test_auto_reads_a_json_array_file_whole(project, run_import):
    result = run_import(DATA / "llmbar" / "Natural" / "dataset.json", format="auto")

    assert result.ok, result.stderr
    assert result.summary["format"] == "llmbar" and result.summary["created"] == 20


def test_auto_on_a_broken_first_line_says_so(project, tmp_path, run_import):
    path = tmp_path / "broken.jsonl"
    path.write_text('\n{"prompt": \n' + json.dumps(native("x")) + "\n")

    result = run_import(path, format="auto")

    assert not result.ok
    assert "cannot tell the format: line 2: invalid JSON" in result.error
    assert Comparison.objects.count() == 0


def test_a_utf8_byte_order_mark_is_skipped(project, tmp_path, run_import):
    """Windows tools write one before the first record; it is not part of the data."""
    path = tmp_path / "bom.jsonl"
    lines = [json.dumps(native(f"c{i}", prompt="Größe?")) for i in range(2)]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())

    for fmt in ("native", "auto"):
        Comparison.objects.all().delete()
        result = run_import(path, format=fmt)
        assert result.ok, result.stderr
        assert Comparison.objects.get(external_id="c0").prompt == "Größe?"


def test_a_byte_order_mark_inside_gzip_is_skipped_too():
    import gzip

    from annotator.dataio.formats import open_binary

    packed = gzip.compress(b"\xef\xbb\xbf" + b'{"a": 1}\n')
    assert open_binary(io.BytesIO(packed)).read() == b'{"a": 1}\n'
