"""`hh-rlhf`: Anthropic HH transcripts (chosen / rejected), split at the last shared
Assistant turn."""

from collections.abc import Iterator
from typing import BinaryIO

from annotator.dataio.formats.common import (
    Format,
    Parsed,
    ReadOptions,
    json_objects,
    pair_external_id,
    preference_record,
)
from annotator.dataio.records import FieldError

HH_ASSISTANT = "\n\nAssistant:"


def hh_split(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """Split two HH transcripts at the last `\\n\\nAssistant:` of their shared prefix.

    The prompt keeps the marker and the responses keep their leading space, as TRL's HH
    preprocessing does, so that prompt + response is the original transcript.
    """
    limit = min(len(chosen), len(rejected))
    shared = 0
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0 or cut + len(HH_ASSISTANT) > shared:
        return None
    end = cut + len(HH_ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def read_hh_rlhf(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors = []
        for key in ("chosen", "rejected"):
            value = obj.get(key)
            if value is None:
                errors.append(FieldError(key, "missing"))
            elif not isinstance(value, str):
                errors.append(FieldError(key, "must be a transcript string"))
            elif HH_ASSISTANT not in value:
                errors.append(FieldError(key, "has no '\\n\\nAssistant:' turn"))
        if errors:
            yield Parsed(source, number, None, errors)
            continue
        split = hh_split(obj["chosen"], obj["rejected"])
        if split is None:
            yield Parsed(
                source,
                number,
                None,
                [
                    FieldError(
                        "chosen", "chosen and rejected share no prefix ending in an Assistant turn"
                    )
                ],
            )
            continue
        prompt, chosen, rejected = split
        external_id = obj.get("external_id") or pair_external_id(prompt, chosen, rejected)
        metadata = {k: v for k, v in obj.items() if k not in {"chosen", "rejected", "external_id"}}
        metadata.setdefault("source", "hh-rlhf")
        yield Parsed(
            source,
            number,
            preference_record(
                external_id=external_id,
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                metadata=metadata,
                options=options,
            ),
        )


def _looks_hh(first: dict) -> bool:
    return "prompt" not in first and HH_ASSISTANT in str(first.get("chosen"))


FORMAT = Format(
    name="hh-rlhf",
    read=lambda stream, source, options, path: read_hh_rlhf(stream, source, options),
    keys=frozenset({"chosen", "rejected"}),
    summary="Anthropic HH-RLHF transcripts, split at the last shared Assistant turn",
    check=_looks_hh,
)
