"""`mt-bench-human`: lmsys/mt_bench_human_judgments (split `human`), one row per vote: a judge's
verdict on one turn of two models' answers to an MT-Bench question. The votes on one comparison
become its human labels.

One comparison is (question, the two models in sorted order, turn): a pair voted as (x, y) and as
(y, x) is the same pair of answers, so A is always the model first in sorted order and a vote seen
the other way round has its winner flipped and `shown_order` BA. Turn t compares the first t
exchanges (the judge of turn 2 read turn 1 too): vote_fields.turns_native, plain text for turn 1.

The votes of one comparison are spread over the file and the importer refuses an external id
twice in one file, so this reader groups the whole file before it yields the comparisons (errors
are yielded as found): memory grows with the number of distinct comparisons, which MT-Bench bounds
(80 questions x 15 pairs of its 6 models x 2 turns = 2,400; the released file is 17 MB).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, ReadReport, json_objects
from annotator.dataio.formats.vote_fields import (
    annotator_unique,
    chat_read,
    chats_shared_turns,
    timestamp_iso,
    turns_native,
)
from annotator.dataio.records import FieldError

SOURCE = "lmsys/mt_bench_human_judgments"
# winner -> overall, as the judge saw the pair; "tie (...)" variants are ties too (FastChat's
# agreement code reads any tie the same)
WINNERS = {"model_a": "A", "model_b": "B", "tie": "Tie"}
FLIPPED = {"A": "B", "B": "A", "Tie": "Tie"}
# Every judge of the human split is an expert: graduate students (`expert_*`) or the paper's
# authors (`author_*`); the name keeps which.
ANNOTATOR_TYPE = "expert"
ROW_FIELDS = frozenset(
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
    }
)
UNKNOWN_FIELD = "fields not kept: {}"  # ReadReport.counts key per unknown field name


def comparison_id(question_id: Any, model_a: str, model_b: str, turn: int) -> tuple[str, bool]:
    """(external id, whether the vote's model_a is the comparison's B)."""
    low, high = sorted((model_a, model_b))
    return f"{question_id}/{low}/{high}/turn-{turn}", model_a != low


@dataclass(slots=True)
class _Group:
    line: int
    content: dict
    labels: list[dict] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def read_mt_bench_human(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    groups: dict[str, _Group] = {}
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors: list[FieldError] = []
        vote = _vote(obj, errors, options.report)
        if vote is None:
            yield Parsed(source, number, None, errors)
            continue
        key, content, label = vote
        group = groups.setdefault(key, _Group(number, content))
        if group.content != content:
            differs = f"differs from line {group.line}'s answers to the same comparison ({key})"
            yield Parsed(source, number, None, [FieldError("conversation_a", differs)])
            continue
        label["annotator"] = annotator_unique(label["annotator"], group.seen, options.report)
        group.labels.append(label)
    for key, group in groups.items():
        native = {"external_id": key, **group.content, "human_labels": group.labels}
        yield Parsed(source, group.line, native)


def _vote(obj: dict, errors: list[FieldError], report: ReadReport) -> tuple | None:
    """(external id, the comparison's content in canonical order, the label), or None."""
    question_id, turn = obj.get("question_id"), obj.get("turn")
    if isinstance(question_id, bool) or not isinstance(question_id, int | str) or question_id == "":
        errors.append(FieldError("question_id", _absent(obj, "question_id", "an id")))
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
        errors.append(FieldError("turn", _absent(obj, "turn", "a turn number (1, 2, ...)")))
    models = [obj.get(key) for key in ("model_a", "model_b")]
    for key, model in zip(("model_a", "model_b"), models, strict=True):
        if not isinstance(model, str) or not model.strip():
            errors.append(FieldError(key, _absent(obj, key, "a model name")))
    label = _label(obj, errors, report)
    sides = _sides(obj, turn, errors, report)
    if errors:
        return None
    key, swapped = comparison_id(question_id, models[0], models[1], turn)
    prompt, first, second = sides
    if swapped:
        first, second = second, first
        models.reverse()
        label["overall"] = FLIPPED[label["overall"]]
    label["shown_order"] = "BA" if swapped else "AB"
    content = {
        "prompt": prompt,
        "response_a": first,
        "response_b": second,
        "model_a": models[0],
        "model_b": models[1],
        "metadata": {"source": SOURCE, "question_id": question_id, "turn": turn},
    }
    return key, content, label


def _absent(obj: dict, key: str, expected: str) -> str:
    if key not in obj:
        return "missing"
    return "must not be null" if obj[key] is None else f"{obj[key]!r} is not {expected}"


def _label(obj: dict, errors: list[FieldError], report: ReadReport) -> dict:
    """The vote as a label in the judge's own A/B order."""
    judge, winner = obj.get("judge"), obj.get("winner")
    if not isinstance(judge, str) or not judge.strip():
        # the gpt4_pair split's judges are lists such as ["gpt-4", "pair-v2"]
        errors.append(FieldError("judge", _absent(obj, "judge", "a human judge's id")))
    overall = None
    if isinstance(winner, str):
        overall = WINNERS.get(winner) or ("Tie" if winner.startswith("tie (") else None)
    if overall is None:
        allowed = f"one of {', '.join(WINNERS)} or tie (...)"
        errors.append(FieldError("winner", _absent(obj, "winner", allowed)))
    label = {"annotator": judge, "annotator_type": ANNOTATOR_TYPE, "overall": overall}
    created = timestamp_iso(obj.get("tstamp"), "tstamp", errors, report)
    if created is not None:
        label["created_at"] = created
    for key in obj.keys() - ROW_FIELDS:
        report.counts[UNKNOWN_FIELD.format(key)] += 1
    return label


def _sides(obj: dict, turn: Any, errors: list[FieldError], report: ReadReport) -> tuple | None:
    """(prompt, response_a, response_b) of the first `turn` exchanges, in the vote's order."""
    names = ("conversation_a", "conversation_b")
    side_a = chat_read(obj.get(names[0]), names[0], errors, report)
    side_b = chat_read(obj.get(names[1]), names[1], errors, report)
    if not (side_a and side_b and chats_shared_turns(side_a, side_b, names, errors)):
        return None
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        return None  # refused above
    if turn > len(side_a.users):
        problem = f"is {turn} but the conversations have {len(side_a.users)} user turns"
        errors.append(FieldError("turn", problem))
        return None
    return turns_native(
        side_a.users[:turn], side_a.answers[:turn], side_b.answers[:turn], side_a.system
    )


def _looks_mt_bench(first: dict) -> bool:
    """MT-Bench question ids are numbers (chatbot_arena_conversations' are hex strings)."""
    return isinstance(first.get("question_id"), int)


FORMAT = Format(
    name="mt-bench-human",
    read=lambda stream, source, options, path: read_mt_bench_human(stream, source, options),
    keys=ROW_FIELDS - {"tstamp"},
    summary=(
        "lmsys/mt_bench_human_judgments (human split): each expert's vote a human label of one "
        "comparison per question, model pair and turn"
    ),
    check=_looks_mt_bench,
)
