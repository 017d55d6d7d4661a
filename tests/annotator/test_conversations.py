"""annotator.conversations: how a list of messages reads as text, hashes and is checked."""

from annotator.conversations import (
    RESPONSE_ROLES,
    ROLES,
    messages_blank,
    messages_canonical,
    messages_flatten,
    messages_problems,
)

THREE_TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4."},
]


def test_one_message_flattens_to_its_content_and_several_to_role_blocks():
    assert messages_flatten([{"role": "user", "content": "Hi **there**"}]) == "Hi **there**"
    assert (
        messages_flatten(THREE_TURNS) == "System: Be brief.\n\nUser: What is 2+2?\n\nAssistant: 4."
    )
    assert messages_flatten([]) == ""


def test_blank_means_no_message_has_visible_content():
    assert messages_blank([])
    assert messages_blank(
        [{"role": "assistant", "content": " \n"}, {"role": "tool", "content": ""}]
    )
    assert not messages_blank(
        [{"role": "assistant", "content": ""}, {"role": "tool", "content": "x"}]
    )


def test_canonical_json_ignores_key_order_but_keeps_every_key():
    one = [{"role": "tool", "content": "42", "tool_call_id": "c1"}]
    other = [{"tool_call_id": "c1", "content": "42", "role": "tool"}]
    assert messages_canonical(one) == messages_canonical(other)
    assert b'"tool_call_id":"c1"' in messages_canonical(one)
    assert messages_canonical(one) != messages_canonical([{"role": "tool", "content": "42"}])


def test_well_formed_messages_have_no_problems_and_extra_keys_are_allowed():
    assert messages_problems(THREE_TURNS, "prompt", ROLES) == []
    tool = [{"role": "tool", "content": "{}", "name": "lookup", "tool_call_id": "t1"}]
    assert messages_problems(tool, "response_a", RESPONSE_ROLES) == []


def test_each_problem_names_the_message_and_key():
    bad = [
        {"role": "user", "content": "ok"},
        "just text",
        {"role": "robot", "content": "beep"},
        {"role": "user", "content": None},
        {"content": "no role"},
        {"role": "user"},
        {"role": "user", "content": "nul \x00"},
    ]
    assert messages_problems(bad, "prompt", ROLES) == [
        ("prompt[1]", "must be a message object, not a string"),
        ("prompt[2].role", "'robot' is not one of system, user, assistant, tool"),
        ("prompt[3].content", "must be a string, not null"),
        ("prompt[4].role", "missing"),
        ("prompt[5].content", "missing"),
        ("prompt[6]", "contains a NUL character (\\u0000), which the database cannot store"),
    ]


def test_a_response_takes_only_assistant_and_tool_turns():
    problems = messages_problems([{"role": "user", "content": "hi"}], "response_b", RESPONSE_ROLES)
    assert problems == [("response_b[0].role", "'user' is not one of assistant, tool")]
