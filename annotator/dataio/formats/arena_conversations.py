"""`arena-conversations`: lmsys/chatbot_arena_conversations battles, each judge's vote a human
label.

Both sides answered the same user, so `conversation_a` and `conversation_b` must share their user
turns (and system message); those make the prompt and each side's assistant turns its response
(vote_fields.turns_native: one turn as plain text, several as messages in order).
"""

from collections.abc import Iterator
from typing import BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, json_objects
from annotator.dataio.formats.vote_fields import (
    chat_read,
    chats_shared_turns,
    timestamp_iso,
    turns_native,
)
from annotator.dataio.records import FieldError

# winner -> the label's overall; the dataset's own value stays in metadata["winner"]
WINNERS = {"model_a": "A", "model_b": "B", "tie": "Tie", "tie (bothbad)": "Tie"}
SOURCE = "lmsys/chatbot_arena_conversations"
_MAPPED = frozenset(
    {"question_id", "model_a", "model_b", "judge", "conversation_a", "conversation_b", "tstamp"}
)


def read_arena_conversations(
    stream: BinaryIO, source: str, options: ReadOptions
) -> Iterator[Parsed]:
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors: list[FieldError] = []
        native = _battle(obj, errors, options)
        yield Parsed(source, number, None, errors) if errors else Parsed(source, number, native)


def _battle(obj: dict, errors: list[FieldError], options: ReadOptions) -> dict:
    """The battle in the native shape (complete only when `errors` stays empty)."""
    side_a = chat_read(obj.get("conversation_a"), "conversation_a", errors, options.report)
    side_b = chat_read(obj.get("conversation_b"), "conversation_b", errors, options.report)
    native: dict = {}
    if side_a and side_b and chats_shared_turns(side_a, side_b, _SIDES, errors):
        native["prompt"], native["response_a"], native["response_b"] = turns_native(
            side_a.users, side_a.answers, side_b.answers, side_a.system
        )
    for key, target in (("question_id", "external_id"), ("judge", "annotator")):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            errors.append(FieldError(key, "missing" if key not in obj else "must be a string"))
        native[target] = value
    winner = obj.get("winner")
    if "winner" not in obj:
        errors.append(FieldError("winner", "missing"))
    elif not isinstance(winner, str) or winner not in WINNERS:
        errors.append(FieldError("winner", f"{winner!r} is not one of {', '.join(WINNERS)}"))
    label = {
        "annotator": native.pop("annotator"),
        "annotator_type": "normal",
        "overall": WINNERS.get(winner) if isinstance(winner, str) else None,
    }
    created = timestamp_iso(obj.get("tstamp"), "tstamp", errors, options.report)
    if created is not None:
        label["created_at"] = created
    native["human_labels"] = [label]
    native.update({k: obj[k] for k in ("model_a", "model_b") if obj.get(k) is not None})
    native["metadata"] = {"source": SOURCE} | {k: v for k, v in obj.items() if k not in _MAPPED}
    return native


_SIDES = ("conversation_a", "conversation_b")


FORMAT = Format(
    name="arena-conversations",
    read=lambda stream, source, options, path: read_arena_conversations(stream, source, options),
    # mt-bench-human's keys and more, so a battle is never read as an MT-Bench judgment.
    keys=frozenset(
        {
            "question_id",
            "model_a",
            "model_b",
            "winner",
            "judge",
            "conversation_a",
            "conversation_b",
            "turn",
            "tstamp",
            "language",
        }
    ),
    summary=(
        "lmsys/chatbot_arena_conversations: shared user turns as the prompt, each side's answers "
        "as its response, the judge's vote a human label"
    ),
    check=None,
)
