"""`multipref`: AllenAI's MultiPref rows, one comparison each with its crowd workers' and domain
experts' annotations as human labels.

The field mapping is kept in the constants below so that an export can invert it: `PREFS` and
`CONFIDENCES` are MultiPref's exact vocabularies, `*_FIELDS` name an annotation's fields per aspect,
`aspect_reasons` / `reasons_by_aspect` and `rationale_join` / `rationale_split` map checked and
own reasons both ways, and the per-aspect confidences (one confidence per label in the native
shape: the overall one) are kept in the comparison's metadata under `ASPECT_CONFIDENCE_KEY`.
"""

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from annotator.dataio.formats.common import Format, Parsed, ReadOptions, ReadReport, json_objects
from annotator.dataio.formats.vote_fields import annotator_unique, timestamp_iso
from annotator.dataio.records import FieldError
from annotator.labels import ALL_ASPECTS, REASONS

# The five-point scale, exactly as MultiPref writes it (the native `A`/`B` or lower case are not
# MultiPref's and are refused, so a file from elsewhere is not read as this one).
PREFS = (
    "A-is-clearly-better",
    "A-is-slightly-better",
    "Tie",
    "B-is-slightly-better",
    "B-is-clearly-better",
)
CONFIDENCES = ("absolutely-confident", "fairly-confident", "not-confident")
# annotation list -> the labels' annotator_type
ANNOTATION_LISTS = {"normal_worker_annotations": "normal", "expert_worker_annotations": "expert"}
EVALUATOR_FIELD = "evaluator"
PREF_FIELDS = {aspect: f"{aspect}_pref" for aspect in ALL_ASPECTS}
CONFIDENCE_FIELDS = {aspect: f"{aspect}_confidence" for aspect in ALL_ASPECTS}
CHECKED_REASON_FIELDS = {aspect: f"{aspect}_checked_reasons" for aspect in ALL_ASPECTS}
OWN_REASON_FIELDS = {aspect: f"{aspect}_own_reason" for aspect in ALL_ASPECTS}
TIME_FIELD, TIMESTAMP_FIELD = "time_spent", "timestamp"
# row field -> native field
ROW_FIELDS = {
    "comparison_id": "external_id",
    "text": "prompt",
    "completion_a": "response_a",
    "completion_b": "response_b",
    "model_a": "model_a",
    "model_b": "model_b",
}
METADATA_FIELDS = ("source", "category", "subject_study", "highest_level_degree", "prompt_id")
# metadata[ASPECT_CONFIDENCE_KEY][annotator][aspect] = MultiPref's confidence string
ASPECT_CONFIDENCE_KEY = "multipref_aspect_confidence"
# A checked reason outside labels.REASONS[aspect] is kept as "aspect:reason".
REASON_QUALIFIER = ":"
RATIONALE_SEPARATOR = "\n\n"


def aspect_reasons(aspect: str, checked: list[str]) -> list[str]:
    """Checked reasons in the native shape: a reason of this aspect's vocabulary
    (labels.REASONS) as it is, as the platform's own labels store it; any other qualified as
    `aspect:reason`, so that its aspect is not lost."""
    known = REASONS.get(aspect, ())
    return [r if r in known else f"{aspect}{REASON_QUALIFIER}{r}" for r in checked]


def reasons_by_aspect(reasons: list[str]) -> dict[str, list[str]]:
    """The inverse of `aspect_reasons` over a label's reasons: aspect -> checked reasons."""
    grouped: dict[str, list[str]] = {}
    for reason in reasons:
        aspect, mark, rest = reason.partition(REASON_QUALIFIER)
        if mark and aspect in ALL_ASPECTS:
            grouped.setdefault(aspect, []).append(rest)
            continue
        owner = next((a for a, known in REASONS.items() if reason in known), "overall")
        grouped.setdefault(owner, []).append(reason)
    return grouped


