"""The project analytics report: compute it from arrays, cache it, read it back.

`report_build` is pure (arrays in, JSON-ready dict and Dawid-Skene posteriors out);
`project_report_refresh` is the service that reads the labels, builds the report, draws its
figures and stores all of it in the project's `ProjectAnalytics` row; `project_report_cached`
is the selector pages use. `project_labels_changed` (annotator.services) bumps the labels'
version and queues a debounced refresh.

What the report holds (every interval a bootstrap 95% percentile interval, comparisons
resampled, seeded):
- agreement: per aspect, among human labels: Krippendorff's alpha, ordinal on the 5-point scale
  (labels without a known strength left out) and nominal on the choice (A / B / tie); Fleiss'
  kappa and pairwise agreement on the choice.
- judges: per LM judge, on the comparisons that have its label and at least two human labels,
  agreement and Cohen's kappa of (judge, human) label pairs next to (human, human) pairs.
- competence: Dawid-Skene over the human overall choices: per annotator a confusion matrix and
  the probability that their label is right, gold accuracy where gold exists, position bias,
  time on task, and flags for annotators far below the rest.
- leaderboard: Davidson-Bradley-Terry over the comparisons' models from the final labels (the
  human majority where humans labelled, a split vote counting as a tie; else the primary
  judge), from human labels only and from the primary judge only.
- distributions: label strength and ties, confidence, time on task, posterior confidence.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotator.analytics import agreement as ag
from annotator.analytics.arrays import (
    CHOICES,
    CONFIDENCES,
    MISSING,
    SCALE,
    ProjectArrays,
    project_arrays,
)
from annotator.analytics.competence import DawidSkene, dawid_skene
from annotator.analytics.flags import (
    COMPETENCE_GAP,
    GOLD_ACCURACY_FLOOR,
    MIN_LABELS_FOR_COMPETENCE,
    POSITION_BIAS_BAND,
    AnnotatorFigures,
    annotator_flags,
)
from annotator.analytics.leaderboard import leaderboard
from annotator.final_labels import project_primary_judge
from annotator.labels import ALL_ASPECTS
from annotator.models import Project, ProjectAnalytics

logger = logging.getLogger(__name__)

REPORT_FORMAT = 1
N_BOOTSTRAP = 1000
SEED = 0
POSTERIOR_EDGES = [1 / 3 + k * (2 / 3) / 20 for k in range(21)]
TIME_EDGES = [float(v) for v in np.geomspace(1, 3600, 31)]


@dataclass(frozen=True)
class Posteriors:
    """Dawid-Skene posteriors over (A, B, tie) of the comparisons with human labels."""

    comparison_ids: np.ndarray  # sorted
    probabilities: np.ndarray  # (n, 3) float32

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, ids=self.comparison_ids, p=self.probabilities)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Posteriors:
        with np.load(io.BytesIO(bytes(data))) as stored:
            return cls(comparison_ids=stored["ids"], probabilities=stored["p"])

    def lookup(self, comparison_ids) -> np.ndarray:
        """Rows of probabilities for the given ids; NaN rows for ids without a posterior."""
        ids = np.asarray(comparison_ids, dtype=np.int64)
        out = np.full((ids.size, 3), np.nan, dtype=np.float64)
        if self.comparison_ids.size == 0 or ids.size == 0:
            return out
        at = np.searchsorted(self.comparison_ids, ids)
        at_clipped = np.minimum(at, self.comparison_ids.size - 1)
        found = self.comparison_ids[at_clipped] == ids
        out[found] = self.probabilities[at_clipped[found]]
        return out


# --- Building the report from arrays -----------------------------------------------------------


def _unit_counts(unit: np.ndarray, codes: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    keep = codes >= 0
    flat = np.bincount(unit[keep] * n_values + codes[keep], minlength=n_units * n_values)
    return flat.reshape(n_units, n_values)


def _majority(counts: np.ndarray) -> np.ndarray:
    """Per unit the choice with the most votes; a split top (or no vote) -> tie / MISSING."""
    top = counts.max(axis=1)
    winners = (counts == top[:, None]).sum(axis=1)
    majority = np.where(winners == 1, counts.argmax(axis=1), CHOICES.index("tie"))
    return np.where(counts.sum(axis=1) > 0, majority, MISSING)


def _named_counts(codes: np.ndarray, names) -> dict[str, int]:
    counts = np.bincount(codes[codes >= 0], minlength=len(names))
    return {name: int(c) for name, c in zip(names, counts, strict=True)}


def _label_distribution(choice: np.ndarray, scale: np.ndarray) -> dict[str, int]:
    counts = _named_counts(scale, SCALE)
    unknown_strength = scale < 0
    counts["A"] = int(np.count_nonzero(unknown_strength & (choice == 0)))
    counts["B"] = int(np.count_nonzero(unknown_strength & (choice == 1)))
    return counts


def _agreement(data: ProjectArrays, *, n_bootstrap: int, seed: int) -> dict:
    human, n = data.human, data.n_units
    out = {}
    for k, aspect in enumerate(ALL_ASPECTS):
        choice = human.choice[aspect]
        if not np.any(choice >= 0):
            continue
        choice_counts = _unit_counts(human.unit, choice, n, 3)
        scale_counts = _unit_counts(human.unit, human.scale[aspect], n, len(SCALE))
        out[aspect] = ag.agreement_summary(
            choice_counts, scale_counts, n_bootstrap=n_bootstrap, seed=seed + 10 * k
        )
    return out


def _judges(data: ProjectArrays, *, n_bootstrap: int, seed: int) -> list[dict]:
    human, lm, n = data.human, data.lm, data.n_units
    counts = _unit_counts(human.unit, human.choice["overall"], n, 3)
    rows = []
    for k, name in enumerate(lm.judges):
        mine = lm.judge == k
        rater = np.full(n, MISSING)
        rater[lm.unit[mine]] = lm.choice[mine]
        both = (rater >= 0) & (counts.sum(axis=1) >= 2)
        summary = ag.rater_vs_group(
            rater[both], counts[both], n_bootstrap=n_bootstrap, seed=seed + 100 + k
        )
        rows.append({"judge": name, "n_labels": int(mine.sum()), **summary})
    return rows


def _competence(data: ProjectArrays) -> tuple[dict, Posteriors, np.ndarray]:
    """Dawid-Skene, per-annotator figures and flags; the posteriors; each unit's max posterior."""
    human = data.human
    labelled_units = np.unique(human.unit)
    # Fit on the labelled comparisons only, re-indexed densely.
    dense = np.searchsorted(labelled_units, human.unit)
    model = dawid_skene(
        dense,
        human.annotator,
        human.choice["overall"],
        n_items=labelled_units.size,
        n_workers=len(human.annotators),
        n_classes=3,
    )
    posteriors = Posteriors(
        comparison_ids=data.comparison_ids[labelled_units],
        probabilities=model.posteriors.astype(np.float32),
    )
    tallies = _AnnotatorTallies.count(data, model, dense)
    team = annotator_flags(tallies.figures())
    annotators = [tallies.row(w, model, flags) for w, flags in enumerate(team.flags)]
    annotators.sort(key=lambda a: (not a["flags"], a["accuracy"]))
    summary = {
        "model": "dawid-skene",
        "classes": list(CHOICES),
        "iterations": model.iterations,
        "converged": model.converged,
        "class_prior": [float(p) for p in model.prior],
        "team_accuracy": team.competence,
        "n_flagged": int(sum(1 for a in annotators if a["flags"])),
        "annotators": annotators,
    }
    return summary, posteriors, model.posteriors.max(axis=1) if labelled_units.size else np.zeros(0)


