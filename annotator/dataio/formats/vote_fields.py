"""Field readers the human-vote formats share (multipref, arena, arena-conversations,
mt-bench-human): a chat's turns in the native shape, timestamps, and an annotator who labels one
comparison twice. Each records what it finds wrong as a FieldError and what it accepts but changes
in the read's report, so a reader never raises on bad data."""

from datetime import UTC, datetime
from typing import Any

from annotator.dataio.formats.common import ReadReport
from annotator.dataio.records import FieldError

# ReadReport.counts keys: what was accepted but changed (the import summary's `notes`).
NULL_RESPONSES = "null responses read as empty"
NAIVE_TIMESTAMPS = "timestamps without a time zone read as UTC"
RENAMED_ANNOTATORS = "annotators labelling a comparison twice renamed NAME#2, NAME#3, ..."
# A repeated annotator's later labels are kept under NAME + REPEAT_MARK + n (n = 2, 3, ...).
REPEAT_MARK = "#"


def turns_native(
    users: list[str], side_a: list[str], side_b: list[str], system: str | None = None
) -> tuple[Any, Any, Any]:
    """(prompt, response_a, response_b) of a chat whose i-th answer on each side replies to the
    i-th user turn.

    One turn (and no system message) gives plain strings: the same comparison, and the same
    content hash, as that pair read from any other format. More turns give messages: the prompt
    lists the user turns (after the system message, if any) and each response its side's
    answers, in order. The sides' earlier answers differ, so no one conversation holds both;
    a side's chat is the prompt's user turns and its answers interleaved by index.
    """
    if len(users) == 1 and system is None:
        return users[0], side_a[0], side_b[0]
    prompt = [{"role": "system", "content": system}] if system is not None else []
    prompt += [{"role": "user", "content": text} for text in users]
    return (
        prompt,
        [{"role": "assistant", "content": text} for text in side_a],
        [{"role": "assistant", "content": text} for text in side_b],
    )


class Chat:
    """A side's chat read from OpenAI-style messages: an optional leading system message, then
    user and assistant turns alternating, each user turn answered."""

    def __init__(self, system: str | None, users: list[str], answers: list[str]):
        self.system, self.users, self.answers = system, users, answers


def chat_read(value: Any, name: str, errors: list[FieldError], report: ReadReport) -> Chat | None:
    """The chat in field `name`, or None with what is wrong in `errors` (the place named, e.g.
    `conversation_a[3].role`). An answer whose content is null reads as "" (counted)."""
    if not isinstance(value, list) or not value:
        problem = "missing" if value is None else "must be a non-empty list of messages"
        errors.append(FieldError(name, problem))
        return None
    first = value[0]
    system = None
    if isinstance(first, dict) and first.get("role") == "system":
        system = _content(first, f"{name}[0]", errors)
        if system is None:
            return None
    users: list[str] = []
    answers: list[str] = []
    for index in range(0 if system is None else 1, len(value)):
        message, where = value[index], f"{name}[{index}]"
        expected = "user" if len(users) == len(answers) else "assistant"
        if not isinstance(message, dict):
            errors.append(FieldError(where, 'must be a message {"role": ..., "content": "..."}'))
            return None
        if message.get("role") != expected:
            problem = f"{message.get('role')!r}: expected {expected!r} (turns alternate)"
            errors.append(FieldError(f"{where}.role", problem))
            return None
        if expected == "assistant" and "content" in message and message["content"] is None:
            report.counts[NULL_RESPONSES] += 1
            message = {**message, "content": ""}
        content = _content(message, where, errors)
        if content is None:
            return None
        (users if expected == "user" else answers).append(content)
    if len(answers) < len(users):
        errors.append(FieldError(name, "ends with a user turn that has no answer"))
        return None
    return Chat(system, users, answers)


def _content(message: dict, where: str, errors: list[FieldError]) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        return content
    problem = "missing" if "content" not in message else "must be a string"
    errors.append(FieldError(f"{where}.content", problem))
    return None


def chats_shared_turns(a: Chat, b: Chat, names: tuple[str, str], errors: list[FieldError]) -> bool:
    """Whether the two sides of a battle share their system message and user turns (both models
    answered the same user); what differs first goes to `errors`, named on side b."""
    if a.system != b.system:
        errors.append(FieldError(names[1], f"has a different system message from {names[0]}"))
        return False
    if len(a.users) != len(b.users):
        problem = f"has {len(b.users)} user turns; {names[0]} has {len(a.users)}"
        errors.append(FieldError(names[1], problem))
        return False
    for turn, (mine, theirs) in enumerate(zip(a.users, b.users, strict=True), 1):
        if mine != theirs:
            problem = f"user turn {turn} differs from {names[0]}'s (both sides answer one user)"
            errors.append(FieldError(names[1], problem))
            return False
    return True


def timestamp_iso(
    value: Any, name: str, errors: list[FieldError], report: ReadReport
) -> str | None:
    """An ISO 8601 date-time with a time zone (what the native `created_at` takes) from ISO 8601
    in any form Python reads (`2024-06-14 17:11:00.123`, `...Z`, `...+02:00`) or Unix seconds
    (a number or a numeric string). Without a zone it is read as UTC (counted). Null or "": None."""
    if value is None or value == "":
        return None
    parsed = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _unix(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = _unix(value)
    if parsed is None:
        errors.append(FieldError(name, f"{value!r} is not an ISO 8601 date-time or Unix seconds"))
        return None
    if parsed.tzinfo is None:
        report.counts[NAIVE_TIMESTAMPS] += 1
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _unix(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):  # not a number, NaN, out of range
        return None


def annotator_unique(name: str, seen: set[str], report: ReadReport) -> str:
    """`name`, or `name#2`, `name#3`, ... when this comparison already has a label by that name:
    the native shape takes one label per annotator and comparison, and a second vote is data
    (counted, and the mark is easy to strip on export)."""
    unique, n = name, 1
    while unique in seen:
        n += 1
        unique = f"{name}{REPEAT_MARK}{n}"
    if n > 1:
        report.counts[RENAMED_ANNOTATORS] += 1
    seen.add(unique)
    return unique
