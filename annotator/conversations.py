"""Conversations as data: a prompt or a response given as a list of chat messages.

A message is `{"role": ..., "content": str}` (extra keys such as `name` or `tool_call_id` are kept
as they are). A prompt's turns may have any role of ROLES; a response's only those of
RESPONSE_ROLES. Comparisons store the flattened text (search, hashing, features and every code
path that reads text) beside the list itself; this module is the one place that flattens and
checks messages.
"""

from collections.abc import Sequence
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")
RESPONSE_ROLES = ("assistant", "tool")
NUL_PROBLEM = "contains a NUL character (\\u0000), which the database cannot store"

Message = dict[str, Any]


def role_label(role: str) -> str:
    """`user` -> `User`: how a role is written in flattened text and shown on the page."""
    return role.capitalize()


def messages_flatten(messages: Sequence[Message]) -> str:
    """The text of a conversation: one message is its content; several are `Role: content`
    blocks joined by a blank line (so a reader of the text still sees who said what)."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{role_label(m['role'])}: {m['content']}" for m in messages)


def messages_blank(messages: Sequence[Message]) -> bool:
    """True when no message has any visible content (an empty conversation or response)."""
    return not any(m["content"].strip() for m in messages)


def messages_canonical(messages: Sequence[Message]) -> bytes:
    """The messages as canonical JSON (sorted keys, compact), for hashing: the same
    conversation gives the same bytes whatever key order it was written or stored in."""
    return orjson.dumps(list(messages), option=orjson.OPT_SORT_KEYS)


def messages_problems(value: list, field: str, roles: Sequence[str]) -> list[tuple[str, str]]:
    """What is wrong with the list of messages in `field`, as (place, problem) with the place
    named exactly (`prompt[2].role`); empty when every message is well formed. The caller turns
    them into its own errors (records.FieldError)."""
    problems: list[tuple[str, str]] = []
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            problems.append((where, f"must be a message object, not {type_name(message)}"))
            continue
        role = message.get("role")
        if role is None:
            problems.append((f"{where}.role", "missing" if "role" not in message else "is null"))
        elif not isinstance(role, str) or role not in roles:
            problems.append((f"{where}.role", f"{role!r} is not one of {', '.join(roles)}"))
        content = message.get("content")
        if "content" not in message:
            problems.append((f"{where}.content", "missing"))
        elif not isinstance(content, str):
            problems.append((f"{where}.content", f"must be a string, not {type_name(content)}"))
        if b"\\u0000" in orjson.dumps(message):
            problems.append((where, NUL_PROBLEM))
    return problems


def type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
