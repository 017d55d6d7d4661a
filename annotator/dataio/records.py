"""Validation of one comparison in the native format into typed records.

Every format reader turns its input into the native shape (a dict), and `record_from_native`
checks it. Problems are collected per field (a line may have several), never raised one at a time,
so that an import can list every error of a file.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db.backends.base.operations import BaseDatabaseOperations

from annotator.conversations import (
    NUL_PROBLEM,
    RESPONSE_ROLES,
    ROLES,
    Message,
    messages_blank,
    messages_canonical,
    messages_flatten,
    messages_problems,
    type_name,
)
from annotator.labels import (
    ASPECTS,
    AnnotatorType,
    Choice,
    Judgement,
    LabelSource,
    ShownOrder,
    confidence_parse,
    label_parse,
)
from annotator.models import HumanLabel, Route

MAX_EXTERNAL_ID = 255
# TextChoices.values builds a new list on every access: read once, checked per field.
_ROUTES = tuple(Route.values)
_SOURCES = tuple(LabelSource.values)
_ANNOTATOR_TYPES = tuple(AnnotatorType.values)
_SHOWN_ORDERS = tuple(ShownOrder.values)
MAX_NAME = 200


def column_range(model, name: str) -> tuple[int, int]:
    """The values an integer column holds: Django's portable range for the field's type (what
    PostgreSQL enforces; SQLite would store more, but the data must move between them)."""
    internal = model._meta.get_field(name).get_internal_type()
    return BaseDatabaseOperations.integer_field_ranges[internal]


_GUIDELINES_RANGE = (1, column_range(HumanLabel, "guidelines_version")[1])


def json_too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value` (a scalar: 0, `[]`:
    1). Walked with a stack, not recursion, so any depth the JSON parser allows is safe."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def depth_problem(limit: int) -> str:
    return f"nests arrays and objects deeper than {limit} levels (IMPORT_MAX_JSON_DEPTH)"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    problem: str


@dataclass(frozen=True, slots=True)
class LineError:
    """An error located in an input file, printed as `FILE:LINE: field: problem`."""

    source: str
    line: int | str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.problem}"


@dataclass(slots=True)
class HumanLabelRecord:
    annotator: str
    annotator_type: str
    judgements: dict[str, Judgement | None]
    confidence: str | None
    reasons: list[str]
    rationale: str
    time_spent_s: float | None
    shown_order: str | None
    guidelines_version: int | None
    created_at: datetime | None


@dataclass(slots=True)
class LMLabelRecord:
    judge: str
    judge_version: str
    judgement: Judgement
    p_a: float | None
    p_a_ab: float | None
    p_a_ba: float | None
    position_consistent: bool | None
    rationale: str
    raw_output: Any
    truncated: bool
    created_at: datetime | None


@dataclass(slots=True)
class ComparisonRecord:
    """`prompt`, `response_a`, `response_b` are text (flattened when given as messages);
    the `*_messages` fields hold the lists of messages when the input gave lists."""

    external_id: str
    prompt: str
    response_a: str
    response_b: str
    model_a: str = ""
    model_b: str = ""
    metadata: dict = field(default_factory=dict)
    route: str | None = None
    gold: str | None = None
    human_labels: list[HumanLabelRecord] = field(default_factory=list)
    lm_labels: list[LMLabelRecord] = field(default_factory=list)
    prompt_messages: list[Message] | None = None
    response_a_messages: list[Message] | None = None
    response_b_messages: list[Message] | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(
            self.prompt,
            self.response_a,
            self.response_b,
            messages=(self.prompt_messages, self.response_a_messages, self.response_b_messages),
        )


# Set in the length prefix of a part given as messages: no text is 2**63 bytes long, so a list
# never hashes like a string, even one that holds the list's own JSON.
_MESSAGES_FLAG = 1 << 63


def content_hash(
    prompt: str,
    response_a: str,
    response_b: str,
    *,
    messages: tuple[list[Message] | None, ...] = (None, None, None),
) -> str:
    """SHA-256 of the three texts; a part given as messages (the same place in `messages`)
    is hashed as its canonical JSON instead, so conversations that flatten alike differ. Plain
    texts hash as they always have (stored hashes stay valid)."""
    digest = hashlib.sha256()
    for part, listed in zip((prompt, response_a, response_b), messages, strict=True):
        if listed is None:
            data, flag = part.encode("utf-8", "surrogatepass"), 0
        else:
            data, flag = messages_canonical(listed), _MESSAGES_FLAG
        # Length-prefixed, so that moving text between fields changes the hash.
        digest.update((len(data) | flag).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class _Checker:
    """Reads typed fields out of a dict, recording problems instead of raising."""

    def __init__(self, obj: dict, prefix: str, errors: list[FieldError]):
        self.obj = obj
        self.prefix = prefix
        self.errors = errors

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str) -> None:
        self.errors.append(FieldError(self.name(key), problem))

    def unknown_keys(self, allowed: frozenset[str]) -> None:
        extra = sorted(set(self.obj) - allowed)
        for key in extra:
            # An empty or unprintable key is shown quoted, so that the error still names it.
            shown = key if key.strip() and key.isprintable() else orjson.dumps(key).decode()
            self.fail(shown, f"unknown field; allowed fields are {', '.join(sorted(allowed))}")

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        empty_ok: bool = False,
        max_length: int | None = None,
    ) -> str:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.fail(key, "missing" if key not in self.obj else "must not be null")
            return ""
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {type_name(value)}")
            return ""
        if required and not empty_ok and not value.strip():
            self.fail(key, "must not be empty")
        if "\x00" in value:
            self.fail(key, NUL_PROBLEM)
        if max_length is not None and len(value) > max_length:
            self.fail(key, _too_long(len(value), max_length))
        return value

    def conversation(self, key: str, *, response: bool) -> tuple[str, list[Message] | None]:
        """A prompt or a response: a string, or a list of messages (a response's roles are
        assistant and tool). Returns (its text, flattened for a list; the list or None). A
        response may be empty ("", whitespace or []); a prompt's text must not be blank."""
        value = self.obj.get(key)
        limit = settings.IMPORT_MAX_TEXT_CHARS
        if not isinstance(value, list):
            if value is not None and not isinstance(value, str):
                self.fail(key, f"must be a string or a list of messages, not {type_name(value)}")
                return "", None
            text = self.text(key, required=True, empty_ok=response)
            if len(text) > limit:
                self.fail(key, f"{_too_long(len(text), limit)} (IMPORT_MAX_TEXT_CHARS)")
                return "", None
            return text, None
        if not self.shallow(key, value):
            return "", None
        problems = messages_problems(value, self.name(key), RESPONSE_ROLES if response else ROLES)
        for place, problem in problems:
            self.errors.append(FieldError(place, problem))
        if problems:
            return "", None
        if not response and messages_blank(value):
            self.fail(key, "must not be empty")
        text = messages_flatten(value)
        if len(text) > limit:
            self.fail(key, f"{_too_long(len(text), limit)} (IMPORT_MAX_TEXT_CHARS)")
            return "", None
        return text, value

    def shallow(self, key: str, value: Any) -> bool:
        """Whether `value` nests no deeper than IMPORT_MAX_JSON_DEPTH (else a problem of `key`)."""
        limit = settings.IMPORT_MAX_JSON_DEPTH
        if json_too_deep(value, limit):
            self.fail(key, depth_problem(limit))
            return False
        return True

    def number(self, key: str, *, low: float | None = None, high: float | None = None):
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, not {type_name(value)}")
            return None
        if value != value:  # NaN
            self.fail(key, "must be a number, not NaN")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(key, f"{value} is outside [{low}, {high}]")
            return None
        return float(value)

    def integer(self, key: str, *, low: int, high: int) -> int | None:
        """An integer in [low, high] (the column's range). A number too large for a 64-bit
        integer arrives as a float from the JSON parser: it is out of range, not "a number"."""
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be an integer, not {type_name(value)}")
            return None
        if isinstance(value, float) or not low <= value <= high:
            self.fail(key, f"must be an integer between {low} and {high}, not {value!r}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.fail(key, f"must be true, false or null, not {type_name(value)}")
        return None

    def choice(
        self, key: str, allowed: tuple[str, ...], *, default: str | None = None
    ) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
            return default
        return value

    def label(self, key: str, *, required: bool = False) -> Judgement | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                self.fail(key, "missing" if key not in self.obj else "must not be null")
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be a label string, not {type_name(value)}")
            return None
        try:
            return label_parse(value)
        except ValueError as exc:
            self.fail(key, str(exc))
            return None

    def timestamp(self, key: str) -> datetime | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, f"must be an ISO 8601 string, not {type_name(value)}")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(key, f"{value!r} is not an ISO 8601 timestamp")
            return None
        if parsed.tzinfo is None:
            self.fail(key, f"{value!r} has no time zone (add Z or +00:00)")
            return None
        try:
            # Stored in UTC: a time near year 1 or 9999 may not exist there.
            return parsed.astimezone(UTC)
        except OverflowError:
            self.fail(key, f"{value!r} is out of range (in UTC it falls outside years 1 to 9999)")
            return None

    def list_of_objects(self, key: str) -> list[dict]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, f"must be a list, not {type_name(value)}")
            return []
        out = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                out.append(item)
            else:
                self.errors.append(
                    FieldError(
                        f"{self.name(key)}[{index}]", f"must be an object, not {type_name(item)}"
                    )
                )
        return out