def rationale_join(own: dict[str, str]) -> str:
    """Own reasons as one rationale: `aspect: text` blocks, blank-line separated, blanks left
    out (`overall`, then the aspects, in ALL_ASPECTS order)."""
    return RATIONALE_SEPARATOR.join(
        f"{aspect}: {own[aspect]}" for aspect in ALL_ASPECTS if (own.get(aspect) or "").strip()
    )


_RATIONALE_BLOCK = re.compile(rf"(?:^|{RATIONALE_SEPARATOR})({'|'.join(ALL_ASPECTS)}): ")


def rationale_split(rationale: str) -> dict[str, str]:
    """The inverse of `rationale_join` (a rationale not written by it is all `overall`)."""
    starts = list(_RATIONALE_BLOCK.finditer(rationale))
    if not starts or starts[0].start() != 0:
        return {"overall": rationale} if rationale else {}
    ends = [m.start() for m in starts[1:]] + [len(rationale)]
    return {m.group(1): rationale[m.end() : end] for m, end in zip(starts, ends, strict=True)}


def read_multipref(stream: BinaryIO, source: str, options: ReadOptions) -> Iterator[Parsed]:
    for number, obj, problem in json_objects(stream, source):
        if problem is not None:
            yield problem
            continue
        errors: list[FieldError] = []
        native = _comparison(obj, errors)
        native["human_labels"], confidences = _labels(obj, errors, options.report)
        if confidences:
            native["metadata"][ASPECT_CONFIDENCE_KEY] = confidences
        yield Parsed(source, number, None, errors) if errors else Parsed(source, number, native)


_TEXT_FIELDS = ("text", "completion_a", "completion_b")


def _comparison(obj: dict, errors: list[FieldError]) -> dict:
    """The row's comparison in the native shape (no labels); its text fields checked here so
    that errors name MultiPref's fields."""
    native: dict[str, Any] = {}
    for key, target in ROW_FIELDS.items():
        value = obj.get(key)
        if key == "comparison_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None and key.startswith("model_"):
            continue
        if isinstance(value, list) and key in _TEXT_FIELDS:
            # MultiPref's texts are single turns; a MultiPref-shaped file of conversations keeps
            # its messages (checked as the native prompt and responses are).
            native[target] = value
            continue
        if not isinstance(value, str):
            errors.append(FieldError(key, "missing" if key not in obj else "must be a string"))
        elif key in ("comparison_id", "text") and not value.strip():
            errors.append(FieldError(key, "must not be empty"))
        native[target] = value
    # METADATA_FIELDS and any other field a row has (a later release's columns are kept too).
    mapped = ROW_FIELDS.keys() | ANNOTATION_LISTS.keys()
    native["metadata"] = {k: v for k, v in obj.items() if k not in mapped}
    return native


def _labels(
    obj: dict, errors: list[FieldError], report: ReadReport
) -> tuple[list[dict], dict[str, dict[str, str]]]:
    """Every annotation of the row as a human label, and the per-aspect confidences by label."""
    labels: list[dict] = []
    confidences: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for key, annotator_type in ANNOTATION_LISTS.items():
        annotations = obj.get(key)
        if not isinstance(annotations, list):
            problem = (
                "missing (a MultiPref row has both annotation lists; an empty list is accepted)"
                if key not in obj
                else "must be a list of annotations"
            )
            errors.append(FieldError(key, problem))
            continue
        for index, annotation in enumerate(annotations):
            where = f"{key}[{index}]"
            if not isinstance(annotation, dict):
                errors.append(FieldError(where, "must be an annotation object"))
                continue
            label, aspect_confidence = _label(annotation, where, annotator_type, errors, report)
            if label is None:
                continue
            label["annotator"] = annotator_unique(label["annotator"], seen, report)
            labels.append(label)
            if aspect_confidence:
                confidences[label["annotator"]] = aspect_confidence
    return labels, confidences


