"""The one rule that flags an annotator far off the rest (annotators page and analytics report)."""

from annotator.analytics.flags import (
    COMPETENCE_GAP,
    MIN_LABELS_FOR_BIAS,
    AnnotatorFigures,
    annotator_flags,
)


def _figures(**changes) -> AnnotatorFigures:
    fields = dict(
        labels=40,
        gold_labels=10,
        gold_accuracy=0.9,
        decided_labels=30,
        left_share=0.5,
        median_seconds=30.0,
        competence=None,
    )
    return AnnotatorFigures(**{**fields, **changes})


def test_an_annotator_like_the_rest_has_no_flag():
    team = annotator_flags([_figures(), _figures(median_seconds=40.0)])
    assert team.flags == [[], []]
    assert team.median_seconds == 35.0 and team.competence is None


def test_each_flag_with_its_message():
    team = annotator_flags(
        [
            _figures(gold_accuracy=0.5),
            _figures(left_share=0.9),
            _figures(left_share=0.1),
            _figures(median_seconds=2.0),
            _figures(),
        ]
    )
    assert team.flags == [
        ["gold accuracy 50%"],
        ["picks the left response 90% of the time"],
        ["picks the left response 10% of the time"],
        ["median 2s per label vs 30s for the team"],
        [],
    ]


def test_a_flag_needs_enough_labels_to_mean_much():
    team = annotator_flags(
        [
            _figures(gold_labels=4, gold_accuracy=0.0),
            # Many labels but few that chose a side: the share of the decided ones says little.
            _figures(labels=40, decided_labels=MIN_LABELS_FOR_BIAS - 1, left_share=1.0),
        ]
    )
    assert team.flags == [[], []]


def test_speed_needs_a_team_to_compare_with():
    assert annotator_flags([_figures(median_seconds=1.0)]).flags == [[]]
    # Only one annotator's time is known: no team median to be far below.
    alone = annotator_flags([_figures(median_seconds=1.0), _figures(median_seconds=None)])
    assert alone.flags == [[], []]


def test_competence_far_below_the_team_with_enough_labels():
    team = annotator_flags(
        [
            _figures(competence=0.9),
            _figures(competence=0.88),
            _figures(competence=0.91),
            _figures(competence=0.9 - COMPETENCE_GAP - 0.3),
            _figures(competence=0.1, labels=5),  # too few labels to count
        ]
    )
    assert team.competence == 0.89
    assert team.flags[3] == ["Dawid-Skene accuracy 45% vs 89% for the team"]
    assert team.flags[:3] == [[], [], []] and team.flags[4] == []


def test_competence_flags_need_three_annotators_and_come_first():
    assert annotator_flags([_figures(competence=0.9), _figures(competence=0.2)]).flags == [[], []]
    team = annotator_flags(
        [_figures(competence=c) for c in (0.9, 0.9, 0.9)]
        + [_figures(competence=0.3, gold_accuracy=0.2)]
    )
    assert team.flags[3] == ["Dawid-Skene accuracy 30% vs 90% for the team", "gold accuracy 20%"]
