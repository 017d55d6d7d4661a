"""Progress, project counts and per-annotator quality figures."""

from django.db.models import F

from annotator.models import Comparison, Role, Route
from annotator.selectors import annotator_progress, annotator_stats, project_counts
from tests.factories import (
    ComparisonFactory,
    MembershipFactory,
    PlatformLabelFactory,
    ProjectFactory,
)


def _label(comparison, user, choice, shown="AB", seconds=30.0):
    """A user's label, counted on the comparison as the assignment engine counts it."""
    PlatformLabelFactory(
        comparison=comparison,
        annotator=user,
        overall_choice=choice,
        shown_order=shown,
        time_spent_s=seconds,
    )
    Comparison.objects.filter(pk=comparison.pk).update(
        labels_done=F("labels_done") + 1, slots_taken=F("slots_taken") + 1
    )


def test_progress_and_counts(db):
    project = ProjectFactory(labels_per_item=2)
    user = MembershipFactory(project=project).user
    done = ComparisonFactory(project=project, route=Route.HUMAN, labels_done=2, slots_taken=2)
    ComparisonFactory(project=project, route=Route.HUMAN, labels_done=1, slots_taken=1)
    ComparisonFactory(project=project, route=Route.HUMAN)
    ComparisonFactory(project=project, route=Route.LM)
    ComparisonFactory(project=project, is_gold=True, gold_choice="A", route=Route.HUMAN)
    PlatformLabelFactory(comparison=done, annotator=user)

    progress = annotator_progress(project=project, user=user)
    counts = project_counts(project=project)

    assert (progress.today, progress.total, progress.remaining) == (1, 1, 2)
    assert counts["by_route"] == {"pending": 0, "human": 4, "lm": 1}
    assert (counts["human_complete"], counts["human_started"], counts["human_untouched"]) == (
        1,
        1,
        1,
    )
    assert counts["gold"] == 1


def test_annotator_stats_flag_the_annotator_who_is_far_off(db):
    project = ProjectFactory(labels_per_item=3)
    good = MembershipFactory(project=project, user__username="good").user
    lazy = MembershipFactory(project=project, user__username="lazy").user
    MembershipFactory(project=project, user__username="viewer", role=Role.VIEWER)
    gold = ComparisonFactory.create_batch(6, project=project, is_gold=True, gold_choice="A")
    items = ComparisonFactory.create_batch(24, project=project, route=Route.HUMAN)
    for comparison in gold:
        _label(comparison, good, "A")
        _label(comparison, lazy, "B", shown="BA", seconds=2)  # wrong, and always the left one
    for index, comparison in enumerate(items):
        _label(comparison, good, "A" if index % 2 else "B", shown="AB")
        _label(comparison, lazy, "A", shown="AB", seconds=2)  # always the left one

    stats = {s.username: s for s in annotator_stats(project=project)}

    assert set(stats) == {"good", "lazy"}
    assert stats["good"].gold_accuracy == 1.0 and stats["good"].flags == []
    assert stats["good"].first_shown_share == 0.6  # 6 gold + 12 of 24 on the left
    assert stats["lazy"].gold_accuracy == 0.0
    assert stats["lazy"].first_shown_share == 1.0
    assert stats["lazy"].median_seconds == 2
    assert len(stats["lazy"].flags) == 3
    assert stats["good"].labels_per_hour == 120.0


def test_the_left_response_flag_counts_only_labels_that_chose_a_side(db):
    # The share of the left response is over the labels that chose A or B: an annotator with
    # many ties and few decided labels has too few to be flagged for it (as in the report).
    project = ProjectFactory(labels_per_item=3)
    tier = MembershipFactory(project=project).user
    items = ComparisonFactory.create_batch(30, project=project, route=Route.HUMAN)
    for index, comparison in enumerate(items):
        _label(comparison, tier, "A" if index < 10 else "tie", shown="AB")

    (stats,) = annotator_stats(project=project)

    assert stats.labels == 30 and stats.first_shown_share == 1.0
    assert stats.flags == []
