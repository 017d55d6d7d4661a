"""record_from_native: prompts and responses as text or as conversations, empty responses, and
errors that name the exact place; the content hash of conversations."""

import hashlib
import json

import pytest

from annotator.dataio.records import content_hash, record_from_native
from annotator.models import HumanLabel
from tests.conftest import table_counts
from tests.import_records import native

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
TOOL_RESPONSE = [
    {"role": "assistant", "content": "Let me look it up."},
    {"role": "tool", "content": "Rome", "name": "lookup", "tool_call_id": "call-1"},
    {"role": "assistant", "content": "Rome."},
]


def _errors(obj) -> list[tuple[str, str]]:
    record, errors = record_from_native(obj)
    assert record is None
    return [(e.field, e.problem) for e in errors]


def test_a_conversation_is_stored_as_messages_and_as_flattened_text():
    record, errors = record_from_native(
        native("conv", prompt=CONVERSATION, response_a=TOOL_RESPONSE, response_b="Roma.")
    )

    assert errors == []
    assert record.prompt_messages == CONVERSATION
    assert record.prompt == (
        "System: You are terse.\n\nUser: Capital of France?\n\nAssistant: Paris.\n\n"
        "User: And of Italy?"
    )
    assert record.response_a_messages == TOOL_RESPONSE
    assert record.response_a.startswith("Assistant: Let me look it up.\n\nTool: Rome")
    # Extra keys of a message are kept as they came.
    assert record.response_a_messages[1]["tool_call_id"] == "call-1"
    assert (record.response_b, record.response_b_messages) == ("Roma.", None)


def test_plain_text_has_no_messages():
    record, _ = record_from_native(native("plain"))
    assert (record.prompt_messages, record.response_a_messages, record.response_b_messages) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("empty", ["", "   ", "\n\t", []])
def test_an_empty_or_whitespace_response_is_data(empty):
    record, errors = record_from_native(native("e", response_a=empty))
    assert errors == []
    assert record.response_a.strip() == ""
    assert record.response_a_messages == (None if isinstance(empty, str) else [])


def test_a_whitespace_response_is_stored_as_it_is():
    record, _ = record_from_native(native("w", response_b=" \n "))
    assert record.response_b == " \n "


@pytest.mark.parametrize(
    ("prompt", "field", "problem"),
    [
        ("", "prompt", "must not be empty"),
        ("  \n", "prompt", "must not be empty"),
        ([], "prompt", "must not be empty"),
        ([{"role": "user", "content": "  "}], "prompt", "must not be empty"),
        (None, "prompt", "must not be null"),
        (42, "prompt", "must be a string or a list of messages, not a number"),
        ({"role": "user"}, "prompt", "must be a string or a list of messages, not an object"),
    ],
)
def test_an_empty_or_mistyped_prompt_is_refused(prompt, field, problem):
    assert _errors(native("x", prompt=prompt)) == [(field, problem)]


def test_a_null_response_stays_an_error_in_native():
    assert _errors(native("x", response_a=None)) == [("response_a", "must not be null")]


def test_errors_name_the_message_and_the_key():
    prompt = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "robot", "content": "beep"},
    ]
    response = [{"role": "assistant", "content": ["a", "list"]}, {"role": "user", "content": "x"}]

    assert _errors(native("x", prompt=prompt, response_a=response, response_b=[7])) == [
        ("prompt[2].role", "'robot' is not one of system, user, assistant, tool"),
        ("response_a[0].content", "must be a string, not a list"),
        ("response_a[1].role", "'user' is not one of assistant, tool"),
        ("response_b[0]", "must be a message object, not a number"),
    ]


def test_plain_text_hashes_as_it_always_has():
    def old_hash(*parts: str) -> str:
        digest = hashlib.sha256()
        for part in parts:
            data = part.encode()
            digest.update(len(data).to_bytes(8, "little") + data)
        return digest.hexdigest()

    record, _ = record_from_native(native("h", response_a=""))
    assert record.content_hash == old_hash(record.prompt, "", "Answer two.")


def test_conversations_that_flatten_alike_hash_differently():
    as_text = native("t", prompt="User: Hi\n\nAssistant: Hello\n\nUser: Bye")
    as_turns = native(
        "m",
        prompt=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    )
    as_one_turn = native("o", prompt=[{"role": "user", "content": as_text["prompt"]}])
    records = [record_from_native(obj)[0] for obj in (as_text, as_turns, as_one_turn)]

    assert len({r.prompt for r in records}) == 1
    assert len({r.content_hash for r in records}) == 3


def test_the_hash_of_messages_ignores_key_order():
    one = [{"role": "user", "content": "Hi"}]
    other = [{"content": "Hi", "role": "user"}]
    assert content_hash("Hi", "a", "b", messages=(one, None, None)) == content_hash(
        "Hi", "a", "b", messages=(other, None, None)
    )
    # A one-message response flattens to its content, yet is not the same data as the text.
    listed = [{"role": "assistant", "content": "a"}]
    assert content_hash("Hi", "a", "b") != content_hash(
        "Hi", "a", "b", messages=(None, listed, None)
    )


