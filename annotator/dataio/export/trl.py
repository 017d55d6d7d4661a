"""The `trl` export: preference pairs for TRL's reward and DPO trainers.

Each line has `prompt`, `chosen`, `rejected`, `external_id`, `label_source`, `strength` and
`agreement` (pairs.py: which label decides, `source`, and what agreement means), `margin` with
`margin=True` (pairs.MARGINS: clearly 1.0, slightly 0.5, unknown 0.0; RewardTrainer reads it).

Conversational (TRL's conversational preference shape), `prompt` is a list of messages and
`chosen` / `rejected` the chosen and rejected response's: the stored messages where the
comparison has them, else the text as one user message (the prompt) or one assistant message (a
response).
"""

from collections.abc import Iterator

import orjson

from annotator.dataio.export.confidence import ExportConfidence, posterior_dict
from annotator.dataio.export.pairs import MARGINS, MESSAGE_FIELDS, Pair, pair_batches
from annotator.final_labels import FinalLabel
from annotator.labels import Choice
from annotator.models import Project


def trl_lines(
    project: Project,
    batch_size: int,
    comparisons,
    confidence: ExportConfidence | None,
    *,
    source: str = "final",
    margin: bool = False,
    conversational: bool = False,
) -> Iterator[bytes]:
    dumps = orjson.dumps
    fields = MESSAGE_FIELDS if conversational else ()
    for pairs in pair_batches(project, batch_size, comparisons, source=source, fields=fields):
        out = []
        posteriors = confidence.batch(pairs) if confidence else {}
        for pair in pairs:
            pk, ext, prompt, a, b, extra, final, agreement, _, _ = pair
            if conversational:
                prompt, chosen, rejected = conversation(pair, messages_parse(extra))
            else:
                chosen, rejected = (a, b) if final.choice == Choice.A else (b, a)
            line = {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "external_id": ext,
                "label_source": final.source,
                "strength": final.strength,
                "agreement": agreement,
            }
            if margin:
                line["margin"] = MARGINS[final.strength]
            if confidence:
                posterior = posteriors.get(pk)
                value = label_confidence(final, posterior)
                if not confidence.keeps(value):
                    continue
                line["posterior"] = posterior_dict(posterior)
                line["label_confidence"] = value if value is None else round(value, 4)
            out.append(dumps(line))
        if out:
            yield b"\n".join(out) + b"\n"


def messages_parse(texts: tuple) -> tuple[list[dict] | None, ...]:
    """The stored messages of the prompt, A and B (JSON text or None), parsed."""
    return tuple(None if text is None else orjson.loads(text) for text in texts)


def conversation(pair: Pair, messages: tuple) -> tuple[list[dict], list[dict], list[dict]]:
    """(prompt, chosen, rejected) as lists of messages, from `messages` (messages_parse: the
    prompt's, A's and B's, None where the text is plain)."""
    prompt, a, b = messages
    if prompt is None:
        prompt = [{"role": "user", "content": pair.prompt}]
    if a is None:
        a = [{"role": "assistant", "content": pair.response_a}]
    if b is None:
        b = [{"role": "assistant", "content": pair.response_b}]
    return (prompt, a, b) if pair.label.choice == Choice.A else (prompt, b, a)


def label_confidence(final: FinalLabel, posterior: list[float] | None) -> float | None:
    """The posterior of the exported preference; for an LM pair the judge's own probability."""
    if final.source == "human":
        return posterior[0 if final.choice == Choice.A else 1] if posterior else None
    if final.p_a is None:
        return None
    return final.p_a if final.choice == Choice.A else 1 - final.p_a
