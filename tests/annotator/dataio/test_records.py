"""record_from_native: prompts and responses as text or as conversations, empty responses, and
errors that name the exact place; the content hash of conversations."""

import hashlib

import pytest

from annotator.dataio.records import content_hash, record_from_native
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
