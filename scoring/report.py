"""The judge quality report: how well an LM judge agrees with humans on a project's comparisons.

Scope: the comparisons of the project that have at least one human label and a label of the judge
(its given version, or its most recent label per comparison). The human side is the majority of
the human overall choices (`human_majority`): comparisons with no majority (a tied vote) or a Tie
majority are counted but left out of accuracy, kappa and calibration ("scored" comparisons are
the others).

- Accuracy: the judge's choice against the human majority. The humans never say Tie here; a judge
  tie counts as wrong.
- Cohen's kappa between the judge's choice and the human majority over {A, B, tie}.
- Both with a bootstrap 95% interval, percentile method, seeded. Resampling comparisons with
  replacement only changes how often each (judge, human) pair of choices occurs, so a resample is
  drawn as multinomial counts over the 9 cells of the confusion matrix: the same distribution as
  resampling rows, in memory and time independent of the number of comparisons.
- Calibration of p_a (P(A is better)) against "A won" on the scored comparisons whose label has
  p_a: Brier score, expected calibration error over 10 equal-width bins and the reliability data.
- Position consistency: share of the labels with `position_consistent` True among those where it
  is known, over the same comparisons (those with both kinds of label).
- Self-preference: accuracy and kappa again for the comparisons that involve the judge's model
  family (its name in `model_a` or `model_b`, case-insensitive) and for the others.

The statistics are pure functions over numpy arrays; `judge_report_rows` is the only database
access (two `values_list` queries).
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from annotator.analytics.agreement import (
    CONFIDENCE,
    Interval,
    finite_or_none,
    kappa_from_confusion,
    percentile_interval,
)
from annotator.final_labels import human_majority, latest_lm_labels
from annotator.labels import Choice
from annotator.models import HumanLabel, LMLabel, Project

CHOICES: tuple[str, ...] = (Choice.A.value, Choice.B.value, Choice.TIE.value)
_CODE = {choice: code for code, choice in enumerate(CHOICES)}
_TIE = _CODE[Choice.TIE.value]
N_BINS = 10


class JudgeReportError(ValueError):
    """The report cannot be made (e.g. the judge has no labels in the project)."""


# --- Pure statistics -------------------------------------------------------------------------


def encode_choices(choices) -> np.ndarray:
    """Choice strings ("A", "B", "tie") as integer codes 0, 1, 2."""
    return np.array([_CODE[str(c)] for c in choices], dtype=np.int64)


def confusion_matrix(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    """3x3 counts, rows the judge's choice and columns the human's, in the order of CHOICES."""
    judge, human = encode_choices(judge), encode_choices(human)
    if judge.shape != human.shape:
        raise ValueError("judge and human choices differ in length")
    return np.bincount(judge * 3 + human, minlength=9).reshape(3, 3)


def accuracy_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Accuracy over the cells whose human choice is not Tie; judge ties count as wrong.

    Works on one matrix (..., 3, 3): NaN where there is nothing to score.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    decided = confusion[..., :, :_TIE]  # human A or B
    total = decided.sum(axis=(-2, -1))
    right = confusion[..., 0, 0] + confusion[..., 1, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, right / total, np.nan)


def accuracy(judge: np.ndarray, human: np.ndarray) -> float | None:
    """Share of comparisons whose judge choice equals the human choice, leaving out those the
    humans call Tie; a judge tie counts as wrong. None when nothing is left."""
    return finite_or_none(accuracy_from_confusion(confusion_matrix(judge, human)))


def cohen_kappa(judge: np.ndarray, human: np.ndarray) -> float | None:
    """Cohen's kappa between two raters over {A, B, tie}; None when undefined."""
    return finite_or_none(kappa_from_confusion(confusion_matrix(judge, human)))


def bootstrap_intervals(
    judge: np.ndarray, human: np.ndarray, *, seed: int = 0, n_bootstrap: int = 1000
) -> dict[str, Interval | None]:
    """Bootstrap 95% intervals of accuracy and kappa, resampling comparisons (percentile method).

    A resample of n comparisons drawn with replacement is drawn directly as its confusion
    matrix, multinomial over the observed cells: the same distribution, O(n_bootstrap) memory.
    """
    confusion = confusion_matrix(judge, human)
    n = int(confusion.sum())
    if n == 0 or n_bootstrap <= 0:
        return {"accuracy": None, "kappa": None}
    rng = np.random.default_rng(seed)
    cells = rng.multinomial(n, confusion.ravel() / n, size=n_bootstrap).reshape(-1, 3, 3)
    return {
        "accuracy": percentile_interval(accuracy_from_confusion(cells)),
        "kappa": percentile_interval(kappa_from_confusion(cells)),
    }


