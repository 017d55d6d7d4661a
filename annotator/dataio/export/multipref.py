"""The `multipref` export: AllenAI MultiPref's row shape, one comparison per line with its human
labels as MultiPref annotations; the `multipref` import reads it back to the same labels.

The mapping is the import's (annotator.dataio.formats.multipref), inverted:

- `comparison_id`, `text`, `model_a`, `completion_a`, `model_b`, `completion_b` from the
  comparison (a text stored as a conversation as its list of messages, as the import reads it),
  then its metadata's keys as row fields (`prompt_id`, `source`, `category`,
  `subject_study`, `highest_level_degree` and any other; a key that would overwrite one of these
  fields is left out, and so is the import's store of per-aspect confidences);
- `normal_worker_annotations` / `expert_worker_annotations`: the human labels by annotator type,
  each with `evaluator` (the annotator; the import's `NAME#2` for a second vote of one name back to
  `NAME`), `<aspect>_pref` in MultiPref's five-point vocabulary, `<aspect>_confidence`,
  `<aspect>_checked_reasons`, `<aspect>_own_reason`, `time_spent` and `timestamp`.

MultiPref's scale has no plain "A is better": a preference of unknown strength (from a binary
dataset or an LM-style label) is written as the weaker claim, `X-is-slightly-better`. A label's
one confidence is the overall one; the aspects' come from what the import kept in metadata.
LM labels are not part of MultiPref's rows and are not written.
"""

import re
from collections import defaultdict
from collections.abc import Iterator

import orjson
from django.db.models import Value
from django.db.models.functions import Coalesce, NullIf

from annotator.dataio.export.batches import comparison_batches, labels_in_batch, rows_fetch
from annotator.dataio.export.pairs import MESSAGE_FIELDS
from annotator.dataio.export.python_full import IsoTimestamp
from annotator.dataio.export.snapshot import read_ahead_in_snapshot
from annotator.dataio.formats.multipref import (
    ANNOTATION_LISTS,
    ASPECT_CONFIDENCE_KEY,
    CHECKED_REASON_FIELDS,
    CONFIDENCE_FIELDS,
    CONFIDENCES,
    EVALUATOR_FIELD,
    OWN_REASON_FIELDS,
    PREF_FIELDS,
    PREFS,
    ROW_FIELDS,
    TIME_FIELD,
    TIMESTAMP_FIELD,
    rationale_split,
    reasons_by_aspect,
)
from annotator.dataio.formats.vote_fields import REPEAT_MARK
from annotator.labels import ALL_ASPECTS, ASPECTS, Choice, Strength, confidence_parse, label_parse
from annotator.models import HumanLabel, Project

# (choice, strength) -> MultiPref's preference; unknown strength: the weaker claim.
_PREF = {(str(j.choice), str(j.strength)): text for text in PREFS for j in [label_parse(text)]}
for _side in (Choice.A, Choice.B):
    _PREF[(str(_side), str(Strength.UNKNOWN))] = _PREF[(str(_side), str(Strength.SLIGHTLY))]
# our confidence -> MultiPref's
_CONFIDENCE = {confidence_parse(text): text for text in CONFIDENCES}
_TYPE_LIST = {kind: key for key, kind in ANNOTATION_LISTS.items()}
# The comparison's fields as MultiPref names them, in the order a row is written.
_COMPARISON = ("external_id", "prompt", "model_a", "response_a", "model_b", "response_b")
_ROW_NAMES = {native: row for row, native in ROW_FIELDS.items()}
_RESERVED = frozenset(ROW_FIELDS) | frozenset(ANNOTATION_LISTS) | {ASPECT_CONFIDENCE_KEY}
_REPEATED = re.compile(rf"^(.*){re.escape(REPEAT_MARK)}\d+$")
_LABEL_COLUMNS = (
    "comparison_id",
    "mp_annotator",
    "annotator_type",
    *(f"{aspect}_{part}" for aspect in ALL_ASPECTS for part in ("choice", "strength")),
    "confidence",
    "reasons",
    "rationale",
    "time_spent_s",
    "mp_created",
)