@dataclass(frozen=True)
class _AnnotatorTallies:
    """Per annotator (arrays indexed like `HumanArrays.annotators`): the counts and figures
    of their overall choices that the competence table shows and the flags judge."""

    names: list[str]
    expert: np.ndarray
    accuracy: np.ndarray  # Dawid-Skene P(label right)
    labels: np.ndarray
    expected_right: np.ndarray  # sum over their labels of P(this label is right)
    gold: np.ndarray  # labels on comparisons with a gold answer
    gold_right: np.ndarray
    decided: np.ndarray  # labels that chose A or B with a known shown order
    left: np.ndarray  # of those, the ones that chose whatever was shown on the left
    ties: np.ndarray
    median_seconds: np.ndarray  # NaN when unknown

    @classmethod
    def count(cls, data: ProjectArrays, model: DawidSkene, dense: np.ndarray) -> _AnnotatorTallies:
        human = data.human
        choice, who, n = human.choice["overall"], human.annotator, len(human.annotators)
        right = model.posteriors[dense, choice] if choice.size else np.zeros(0)
        gold = data.gold[human.unit]
        has_gold = gold >= 0
        tie = CHOICES.index("tie")
        decided = (choice != tie) & (choice >= 0) & (human.shown >= 0)
        # Chose whatever was on the left: A when A was shown first (0), B when B was (1).
        left = decided & (choice == human.shown)
        return cls(
            names=human.annotators,
            expert=human.annotator_expert,
            accuracy=model.worker_accuracy() if n else np.zeros(0),
            labels=np.bincount(who, minlength=n),
            expected_right=np.bincount(who, weights=right, minlength=n),
            gold=np.bincount(who[has_gold], minlength=n),
            gold_right=np.bincount(
                who[has_gold], weights=(choice[has_gold] == gold[has_gold]), minlength=n
            ),
            decided=np.bincount(who[decided], minlength=n),
            left=np.bincount(who[left], minlength=n),
            ties=np.bincount(who[choice == tie], minlength=n),
            median_seconds=_median_times(who, human.time_spent_s, n),
        )

    def _share(self, counts: np.ndarray, of: np.ndarray, w: int) -> float | None:
        return float(counts[w] / of[w]) if of[w] else None

    def _median(self, w: int) -> float | None:
        return float(self.median_seconds[w]) if np.isfinite(self.median_seconds[w]) else None

    def figures(self) -> list[AnnotatorFigures]:
        return [
            AnnotatorFigures(
                labels=int(self.labels[w]),
                gold_labels=int(self.gold[w]),
                gold_accuracy=self._share(self.gold_right, self.gold, w),
                decided_labels=int(self.decided[w]),
                left_share=self._share(self.left, self.decided, w),
                median_seconds=self._median(w),
                competence=float(self.accuracy[w]),
            )
            for w in range(len(self.names))
        ]

    def row(self, w: int, model: DawidSkene, flags: list[str]) -> dict:
        """The annotator's row of the competence table."""
        return {
            "annotator": self.names[w],
            "expert": bool(self.expert[w]),
            "labels": int(self.labels[w]),
            "accuracy": float(self.accuracy[w]),
            "label_confidence": self._share(self.expected_right, self.labels, w),
            "confusion": np.round(model.confusion[w], 4).tolist(),
            "gold_labels": int(self.gold[w]),
            "gold_accuracy": self._share(self.gold_right, self.gold, w),
            "left_share": self._share(self.left, self.decided, w),
            "tie_share": self._share(self.ties, self.labels, w),
            "median_seconds": self._median(w),
            "flags": flags,
        }