def brier_score(p: np.ndarray, outcome: np.ndarray) -> float | None:
    """Mean squared difference between the probability and the 0/1 outcome; None when empty."""
    p, outcome = np.asarray(p, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    if p.size == 0:
        return None
    return float(np.mean((p - outcome) ** 2))


def bin_index(p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-width bin of each probability: [0, 1/n), ..., [(n-1)/n, 1], 1.0 in the last.

    Multiplying rather than comparing with np.linspace edges keeps 0.3 in [0.3, 0.4)
    (linspace(0, 1, 11)[3] is 0.30000000000000004).
    """
    p = np.asarray(p, dtype=np.float64)
    return np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_p_a: float | None  # None for an empty bin
    observed: float | None  # share of "A won" in the bin


def reliability_bins(
    p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS
) -> list[ReliabilityBin]:
    """Per equal-width bin: its bounds, count, mean probability and observed frequency."""
    p, outcome = np.asarray(p, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    index = bin_index(p, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    sum_p = np.bincount(index, weights=p, minlength=n_bins)
    sum_y = np.bincount(index, weights=outcome, minlength=n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        bins.append(
            ReliabilityBin(
                low=b / n_bins,
                high=(b + 1) / n_bins,
                count=count,
                mean_p_a=float(sum_p[b] / count) if count else None,
                observed=float(sum_y[b] / count) if count else None,
            )
        )
    return bins


def expected_calibration_error(
    p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS
) -> float | None:
    """Sum over equal-width bins of (bin share) * |mean probability - observed frequency|."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return None
    return float(
        sum(
            b.count / p.size * abs(b.mean_p_a - b.observed)
            for b in reliability_bins(p, outcome, n_bins)
            if b.count
        )
    )


def true_rate(flags) -> tuple[float | None, int]:
    """(share of True, number known) among flags that are True, False or None."""
    known = [bool(f) for f in flags if f is not None]
    return (sum(known) / len(known) if known else None), len(known)


def tie_majority(votes: list[tuple[str, str]]) -> bool:
    """Whether Tie alone has the most votes: a Tie majority, which `human_majority` (None for
    it as for a tied vote) leaves out."""
    counts = Counter(choice for choice, _ in votes).most_common()
    return (
        bool(counts)
        and counts[0][0] == Choice.TIE
        and (len(counts) == 1 or counts[1][1] < counts[0][1])
    )


def involves_family(model_a: str, model_b: str, family: str | None) -> bool:
    """Whether the family's name appears (case-insensitive substring) in either model."""
    if not family:
        return False
    family = family.casefold()
    return family in (model_a or "").casefold() or family in (model_b or "").casefold()


# --- The report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """Agreement with the human majority on one group of comparisons."""

    n: int  # comparisons with both a human and a judge label
    n_scored: int  # of which with an A or B human majority
    n_judge_ties: int  # scored comparisons the judge called a tie (wrong for accuracy)
    accuracy: float | None
    accuracy_ci: Interval | None
    kappa: float | None
    kappa_ci: Interval | None


@dataclass(frozen=True)
class Calibration:
    n: int  # scored comparisons whose label has p_a
    brier: float | None
    ece: float | None
    n_bins: int
    bins: list[ReliabilityBin]


@dataclass(frozen=True)
class PositionConsistency:
    n: int  # labels where position_consistent is known
    rate: float | None


@dataclass(frozen=True)
class JudgeReport:
    project: str
    judge_name: str
    judge_version: str | None  # None: the most recent label per comparison
    judge_versions: list[str]  # the versions of the labels used
    judge_family: str | None
    seed: int
    n_bootstrap: int
    n_judge_labelled: int  # comparisons of the project the judge labelled
    n_human_labelled: int  # comparisons of the project with at least one human label
    n: int  # comparisons with both
    n_no_majority: int  # ... whose human vote is tied (left out of the figures)
    n_tie_majority: int  # ... whose human majority is Tie (left out of the figures)
    overall: Agreement
    calibration: Calibration
    position_consistency: PositionConsistency
    with_family: Agreement  # comparisons involving the judge's family (empty without a family)
    without_family: Agreement
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Every figure, JSON-ready: intervals as [low, high]."""

        def lists(value):
            if isinstance(value, dict):
                return {k: lists(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [lists(v) for v in value]
            return value

        return lists(asdict(self))


@dataclass(frozen=True)
class ReportRow:
    """One comparison with both kinds of label, as read from the database."""

    comparison_id: int
    human_votes: list[tuple[str, str]]  # (overall_choice, overall_strength)
    judge_choice: str
    judge_version: str
    p_a: float | None
    position_consistent: bool | None
    model_a: str
    model_b: str


@dataclass(frozen=True)
class ReportRows:
    rows: list[ReportRow]
    n_judge_labelled: int
    n_human_labelled: int


def judge_report_rows(
    *, project: Project, judge_name: str, judge_version: str | None = None
) -> ReportRows:
    """The judge's label and the human votes of each comparison of the project that has both.

    Two queries. Without a version, the judge's latest label per comparison
    (annotator.final_labels) is used.
    """
    labels = LMLabel.objects.filter(comparison__project=project, judge_name=judge_name)
    if judge_version is not None:
        labels = labels.filter(judge_version=judge_version)
    judged = {
        row[0]: row
        for row in latest_lm_labels(labels).values_list(
            "comparison_id",
            "choice",
            "judge_version",
            "p_a",
            "position_consistent",
            "comparison__model_a",
            "comparison__model_b",
        )
    }
    votes: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for comparison_id, choice, strength in (
        HumanLabel.objects.filter(comparison__project=project)
        .order_by("comparison_id", "id")
        .values_list("comparison_id", "overall_choice", "overall_strength")
    ):
        votes[comparison_id].append((choice, strength))
    rows = [
        ReportRow(
            comparison_id=cid,
            human_votes=votes[cid],
            judge_choice=choice,
            judge_version=version,
            p_a=p_a,
            position_consistent=consistent,
            model_a=model_a,
            model_b=model_b,
        )
        for cid, (_, choice, version, p_a, consistent, model_a, model_b) in sorted(judged.items())
        if cid in votes
    ]
    return ReportRows(rows=rows, n_judge_labelled=len(judged), n_human_labelled=len(votes))


def agreement(
    judge: np.ndarray, human: np.ndarray, *, n: int, seed: int, n_bootstrap: int
) -> Agreement:
    """Accuracy and kappa with their intervals for scored comparisons (`n`: the group's size
    including the comparisons left out for their human vote)."""
    intervals = bootstrap_intervals(judge, human, seed=seed, n_bootstrap=n_bootstrap)
    return Agreement(
        n=n,
        n_scored=len(judge),
        n_judge_ties=int(sum(1 for c in judge if c == Choice.TIE)),
        accuracy=accuracy(judge, human),
        accuracy_ci=intervals["accuracy"],
        kappa=cohen_kappa(judge, human),
        kappa_ci=intervals["kappa"],
    )


def judge_report(
    *,
    project: Project,
    judge_name: str,
    judge_version: str | None = None,
    judge_family: str | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
) -> JudgeReport:
    """The judge's agreement with humans on the project; see the module docstring.

    Raises JudgeReportError when the judge (at that version) has no label in the project.
    """
    judge_family = judge_family or None
    data = judge_report_rows(project=project, judge_name=judge_name, judge_version=judge_version)
    if data.n_judge_labelled == 0:
        version = f" version {judge_version!r}" if judge_version is not None else ""
        raise JudgeReportError(
            f"judge {judge_name!r}{version} has no labels in project {project.slug!r}"
        )
    rows = data.rows
    majorities = [human_majority(row.human_votes) for row in rows]
    n_tie_majority = sum(1 for row in rows if tie_majority(row.human_votes))
    in_family = np.array(
        [involves_family(row.model_a, row.model_b, judge_family) for row in rows], dtype=bool
    )
    scored = _Scored.of(rows, majorities, in_family)
    rate, n_known = true_rate([row.position_consistent for row in rows])

    def group(mask: np.ndarray, size: int) -> Agreement:
        return agreement(
            scored.judge[mask], scored.human[mask], n=size, seed=seed, n_bootstrap=n_bootstrap
        )

    return JudgeReport(
        project=project.slug,
        judge_name=judge_name,
        judge_version=judge_version,
        judge_versions=sorted({row.judge_version for row in rows}),
        judge_family=judge_family,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_judge_labelled=data.n_judge_labelled,
        n_human_labelled=data.n_human_labelled,
        n=len(rows),
        n_no_majority=sum(1 for m in majorities if m is None) - n_tie_majority,
        n_tie_majority=n_tie_majority,
        overall=group(np.ones(len(scored.judge), dtype=bool), len(rows)),
        calibration=_calibration(scored.p_a, scored.a_won),
        position_consistency=PositionConsistency(n=n_known, rate=rate),
        with_family=group(scored.in_family, int(in_family.sum())),
        without_family=group(~scored.in_family, int((~in_family).sum())),
        notes=_notes(seed=seed, n_bootstrap=n_bootstrap),
    )


@dataclass(frozen=True)
class _Scored:
    """The comparisons whose human majority is A or B: the judge's choice against it."""

    judge: np.ndarray  # the judge's choice strings
    human: np.ndarray  # the human majority's
    in_family: np.ndarray  # bool: involves the judge's model family
    p_a: np.ndarray  # the judge's p_a, of the labels that have one
    a_won: np.ndarray  # 1.0 where A won, for those same labels

    @classmethod
    def of(cls, rows: list[ReportRow], majorities: list, in_family: np.ndarray) -> _Scored:
        is_scored = np.array([m is not None for m in majorities], dtype=bool)
        scored = [(row, m[0]) for row, m in zip(rows, majorities, strict=True) if m is not None]
        with_p = [(row.p_a, winner == Choice.A) for row, winner in scored if row.p_a is not None]
        return cls(
            judge=np.array([row.judge_choice for row, _ in scored], dtype=object),
            human=np.array([winner for _, winner in scored], dtype=object),
            in_family=in_family[is_scored],
            p_a=np.array([value for value, _ in with_p], dtype=np.float64),
            a_won=np.array([a_won for _, a_won in with_p], dtype=np.float64),
        )


def _calibration(p: np.ndarray, won: np.ndarray) -> Calibration:
    return Calibration(
        n=int(p.size),
        brier=brier_score(p, won),
        ece=expected_calibration_error(p, won),
        n_bins=N_BINS,
        bins=reliability_bins(p, won),
    )


def _notes(*, seed: int, n_bootstrap: int) -> list[str]:
    return [
        "accuracy leaves out comparisons whose human majority is Tie or tied; "
        "a judge tie counts as wrong",
        f"intervals: bootstrap {CONFIDENCE:.0%} percentile, {n_bootstrap} resamples of the "
        f"comparisons, seed {seed}"
        if n_bootstrap > 0
        else "intervals: none (no bootstrap resamples)",
    ]


# --- The reliability diagram -----------------------------------------------------------------


def reliability_plot_png(report: JudgeReport) -> bytes:
    """A reliability diagram of the report's p_a calibration, as PNG bytes.

    matplotlib is imported here, and drawn with its Agg canvas directly (no pyplot state), so
    the rest of the module works without it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    calibration = report.calibration
    figure = Figure(figsize=(6, 6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    _bins_draw(axes, calibration)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.08)
    axes.set_xlabel("p_a (judge's probability that A is better)")
    axes.set_ylabel("share of comparisons the humans gave to A")
    axes.set_title(_plot_title(report), fontsize=10)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bins_draw(axes, calibration: Calibration) -> None:
    """The filled bins: observed frequency as bars, mean p_a against it as a line, counts."""
    filled = [b for b in calibration.bins if b.count]
    width = 1.0 / calibration.n_bins
    axes.bar(
        [b.low for b in filled],
        [b.observed for b in filled],
        width=width,
        align="edge",
        alpha=0.35,
        edgecolor="tab:blue",
        label="observed frequency",
    )
    axes.plot(
        [b.mean_p_a for b in filled],
        [b.observed for b in filled],
        marker="o",
        color="tab:blue",
        label="mean p_a vs observed",
    )
    for b in filled:
        axes.annotate(
            f"n={b.count}",
            (b.low + width / 2, b.observed),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=8,
        )
    if not filled:
        axes.text(0.5, 0.5, "no labels with p_a", ha="center", va="center")


def _plot_title(report: JudgeReport) -> str:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    calibration = report.calibration
    version = report.judge_version if report.judge_version is not None else "latest"
    return (
        f"{report.judge_name} ({version}) on {report.project}\n"
        f"Brier {fmt(calibration.brier)}, ECE {fmt(calibration.ece)} "
        f"({calibration.n_bins} bins, n={calibration.n})"
    )