def _too_long(length: int, limit: int) -> str:
    return f"is {length} characters long; the limit is {limit}"


def _has_nul(value: Any) -> bool:
    return value is not None and b"\\u0000" in orjson.dumps(value)


COMPARISON_FIELDS = frozenset(
    {
        "external_id",
        "prompt",
        "response_a",
        "response_b",
        "model_a",
        "model_b",
        "metadata",
        "route",
        "gold",
        "human_labels",
        "lm_labels",
        # Written by `export_dataset --with-confidence` and derived from the labels (the analytics
        # report recomputes them), so a re-import accepts and ignores them.
        "posterior",
        "label_confidence",
    }
)
HUMAN_LABEL_FIELDS = frozenset(
    {
        "annotator",
        "annotator_type",
        "overall",
        *ASPECTS,
        "confidence",
        "reasons",
        "rationale",
        "time_spent_s",
        "shown_order",
        "guidelines_version",
        "source",
        "created_at",
    }
)
LM_LABEL_FIELDS = frozenset(
    {
        "judge",
        "judge_version",
        "overall",
        "p_a",
        "p_a_ab",
        "p_a_ba",
        "position_consistent",
        "rationale",
        "raw_output",
        "truncated",
        "source",
        "created_at",
    }
)


def record_from_native(obj: Any) -> tuple[ComparisonRecord | None, list[FieldError]]:
    """Validate one native-format object. Returns the record, or None and every problem found."""
    errors: list[FieldError] = []
    if not isinstance(obj, dict):
        return None, [FieldError("(line)", f"must be a JSON object, not {type_name(obj)}")]
    check = _Checker(obj, "", errors)
    check.unknown_keys(COMPARISON_FIELDS)
    record = _comparison_texts(check)
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        check.fail("metadata", f"must be an object, not {type_name(metadata)}")
    elif not check.shallow("metadata", metadata):
        pass
    elif _has_nul(metadata):
        check.fail("metadata", NUL_PROBLEM)
    else:
        record.metadata = metadata or {}
    gold = check.label("gold")
    record.gold = gold.choice if gold else None

    seen_annotators: set[str] = set()
    for index, item in enumerate(check.list_of_objects("human_labels")):
        label = _human_label(_Checker(item, f"human_labels[{index}].", errors))
        if label is None:
            continue
        if label.annotator in seen_annotators:
            errors.append(
                FieldError(
                    f"human_labels[{index}].annotator",
                    f"{label.annotator!r} labels this comparison twice",
                )
            )
        seen_annotators.add(label.annotator)
        record.human_labels.append(label)

    seen_judges: set[tuple[str, str]] = set()
    for index, item in enumerate(check.list_of_objects("lm_labels")):
        label = _lm_label(_Checker(item, f"lm_labels[{index}].", errors))
        if label is None:
            continue
        key = (label.judge, label.judge_version)
        if key in seen_judges:
            errors.append(
                FieldError(
                    f"lm_labels[{index}].judge",
                    f"judge {label.judge!r} version {label.judge_version!r} appears twice",
                )
            )
        seen_judges.add(key)
        record.lm_labels.append(label)

    return (None, errors) if errors else (record, errors)