# --- Values the database cannot hold, and messages that must not mislead (issue 18): through the
# command, since the crashes came from writing them.


def _label(**fields) -> dict:
    return native("c1", human_labels=[{"annotator": "ann", "overall": "A", **fields}])


@pytest.mark.parametrize(
    ("value", "shown"),
    [(2**63, str(2**63)), (2**31, str(2**31)), (10**30, "1e+30"), (0, "0"), (1.5, "1.5")],
)
def test_guidelines_version_outside_its_column_is_a_line_error(
    project, write_lines, run_import, value, shown
):
    # The standard library writes what orjson will not (integers over 64 bits).
    result = run_import(write_lines([native("ok"), json.dumps(_label(guidelines_version=value))]))

    assert not result.ok
    assert result.error_lines == [
        f"{result_path(result)}:2: human_labels[0].guidelines_version: must be an integer "
        f"between 1 and 2147483647, not {shown}"
    ]
    assert table_counts() == (0, 0, 0)


def test_the_largest_guidelines_version_the_column_holds_is_imported(
    project, write_lines, run_import
):
    result = run_import(write_lines([_label(guidelines_version=2**31 - 1)]))

    assert result.ok, result.stderr
    assert HumanLabel.objects.get().guidelines_version == 2**31 - 1


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_created_at_that_overflows_in_utc_is_a_line_error(
    project, write_lines, run_import, stamp
):
    result = run_import(write_lines([_label(created_at=stamp)]))

    assert not result.ok
    assert result.error_lines == [
        f"{result_path(result)}:1: human_labels[0].created_at: {stamp!r} is out of range "
        "(in UTC it falls outside years 1 to 9999)"
    ]
    assert table_counts() == (0, 0, 0)


def test_a_created_at_at_the_edge_of_the_range_is_kept(project, write_lines, run_import):
    result = run_import(write_lines([_label(created_at="9999-12-31T23:59:59+00:00")]))

    assert result.ok, result.stderr
    assert HumanLabel.objects.get().created_at.year == 9999


def _nested(levels: int):
    value: object = "deep"
    for _ in range(levels):
        value = [value]
    return value


def test_metadata_nested_500_levels_is_refused_with_the_depth_limit(
    project, write_lines, run_import
):
    deep = json.dumps(native("deep", metadata={"x": _nested(500)}))

    result = run_import(write_lines([native("ok"), deep]))

    assert not result.ok
    assert result.error_lines == [
        f"{result_path(result)}:2: metadata: nests arrays and objects deeper than 64 levels "
        "(IMPORT_MAX_JSON_DEPTH)"
    ]
    assert table_counts() == (0, 0, 0)


def test_the_json_depth_limit_is_a_setting(project, write_lines, run_import, settings):
    settings.IMPORT_MAX_JSON_DEPTH = 3
    path = write_lines(
        [
            native("ok", metadata={"a": [1]}),
            native("x", metadata={"a": [[1]]}),
            native("y", metadata={"a": [[[1]]]}),
        ]
    )

    result = run_import(path)

    assert result.error_lines == [
        f"{path}:3: metadata: nests arrays and objects deeper than 3 levels (IMPORT_MAX_JSON_DEPTH)"
    ]


@pytest.mark.parametrize("key", ["raw_output", "prompt"])
def test_deep_json_in_other_fields_is_refused_without_a_crash(key, settings):
    settings.IMPORT_MAX_JSON_DEPTH = 64
    if key == "raw_output":
        obj = native("d", lm_labels=[{"judge": "j", "overall": "A", "raw_output": _nested(300)}])
        where = "lm_labels[0].raw_output"
    else:
        obj = native("d", prompt=[{"role": "user", "content": "hi", "extra": _nested(300)}])
        where = "prompt"

    assert _errors(obj) == [
        (where, "nests arrays and objects deeper than 64 levels (IMPORT_MAX_JSON_DEPTH)")
    ]


def test_a_contradiction_names_the_choices_as_labels():
    obj = native("c", lm_labels=[{"judge": "j", "overall": "B", "p_a": 0.9}])

    assert _errors(obj) == [("lm_labels[0].overall", "B contradicts p_a=0.9 (which favours A)")]


def test_a_prompt_or_response_over_the_text_limit_is_refused(settings):
    settings.IMPORT_MAX_TEXT_CHARS = 10

    assert _errors(
        native(
            "t",
            prompt="p" * 11,
            response_a="a",
            response_b=[{"role": "assistant", "content": "b" * 11}],
        )
    ) == [
        ("prompt", "is 11 characters long; the limit is 10 (IMPORT_MAX_TEXT_CHARS)"),
        ("response_b", "is 11 characters long; the limit is 10 (IMPORT_MAX_TEXT_CHARS)"),
    ]
    assert (
        record_from_native(native("t", prompt="p" * 10, response_a="a" * 10, response_b=""))[0]
        is not None
    )


def result_path(result) -> str:
    """The file named in the first error line (the test's own temporary file)."""
    return result.error_lines[0].split(":", 1)[0]
