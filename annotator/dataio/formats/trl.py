"""`trl`: TRL's preference datasets (prompt / chosen / rejected), standard or conversational,
with an explicit or implicit prompt."""

from collections.abc import Iterator
from typing import Any, BinaryIO

from annotator.dataio.formats.common import (
    Format,
    Parsed,
    ReadOptions,
    json_objects,
    pair_external_id,
    preference_record,
)
from annotator.dataio.records import FieldError


def _message_text(value: Any, name: str, errors: list[FieldError]) -> str | None:
    """A string, or a chat message list rendered as text (one message: its content)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        parts = []
        for index, message in enumerate(value):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("content"), str)
                or not isinstance(message.get("role"), str)
            ):
                errors.append(
                    FieldError(
                        f"{name}[{index}]", 'must be a message {"role": ..., "content": ...}'
                    )
                )
                return None
            parts.append(message)
        if len(parts) == 1:
            return parts[0]["content"]
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in parts)
    if value is None:
        errors.append(FieldError(name, "missing"))
    else:
        errors.append(FieldError(name, "must be a string or a non-empty list of chat messages"))
    return None


def _implicit_prompt(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """Split conversational chosen/rejected sharing their first messages (TRL implicit prompt)."""
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        return None, chosen, rejected
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        return None, chosen, rejected
    return chosen[:shared], chosen[shared:], rejected[shared:]


def read_trl(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        prompt_value, chosen_value, rejected_value = (
            obj.get("prompt"),
            obj.get("chosen"),
            obj.get("rejected"),
        )
        if "prompt" not in obj:
            prompt_value, chosen_value, rejected_value = _implicit_prompt(
                chosen_value, rejected_value
            )
        errors = []
        prompt = _message_text(prompt_value, "prompt", errors)
        chosen = _message_text(chosen_value, "chosen", errors)
        rejected = _message_text(rejected_value, "rejected", errors)
        external_id = obj.get("external_id", obj.get("id"))
        if external_id is not None and not isinstance(external_id, str):
            errors.append(FieldError("external_id", "must be a string"))
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        metadata = {
            k: v
            for k, v in obj.items()
            if k not in {"prompt", "chosen", "rejected", "external_id", "id"}
        }
        if isinstance(obj.get("chosen"), list):
            metadata["trl_format"] = "conversational"
        yield Parsed(
            source,
            number,
            preference_record(
                external_id=external_id or pair_external_id(prompt, chosen, rejected),
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                metadata=metadata,
                options=options,
            ),
        )


def _looks_trl(first: dict) -> bool:
    """An explicit prompt, or conversations (implicit prompt); HH transcripts are hh-rlhf's."""
    return "prompt" in first or isinstance(first.get("chosen"), list)


FORMAT = Format(
    name="trl",
    read=lambda stream, source, options, path: read_trl(stream, source, options),
    keys=frozenset({"chosen", "rejected"}),
    summary=(
        "TRL preference data: prompt / chosen / rejected, standard or conversational, explicit "
        "or implicit prompt"
    ),
    check=_looks_trl,
)