def multipref_lines(project: Project, batch_size: int, comparisons) -> Iterator[bytes]:
    dumps = orjson.dumps
    batches = read_ahead_in_snapshot(
        (rows, _labels(project, rows))
        for rows in comparison_batches(comparisons, batch_size, _select, json_fragments=False)
    )
    for rows, labels in batches:
        out = []
        for pk, *fields, metadata, prompt, a, b in rows:
            metadata = orjson.loads(metadata) if metadata else {}
            row = {_ROW_NAMES[name]: value for name, value in zip(_COMPARISON, fields, strict=True)}
            for name, messages in (("text", prompt), ("completion_a", a), ("completion_b", b)):
                if messages is not None:  # a conversation goes out as its messages
                    row[name] = orjson.loads(messages)
            row.update((k, v) for k, v in metadata.items() if k not in _RESERVED)
            confidences = metadata.get(ASPECT_CONFIDENCE_KEY) or {}
            annotations = _annotations(labels.get(pk, ()), confidences)
            for key in ANNOTATION_LISTS:
                row[key] = annotations.get(key, [])
            out.append(dumps(row))
        if out:
            yield b"\n".join(out) + b"\n"


def _select(comparisons):
    return comparisons.values_list("id", *_COMPARISON, "metadata", *MESSAGE_FIELDS)


def _labels(project: Project, rows: list[tuple]) -> dict[int, list[tuple]]:
    """comparison id -> its human labels (the _LABEL_COLUMNS after the id), in id order."""
    labels = labels_in_batch(HumanLabel, project, rows).annotate(
        mp_annotator=Coalesce(NullIf("annotator_name", Value("")), "annotator__username"),
        mp_created=IsoTimestamp("created_at"),
    )
    grouped: dict[int, list[tuple]] = defaultdict(list)
    for pk, *label in rows_fetch(labels.values_list(*_LABEL_COLUMNS), json_fragments=False):
        grouped[pk].append(tuple(label))
    return grouped


def _annotations(labels, confidences: dict) -> dict[str, list[dict]]:
    """annotation list name -> the labels written as MultiPref annotations, in label order."""
    lists: dict[str, list[dict]] = defaultdict(list)
    seen: set[str] = set()
    for name, kind, *judgements, confidence, reasons, rationale, spent, created in labels:
        evaluator = name
        repeated = _REPEATED.match(name)
        if repeated and repeated.group(1) in seen:  # the import's mark for a second vote
            evaluator = repeated.group(1)
        seen.add(name)
        checked = reasons_by_aspect(orjson.loads(reasons) if reasons else [])
        own = rationale_split(rationale or "")
        aspect_confidence = confidences.get(name) or {}
        annotation: dict = {EVALUATOR_FIELD: evaluator}
        for index, aspect in enumerate(ALL_ASPECTS):
            choice, strength = judgements[2 * index : 2 * index + 2]
            annotation[PREF_FIELDS[aspect]] = None if choice is None else _PREF[(choice, strength)]
            overall = aspect == "overall"
            annotation[CONFIDENCE_FIELDS[aspect]] = (
                _CONFIDENCE.get(confidence) if overall else aspect_confidence.get(aspect)
            )
            # MultiPref asks reasons of the aspects; an overall one only where a label has it.
            if aspect in ASPECTS or checked.get(aspect) or own.get(aspect):
                annotation[CHECKED_REASON_FIELDS[aspect]] = checked.get(aspect, [])
                annotation[OWN_REASON_FIELDS[aspect]] = own.get(aspect, "")
        annotation[TIME_FIELD] = spent
        annotation[TIMESTAMP_FIELD] = created
        lists[_TYPE_LIST[kind]].append(annotation)
    return lists