def _comparison_texts(check: _Checker) -> ComparisonRecord:
    """The record's id, texts (and their messages), models and route."""
    external_id = check.text("external_id", required=True, max_length=MAX_EXTERNAL_ID)
    prompt, prompt_messages = check.conversation("prompt", response=False)
    # An empty or whitespace-only response is real data (HH-RLHF's silent refusals, a model
    # that said nothing): the other response wins. Null stays an error here.
    response_a, response_a_messages = check.conversation("response_a", response=True)
    response_b, response_b_messages = check.conversation("response_b", response=True)
    return ComparisonRecord(
        external_id=external_id,
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        prompt_messages=prompt_messages,
        response_a_messages=response_a_messages,
        response_b_messages=response_b_messages,
        model_a=check.text("model_a", max_length=MAX_NAME),
        model_b=check.text("model_b", max_length=MAX_NAME),
        route=check.choice("route", _ROUTES),
    )


def _human_label(check: _Checker) -> HumanLabelRecord | None:
    before = len(check.errors)
    check.unknown_keys(HUMAN_LABEL_FIELDS)
    annotator = check.text("annotator", required=True, max_length=MAX_NAME)
    judgements = {"overall": check.label("overall", required=True)}
    for aspect in ASPECTS:
        judgements[aspect] = check.label(aspect)
    confidence = None
    if check.obj.get("confidence") is not None:
        raw = check.obj["confidence"]
        if not isinstance(raw, str):
            check.fail("confidence", f"must be a string, not {type_name(raw)}")
        else:
            try:
                confidence = confidence_parse(raw)
            except ValueError as exc:
                check.fail("confidence", str(exc))
    reasons = check.obj.get("reasons")
    if reasons is None:
        reasons = []
    elif not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        check.fail("reasons", "must be a list of strings")
        reasons = []
    elif _has_nul(reasons):
        check.fail("reasons", NUL_PROBLEM)
    check.choice("source", _SOURCES)
    label = HumanLabelRecord(
        annotator=annotator,
        annotator_type=check.choice(
            "annotator_type", _ANNOTATOR_TYPES, default=AnnotatorType.NORMAL
        ),
        judgements=judgements,
        confidence=confidence,
        reasons=reasons,
        rationale=check.text("rationale"),
        time_spent_s=check.number("time_spent_s", low=0),
        shown_order=check.choice("shown_order", _SHOWN_ORDERS),
        guidelines_version=check.integer("guidelines_version", low=1, high=_GUIDELINES_RANGE[1]),
        created_at=check.timestamp("created_at"),
    )
    return None if len(check.errors) > before else label