def _median_times(annotator: np.ndarray, seconds: np.ndarray, n: int) -> np.ndarray:
    known = np.isfinite(seconds)
    medians = np.full(n, np.nan)
    if not known.any():
        return medians
    order = np.lexsort((seconds[known], annotator[known]))
    who, values = annotator[known][order], seconds[known][order]
    starts = np.searchsorted(who, np.arange(n))
    ends = np.searchsorted(who, np.arange(n), side="right")
    for w in np.flatnonzero(ends > starts):
        medians[w] = np.median(values[starts[w] : ends[w]])
    return medians


def _leaderboards(
    data: ProjectArrays, primary_judge: str | None, *, n_bootstrap: int, seed: int
) -> dict:
    human, lm, n = data.human, data.lm, data.n_units
    human_outcome = _majority(_unit_counts(human.unit, human.choice["overall"], n, 3))
    lm_outcome = np.full(n, MISSING)
    if primary_judge in lm.judges:
        mine = lm.judge == lm.judges.index(primary_judge)
        lm_outcome[lm.unit[mine]] = lm.choice[mine]
    final = np.where(human_outcome >= 0, human_outcome, lm_outcome)
    boards = {}
    for k, (source, outcome) in enumerate(
        (("final", final), ("human", human_outcome), ("lm", lm_outcome))
    ):
        keep = outcome >= 0
        boards[source] = leaderboard(
            data.model_a[keep],
            data.model_b[keep],
            outcome[keep],
            data.models,
            n_bootstrap=n_bootstrap,
            seed=seed + 1000 + k,
        )
    boards["lm"]["judge"] = primary_judge
    return boards


