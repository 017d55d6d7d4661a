"""`hh-rlhf`: Anthropic HH transcripts."""

from annotator.dataio.formats.hh_rlhf import hh_split
from annotator.models import Comparison
from tests.conftest import DATA
from tests.import_records import chosen_rejected


def test_hh_split_keeps_the_marker_in_the_prompt_and_the_space_in_the_answers():
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant: Sure, here."
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant: Sure, no."
    prompt, good, bad = hh_split(chosen, rejected)
    assert prompt == "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Help me?\n\nAssistant:"
    assert (good, bad) == (" Sure, here.", " Sure, no.")
    assert prompt + good == chosen


def test_hh_rlhf_slice_imports_everychosen_rejected(project, run_import):
    result = run_import(DATA / "hh-rlhf" / "harmless-test-100.jsonl.gz", format="hh-rlhf")

    assert result.ok, result.stderr
    assert result.summary["created"] == 100
    # Line 87 prefers an empty answer (a silent refusal): it is kept, as a whitespace response.
    refusal = [c for c in Comparison.objects.all() if "Erin Burnett" in c.prompt]
    assert len(refusal) == 1
    assert chosen_rejected(refusal[0])[0] == " "
    assert all(c.prompt.endswith("\n\nAssistant:") for c in Comparison.objects.all())
    assert set(Comparison.objects.values_list("metadata__source", flat=True)) == {"hh-rlhf"}


def test_hh_rlhf_line_without_assistant_turn_is_an_error(project, write_lines, run_import):
    path = write_lines([{"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: hi\n\nAssistant: x"}])
    result = run_import(path, format="hh-rlhf")
    assert result.error_lines == [f"{path}:1: chosen: has no '\\n\\nAssistant:' turn"]