def _lm_label(check: _Checker) -> LMLabelRecord | None:
    before = len(check.errors)
    check.unknown_keys(LM_LABEL_FIELDS)
    check.choice("source", _SOURCES)
    label = LMLabelRecord(
        judge=check.text("judge", required=True, max_length=MAX_NAME),
        judge_version=check.text("judge_version", max_length=MAX_NAME),
        judgement=check.label("overall", required=True),
        p_a=check.number("p_a", low=0, high=1),
        p_a_ab=check.number("p_a_ab", low=0, high=1),
        p_a_ba=check.number("p_a_ba", low=0, high=1),
        position_consistent=check.boolean("position_consistent"),
        rationale=check.text("rationale"),
        raw_output=check.obj.get("raw_output") or {},
        truncated=bool(check.boolean("truncated")),
        created_at=check.timestamp("created_at"),
    )
    if not check.shallow("raw_output", label.raw_output):
        pass
    elif _has_nul(label.raw_output):
        check.fail("raw_output", NUL_PROBLEM)
    if label.judgement is not None and label.p_a is not None:
        implied = Choice.A if label.p_a > 0.5 else Choice.B if label.p_a < 0.5 else None
        if implied is not None and label.judgement.choice not in (implied, Choice.TIE):
            check.fail(
                "overall",
                # The choices are enum members: their values read as the labels (`B`).
                f"{label.judgement.choice!s} contradicts p_a={label.p_a} "
                f"(which favours {implied!s})",
            )
    return None if len(check.errors) > before else label