def _distributions(data: ProjectArrays, max_posterior: np.ndarray) -> dict:
    human, lm = data.human, data.lm
    seconds = human.time_spent_s[np.isfinite(human.time_spent_s)]
    time_counts = np.histogram(np.clip(seconds, TIME_EDGES[0], TIME_EDGES[-1]), TIME_EDGES)[0]
    confidence = _named_counts(human.confidence, CONFIDENCES)
    confidence["not given"] = int(np.count_nonzero(human.confidence < 0))
    return {
        "human_labels": _label_distribution(human.choice["overall"], human.scale["overall"]),
        "lm_labels": {
            name: _label_distribution(lm.choice[lm.judge == k], lm.scale[lm.judge == k])
            for k, name in enumerate(lm.judges)
        },
        "confidence": confidence,
        "time_on_task": {
            "edges": TIME_EDGES,
            "counts": time_counts.tolist(),
            "median": float(np.median(seconds)) if seconds.size else None,
            "n": int(seconds.size),
        },
        "posterior_confidence": {
            "edges": POSTERIOR_EDGES,
            "counts": np.histogram(np.clip(max_posterior, 1 / 3, 1), POSTERIOR_EDGES)[0].tolist(),
        },
    }


def report_build(
    data: ProjectArrays,
    *,
    primary_judge: str | None,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = SEED,
) -> tuple[dict, Posteriors]:
    """The whole report from the project's arrays (pure; see the module docstring)."""
    human, lm = data.human, data.lm
    competence, posteriors, max_posterior = _competence(data)
    report = {
        "format": REPORT_FORMAT,
        "seed": seed,
        "n_bootstrap": n_bootstrap,
        "n_comparisons": data.n_units,
        "n_human_labels": human.size,
        "n_lm_labels": lm.size,
        "n_human_labelled": int(np.unique(human.unit).size),
        "n_annotators": len(human.annotators),
        "judges_named": lm.judges,
        "primary_judge": primary_judge,
        "agreement": _agreement(data, n_bootstrap=n_bootstrap, seed=seed),
        "judges": _judges(data, n_bootstrap=n_bootstrap, seed=seed),
        "competence": competence,
        "leaderboard": _leaderboards(data, primary_judge, n_bootstrap=n_bootstrap, seed=seed),
        "distributions": _distributions(data, max_posterior),
        "thresholds": {
            "competence_gap": COMPETENCE_GAP,
            "min_labels_for_competence": MIN_LABELS_FOR_COMPETENCE,
            "gold_accuracy_floor": GOLD_ACCURACY_FLOOR,
            "position_band": list(POSITION_BIAS_BAND),
        },
    }
    return report, posteriors


# --- The cache ----------------------------------------------------------------------------------


def project_report_compute(
    *, project: Project, n_bootstrap: int = N_BOOTSTRAP, seed: int = SEED
) -> tuple[dict, Posteriors, dict[str, float]]:
    """Read the project's labels and build its report; also returns the phases' seconds."""
    started = time.perf_counter()
    data = project_arrays(project=project)
    loaded = time.perf_counter()
    report, posteriors = report_build(
        data, primary_judge=project_primary_judge(project), n_bootstrap=n_bootstrap, seed=seed
    )
    built = time.perf_counter()
    return report, posteriors, {"load": loaded - started, "statistics": built - loaded}


