"""What the judge reads: conversations as transcripts that keep every role, empty responses said
outright, both shown orders of a comparison."""

from scoring.judging.prompts import (
    EMPTY_RESPONSE,
    PromptSpec,
    judge_inputs,
    judge_messages,
    judge_text,
)

CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
TOOL_TURNS = [
    {"role": "assistant", "content": "Looking it up."},
    {"role": "tool", "content": "Rome", "name": "lookup"},
    {"role": "assistant", "content": "Rome."},
]


def test_a_conversation_prompt_is_a_transcript_with_every_role():
    assert judge_text("flattened", CONVERSATION) == (
        "### System:\nAnswer in one word.\n\n### User:\nCapital of France?\n\n"
        "### Assistant:\nParis.\n\n### User:\nAnd of Italy?"
    )


def test_a_response_with_tool_turns_keeps_them_and_their_names():
    assert judge_text("flattened", TOOL_TURNS, response=True) == (
        "### Assistant:\nLooking it up.\n\n### Tool (lookup):\nRome\n\n### Assistant:\nRome."
    )


def test_one_turn_of_the_expected_role_reads_as_plain_text():
    assert judge_text("x", [{"role": "user", "content": "Hi?"}]) == "Hi?"
    assert judge_text("x", [{"role": "assistant", "content": "Hello."}], response=True) == "Hello."
    # A lone system turn is not a plain prompt: its role stays visible.
    assert judge_text("x", [{"role": "system", "content": "Be nice."}]) == "### System:\nBe nice."
    assert judge_text("plain text", None) == "plain text"


def test_empty_responses_are_said_outright():
    assert judge_text("", None, response=True) == EMPTY_RESPONSE
    assert judge_text(" \n\t", None, response=True) == EMPTY_RESPONSE
    assert judge_text("", [], response=True) == EMPTY_RESPONSE
    assert judge_text("Assistant: ", [{"role": "assistant", "content": " "}], response=True) == (
        EMPTY_RESPONSE
    )


def test_both_orders_of_a_conversation_with_an_empty_response():
    ab, ba = judge_inputs(7, ("flat", "", "Rome."), (CONVERSATION, None, TOOL_TURNS))

    assert (ab.key, ba.key) == ((7, "AB"), (7, "BA"))
    assert ab.prompt == ba.prompt and ab.prompt.startswith("### System:")
    assert (ab.first, ab.second) == (ba.second, ba.first)
    assert ab.first == EMPTY_RESPONSE and ab.second.startswith("### Assistant:")
    system, user = judge_messages(PromptSpec(), ab)
    assert (system["role"], user["role"]) == ("system", "user")
    assert "[User Prompt]\n### System:\nAnswer in one word." in user["content"]
    assert f"[Response A]\n{EMPTY_RESPONSE}\n[End of Response A]" in user["content"]
    assert "### Tool (lookup):\nRome" in user["content"]


def test_plain_comparisons_read_as_they_always_have():
    ab, ba = judge_inputs(1, ("Q?", "yes", "no"))
    assert (ab.prompt, ab.first, ab.second) == ("Q?", "yes", "no")
    assert (ba.first, ba.second) == ("no", "yes")
