"""Warning flags for the annotators who are far off the rest: the one rule that the annotators
page (`annotator.selectors.annotator_stats`) and the analytics report's competence table share.

Each flag needs enough labels to mean much: gold accuracy below a floor, picking the left
response outside a band of the decided labels, a median time per label far below the team's,
and (the report only, where Dawid-Skene was fitted) a competence far below the team's.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from annotator.analytics.competence import robust_low

GOLD_ACCURACY_FLOOR = 0.7
MIN_GOLD_FOR_FLAG = 5
POSITION_BIAS_BAND = (0.25, 0.75)
MIN_LABELS_FOR_BIAS = 20  # decided labels (a side chosen, the shown order known)
FAST_FRACTION_OF_MEDIAN = 0.25
# A Dawid-Skene accuracy is flagged when it is this far below the team's median (and an outlier
# by the robust z-score), with at least this many labels, among at least 3 such annotators.
COMPETENCE_GAP = 0.15
MIN_LABELS_FOR_COMPETENCE = 20


@dataclass(frozen=True)
class AnnotatorFigures:
    """What the flags look at for one annotator; None where it is unknown."""

    labels: int
    gold_labels: int
    gold_accuracy: float | None
    decided_labels: int  # labels that chose A or B with a known shown order
    left_share: float | None  # of those, the share that chose whatever was shown on the left
    median_seconds: float | None
    competence: float | None = None  # Dawid-Skene P(label right); None where not fitted


@dataclass(frozen=True)
class TeamFlags:
    flags: list[list[str]]  # per annotator, in the order given
    median_seconds: float | None  # the median of the annotators' median times
    competence: float | None  # the median competence of those with enough labels


def annotator_flags(annotators: list[AnnotatorFigures]) -> TeamFlags:
    """Each annotator's flags, judged against the team of `annotators`."""
    medians = [a.median_seconds for a in annotators if a.median_seconds is not None]
    team_median = statistics.median(medians) if medians else None
    low, team_competence = _low_competence(annotators)
    flags = []
    for a, is_low in zip(annotators, low, strict=True):
        mine = []
        if is_low:
            mine.append(
                f"Dawid-Skene accuracy {a.competence:.0%} vs {team_competence:.0%} for the team"
            )
        if (
            a.gold_accuracy is not None
            and a.gold_labels >= MIN_GOLD_FOR_FLAG
            and a.gold_accuracy < GOLD_ACCURACY_FLOOR
        ):
            mine.append(f"gold accuracy {a.gold_accuracy:.0%}")
        band_low, band_high = POSITION_BIAS_BAND
        if (
            a.left_share is not None
            and a.decided_labels >= MIN_LABELS_FOR_BIAS
            and not band_low <= a.left_share <= band_high
        ):
            mine.append(f"picks the left response {a.left_share:.0%} of the time")
        if (
            team_median
            and a.median_seconds is not None
            and len(medians) > 1
            and a.median_seconds < FAST_FRACTION_OF_MEDIAN * team_median
        ):
            mine.append(
                f"median {a.median_seconds:.0f}s per label vs {team_median:.0f}s for the team"
            )
        flags.append(mine)
    return TeamFlags(flags=flags, median_seconds=team_median, competence=team_competence)


def _low_competence(annotators: list[AnnotatorFigures]) -> tuple[np.ndarray, float | None]:
    """Which annotators' competence lies far below the team's, and the team's (the median of
    those with enough labels)."""
    competence = np.array([np.nan if a.competence is None else a.competence for a in annotators])
    enough = np.array(
        [a.competence is not None and a.labels >= MIN_LABELS_FOR_COMPETENCE for a in annotators],
        dtype=bool,
    )
    low = np.zeros(len(annotators), dtype=bool)
    if enough.sum() >= 3:
        low[enough] = robust_low(competence[enough], min_gap=COMPETENCE_GAP)
    team = float(np.median(competence[enough])) if enough.any() else None
    return low, team