def project_report_refresh(*, project_id: int, n_bootstrap: int = N_BOOTSTRAP) -> ProjectAnalytics:
    """Recompute the project's report and store it, with its figures and posteriors.

    The labels' version is read before the labels, so a label written meanwhile leaves the
    report marked stale (its own change queues the next refresh).
    """
    from annotator.analytics.plots import report_plots

    project = Project.objects.get(pk=project_id)
    ProjectAnalytics.objects.get_or_create(project=project)
    # Clearing the flag first: a change from now on queues a new refresh.
    ProjectAnalytics.objects.filter(pk=project.pk).update(refresh_queued=False)
    version = ProjectAnalytics.objects.values_list("labels_version", flat=True).get(pk=project.pk)
    started = time.perf_counter()
    try:
        report, posteriors, phases = project_report_compute(
            project=project, n_bootstrap=n_bootstrap
        )
        drawn = time.perf_counter()
        plots = {
            name: base64.b64encode(png).decode("ascii")
            for name, png in report_plots(report).items()
        }
        phases["plots"] = time.perf_counter() - drawn
    except Exception as exc:
        logger.exception("analytics of project %s failed", project.slug)
        ProjectAnalytics.objects.filter(pk=project.pk).update(error=f"{type(exc).__name__}: {exc}")
        raise
    report["phases_seconds"] = {k: round(v, 3) for k, v in phases.items()}
    # A slower refresh that read older labels never overwrites a newer report.
    newer = Q(report_version__isnull=True) | Q(report_version__lte=version)
    with transaction.atomic():
        ProjectAnalytics.objects.filter(newer, pk=project.pk).update(
            report=report,
            plots=plots,
            posteriors=posteriors.to_bytes(),
            report_version=version,
            computed_at=timezone.now(),
            compute_seconds=time.perf_counter() - started,
            error="",
        )
    return ProjectAnalytics.objects.get(pk=project.pk)


def project_report_cached(*, project: Project) -> ProjectAnalytics | None:
    """The cached report row without its figures and posteriors (what the page needs)."""
    return ProjectAnalytics.objects.defer("plots", "posteriors").filter(project=project).first()


def project_plot_png(*, project: Project, name: str) -> bytes | None:
    """One cached figure as PNG bytes (read from the database as one JSON key)."""
    from django.db.models.fields.json import KT

    encoded = (
        ProjectAnalytics.objects.filter(project=project)
        .annotate(png=KT(f"plots__{name}"))
        .values_list("png", flat=True)
        .first()
    )
    return base64.b64decode(encoded) if encoded else None


def project_posteriors(*, project: Project) -> tuple[Posteriors | None, bool]:
    """(the cached Dawid-Skene posteriors or None, whether they are stale)."""
    row = (
        ProjectAnalytics.objects.filter(project=project)
        .values_list("posteriors", "report_version", "labels_version")
        .first()
    )
    if row is None or row[0] is None:
        return None, True
    return Posteriors.from_bytes(row[0]), row[1] != row[2]


def analytics_labels_changed(*, project_id: int) -> bool:
    """Bump the project's labels version; True when this call should queue a refresh (none was
    queued), so a burst of label writes queues one refresh (the debounce)."""
    updated = ProjectAnalytics.objects.filter(pk=project_id).update(
        labels_version=F("labels_version") + 1, labels_changed_at=timezone.now()
    )
    if not updated:
        ProjectAnalytics.objects.get_or_create(
            project_id=project_id,
            defaults={"labels_version": 1, "labels_changed_at": timezone.now()},
        )
    return bool(
        ProjectAnalytics.objects.filter(pk=project_id, refresh_queued=False).update(
            refresh_queued=True
        )
    )


def analytics_queue_cleared(*, project_id: int) -> None:
    """Forget a queued refresh that never reached the broker, so the next change queues one."""
    ProjectAnalytics.objects.filter(pk=project_id).update(refresh_queued=False)
