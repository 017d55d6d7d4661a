"""The label vocabulary (MultiPref's schema: docs/architecture.md, "The label") and its text form.

A judgement is stored as a choice (A / B / tie) and a strength (slightly / clearly / unknown), so
that plain "A"/"B" labels from other datasets import without inventing a strength. A tie has no
strength; it is stored as `unknown`.
"""

from typing import NamedTuple

from django.db import models


class Choice(models.TextChoices):
    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"


class Strength(models.TextChoices):
    SLIGHTLY = "slightly", "Slightly"
    CLEARLY = "clearly", "Clearly"
    UNKNOWN = "unknown", "Unknown"


class Confidence(models.TextChoices):
    ABSOLUTELY = "absolutely", "Absolutely confident"
    FAIRLY = "fairly", "Fairly confident"
    NOT = "not", "Not confident"


class AnnotatorType(models.TextChoices):
    NORMAL = "normal", "Normal"
    EXPERT = "expert", "Expert"


class ShownOrder(models.TextChoices):
    AB = "AB", "A shown first"
    BA = "BA", "B shown first"


class LabelSource(models.TextChoices):
    PLATFORM = "platform", "Labelled on the platform"
    IMPORTED = "imported", "Imported"


# The aspects a project may ask besides `overall` (always asked).
ASPECTS = ("helpful", "truthful", "harmless")
ALL_ASPECTS = ("overall", *ASPECTS)

# Checked reasons per aspect, as in MultiPref.
REASONS = {
    "helpful": (
        "correct",
        "informative",
        "concise",
        "well-formatted",
        "coherent",
        "creative",
        "understandable",
        "better-tone",
    ),
    "truthful": (
        "factual",
        "faithful",
        "aware-of-time",
        "aware-of-confusion",
        "aware-of-falsehood",
        "aware-of-incapabilities",
    ),
    "harmless": (
        "not-offensive",
        "not-dangerous",
        "avoids-restricted-content",
        "respects-privacy",
    ),
}

# MultiPref's confidence strings, accepted on import beside our short names.
_CONFIDENCE_ALIASES = {
    "absolutely-confident": Confidence.ABSOLUTELY,
    "fairly-confident": Confidence.FAIRLY,
    "not-confident": Confidence.NOT,
}


class Judgement(NamedTuple):
    choice: str
    strength: str


_LABELS = {
    "a-is-clearly-better": Judgement(Choice.A, Strength.CLEARLY),
    "a-is-slightly-better": Judgement(Choice.A, Strength.SLIGHTLY),
    "tie": Judgement(Choice.TIE, Strength.UNKNOWN),
    "b-is-slightly-better": Judgement(Choice.B, Strength.SLIGHTLY),
    "b-is-clearly-better": Judgement(Choice.B, Strength.CLEARLY),
    "a": Judgement(Choice.A, Strength.UNKNOWN),
    "b": Judgement(Choice.B, Strength.UNKNOWN),
}
_TEXT = {
    (Choice.A, Strength.CLEARLY): "A-is-clearly-better",
    (Choice.A, Strength.SLIGHTLY): "A-is-slightly-better",
    (Choice.A, Strength.UNKNOWN): "A",
    (Choice.TIE, Strength.UNKNOWN): "Tie",
    (Choice.B, Strength.SLIGHTLY): "B-is-slightly-better",
    (Choice.B, Strength.CLEARLY): "B-is-clearly-better",
    (Choice.B, Strength.UNKNOWN): "B",
}

LABEL_NAMES = (
    "A-is-clearly-better",
    "A-is-slightly-better",
    "Tie",
    "B-is-slightly-better",
    "B-is-clearly-better",
    "A",
    "B",
)


def label_parse(text: str) -> Judgement:
    """Parse a label such as `A-is-slightly-better`, `B` or `tie` (case-insensitive).

    Raises ValueError naming the accepted labels.
    """
    try:
        return _LABELS[text.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown label {text!r}; expected one of {', '.join(LABEL_NAMES)}"
        ) from None


def label_format(choice: str, strength: str) -> str:
    """The canonical text of a stored judgement (inverse of `label_parse`)."""
    return _TEXT[(choice, strength)]


_CONFIDENCES = frozenset(Confidence.values)


def confidence_parse(text: str) -> str:
    key = text.strip().lower()
    if key in _CONFIDENCES:
        return key
    if key in _CONFIDENCE_ALIASES:
        return _CONFIDENCE_ALIASES[key].value
    raise ValueError(
        f"unknown confidence {text!r}; expected one of "
        f"{', '.join(_CONFIDENCE_ALIASES)} (or {', '.join(Confidence.values)})"
    )
