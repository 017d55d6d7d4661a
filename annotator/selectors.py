"""Reads used by pages and commands: progress, project counts, annotator quality."""

import statistics
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, F, Q
from django.utils import timezone

from annotator.analytics.flags import AnnotatorFigures, annotator_flags
from annotator.labels import Choice, ShownOrder
from annotator.models import Comparison, HumanLabel, Membership, Project, Role, Route


def projects_for_user(user):
    """The projects a user belongs to (active memberships), with their role."""
    return (
        Project.objects.filter(memberships__user=user, memberships__is_active=True)
        .annotate(n_comparisons=Count("comparisons", distinct=True))
        .order_by("slug")
    )


def membership_of(*, project: Project, user) -> Membership | None:
    return Membership.objects.filter(project=project, user=user, is_active=True).first()


@dataclass(frozen=True)
class Progress:
    today: int
    total: int
    remaining: int


def annotator_progress(*, project: Project, user) -> Progress:
    """What one annotator did (today, in total) and how many comparisons still want labels."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = HumanLabel.objects.filter(comparison__project=project, annotator=user).aggregate(
        total=Count("id"), today=Count("id", filter=Q(created_at__gte=midnight))
    )
    return Progress(
        today=mine["today"], total=mine["total"], remaining=project_remaining(project=project)
    )


REMAINING_CACHE_S = 15


def project_remaining(*, project: Project) -> int:
    """Human-routed comparisons still short of labels. Counting them scans the project, so every
    page view shares one count for a few seconds."""
    key = f"project-remaining:{project.pk}:{project.labels_per_item}"
    remaining = cache.get(key)
    if remaining is None:
        remaining = Comparison.objects.filter(
            project=project,
            route=Route.HUMAN,
            is_gold=False,
            labels_done__lt=project.labels_per_item + F("extra_labels"),
        ).count()
        cache.set(key, remaining, REMAINING_CACHE_S)
    return remaining


def project_counts(*, project: Project) -> dict:
    """Comparisons by route and label progress, for the project page."""
    comparisons = Comparison.objects.filter(project=project)
    by_route = dict(
        comparisons.values_list("route").annotate(n=Count("id")).values_list("route", "n")
    )
    human = comparisons.filter(route=Route.HUMAN, is_gold=False)
    wanted = project.labels_per_item + F("extra_labels")
    done = human.aggregate(
        complete=Count("id", filter=Q(labels_done__gte=wanted)),
        started=Count("id", filter=Q(labels_done__gt=0, labels_done__lt=wanted)),
        untouched=Count("id", filter=Q(labels_done=0)),
    )
    return {
        "total": sum(by_route.values()),
        "by_route": {route: by_route.get(route, 0) for route in Route.values},
        "gold": comparisons.filter(is_gold=True).count(),
        "human_complete": done["complete"],
        "human_started": done["started"],
        "human_untouched": done["untouched"],
        "platform_labels": HumanLabel.objects.filter(
            comparison__project=project, annotator__isnull=False
        ).count(),
    }


@dataclass
class AnnotatorStats:
    user_id: int
    username: str
    annotator_type: str
    is_active: bool
    qualification: str
    labels: int
    gold_labels: int
    gold_accuracy: float | None
    labels_per_hour: float | None
    median_seconds: float | None
    first_shown_share: float | None  # share of non-tie labels that chose the left response
    flags: list[str]


def annotator_stats(*, project: Project) -> list[AnnotatorStats]:
    """Per annotator of the project: volume, gold accuracy, speed and left/right bias, flagged
    by the rule the analytics report uses (annotator.analytics.flags)."""
    members = list(
        Membership.objects.filter(project=project)
        .exclude(role=Role.VIEWER)
        .select_related("user")
        .order_by("user__username")
    )
    rows = HumanLabel.objects.filter(
        comparison__project=project, annotator__isnull=False
    ).values_list(
        "annotator_id",
        "overall_choice",
        "shown_order",
        "time_spent_s",
        "created_at",
        "comparison__is_gold",
        "comparison__gold_choice",
    )
    per_user: dict[int, list[tuple]] = {}
    for row in rows:
        per_user.setdefault(row[0], []).append(row)
    figures = [_annotator_figures(per_user.get(m.user_id, [])) for m in members]
    team = annotator_flags([f for f, _ in figures])
    return [
        AnnotatorStats(
            user_id=membership.user_id,
            username=membership.user.get_username(),
            annotator_type=membership.annotator_type,
            is_active=membership.is_active,
            qualification=membership.qualification,
            labels=mine.labels,
            gold_labels=mine.gold_labels,
            gold_accuracy=mine.gold_accuracy,
            labels_per_hour=labels_per_hour,
            median_seconds=mine.median_seconds,
            first_shown_share=mine.left_share,
            flags=flags,
        )
        for membership, (mine, labels_per_hour), flags in zip(
            members, figures, team.flags, strict=True
        )
    ]


def _annotator_figures(labels: list[tuple]) -> tuple[AnnotatorFigures, float | None]:
    """One annotator's figures from their label rows (as annotator_stats reads them), and their
    labels per hour of time on task."""
    gold = [r for r in labels if r[5]]
    times = [r[3] for r in labels if r[3] is not None]
    decided = [r for r in labels if r[1] != Choice.TIE and r[2]]
    # Chose whatever was on the left.
    first = [r for r in decided if (r[1] == Choice.A) == (r[2] == ShownOrder.AB)]
    active_hours = sum(times) / 3600 if times else 0
    figures = AnnotatorFigures(
        labels=len(labels),
        gold_labels=len(gold),
        gold_accuracy=(sum(r[1] == r[6] for r in gold) / len(gold)) if gold else None,
        decided_labels=len(decided),
        left_share=(len(first) / len(decided)) if decided else None,
        median_seconds=statistics.median(times) if times else None,
    )
    return figures, (len(times) / active_hours) if active_hours else None