def _label(
    annotation: dict, where: str, annotator_type: str, errors: list[FieldError], report: ReadReport
) -> tuple[dict | None, dict[str, str]]:
    """One annotation as a native human label (None when wrong), and its aspects' confidences."""
    before = len(errors)
    evaluator = annotation.get(EVALUATOR_FIELD)
    if not isinstance(evaluator, str) or not evaluator.strip():
        errors.append(FieldError(f"{where}.{EVALUATOR_FIELD}", "must be a non-empty string"))
    label: dict[str, Any] = {"annotator": evaluator, "annotator_type": annotator_type}
    overall_field = PREF_FIELDS["overall"]
    if annotation.get(overall_field) in (None, ""):
        problem = "missing" if overall_field not in annotation else "must not be empty"
        errors.append(FieldError(f"{where}.{overall_field}", problem))
    for aspect in ALL_ASPECTS:
        pref = _vocabulary(annotation, PREF_FIELDS[aspect], PREFS, where, errors)
        if pref is not None:
            label[aspect] = pref
    aspect_confidence = {}
    for aspect in ALL_ASPECTS:
        confidence = _vocabulary(annotation, CONFIDENCE_FIELDS[aspect], CONFIDENCES, where, errors)
        if confidence is not None and aspect == "overall":
            label["confidence"] = confidence
        elif confidence is not None:
            aspect_confidence[aspect] = confidence
    label["reasons"], own = _reasons(annotation, where, errors)
    label["rationale"] = rationale_join(own)
    label.update(_time(annotation, where, errors, report))
    return (label if len(errors) == before else None), aspect_confidence


def _vocabulary(
    annotation: dict, key: str, allowed: tuple[str, ...], where: str, errors: list[FieldError]
) -> str | None:
    """The value of `key` when it is one of `allowed`; None when absent, null or "" (an aspect
    left unanswered); anything else is an error naming the allowed values."""
    value = annotation.get(key)
    if value is None or value == "":
        return None
    if value not in allowed:
        errors.append(FieldError(f"{where}.{key}", f"{value!r} is not one of {', '.join(allowed)}"))
        return None
    return value


def _reasons(
    annotation: dict, where: str, errors: list[FieldError]
) -> tuple[list[str], dict[str, str]]:
    """(checked reasons of every aspect in the native shape, own reason per aspect)."""
    reasons: list[str] = []
    own: dict[str, str] = {}
    for aspect in ALL_ASPECTS:
        checked = annotation.get(CHECKED_REASON_FIELDS[aspect])
        if checked is not None:
            if not isinstance(checked, list) or not all(isinstance(r, str) for r in checked):
                field = f"{where}.{CHECKED_REASON_FIELDS[aspect]}"
                errors.append(FieldError(field, "must be a list of strings"))
            else:
                reasons += aspect_reasons(aspect, checked)
        text = annotation.get(OWN_REASON_FIELDS[aspect])
        if isinstance(text, str):
            own[aspect] = text
        elif text is not None:
            errors.append(FieldError(f"{where}.{OWN_REASON_FIELDS[aspect]}", "must be a string"))
    return reasons, own


def _time(annotation: dict, where: str, errors: list[FieldError], report: ReadReport) -> dict:
    """time_spent_s and created_at from `time_spent` (seconds) and `timestamp`."""
    out: dict[str, Any] = {}
    spent = annotation.get(TIME_FIELD)
    if spent is not None:
        if isinstance(spent, bool) or not isinstance(spent, int | float) or not spent >= 0:
            errors.append(FieldError(f"{where}.{TIME_FIELD}", f"{spent!r} is not seconds (>= 0)"))
        else:
            out["time_spent_s"] = spent
    created = timestamp_iso(
        annotation.get(TIMESTAMP_FIELD), f"{where}.{TIMESTAMP_FIELD}", errors, report
    )
    if created is not None:
        out["created_at"] = created
    return out


FORMAT = Format(
    name="multipref",
    read=lambda stream, source, options, path: read_multipref(stream, source, options),
    keys=frozenset({"comparison_id", "text", "completion_a", "completion_b"}),
    summary=(
        "AllenAI MultiPref rows: each crowd worker's and expert's annotation a human label, "
        "with aspects, confidence, reasons, time and timestamp"
    ),
    check=None,
)
