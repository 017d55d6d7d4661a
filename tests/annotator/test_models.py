"""Invariants held by the database itself, whatever code writes the rows."""

import pytest
from django.db import IntegrityError, transaction

from annotator.models import Comparison, HumanLabel, LMLabel, Membership
from tests.factories import (
    ComparisonFactory,
    HumanLabelFactory,
    LMLabelFactory,
    MembershipFactory,
    PlatformLabelFactory,
    UserFactory,
)


@pytest.fixture
def comparison(project):
    return ComparisonFactory(project=project, external_id="c")


def _violates(**kwargs):
    model = kwargs.pop("model")
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(**kwargs)


def _human(comparison, **overrides):
    values = {
        "model": HumanLabel,
        "comparison": comparison,
        "annotator_name": "x",
        "source": "imported",
        "overall_choice": "A",
        "overall_strength": "clearly",
    }
    return values | overrides


def test_one_label_per_annotator_name_per_comparison(comparison):
    HumanLabelFactory(comparison=comparison, annotator_name="x")
    _violates(**_human(comparison, overall_choice="B"))


def test_one_label_per_platform_user_per_comparison(comparison):
    user = UserFactory()
    PlatformLabelFactory(comparison=comparison, annotator=user)
    _violates(**_human(comparison, annotator=user, annotator_name="", source="platform"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"overall_choice": "C"},
        {"overall_strength": "hugely"},
        {"overall_choice": "tie", "overall_strength": "clearly"},
        {"helpful_choice": "A"},  # a choice without a strength
        {"helpful_strength": "slightly"},  # a strength without a choice
        {"confidence": "very"},
        {"shown_order": "AA"},
        {"time_spent_s": -1.0},
        {"annotator_type": "robot"},
        {"source": "platform"},  # a platform label needs a user
        {"annotator_name": ""},  # an imported label needs a name
    ],
)
def test_human_label_values_are_checked_by_the_database(comparison, overrides):
    _violates(**_human(comparison, **overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {"p_a": 1.5},
        {"p_a_ab": -0.1},
        {"p_a_ba": 2.0},
        {"choice": "X"},
        {"choice": "tie", "strength": "slightly"},
        {"judge_name": ""},
    ],
)
def test_lm_label_values_are_checked_by_the_database(comparison, overrides):
    values = {"comparison": comparison, "judge_name": "j", "choice": "A", "strength": "unknown"}
    _violates(model=LMLabel, **(values | overrides))


def test_one_lm_label_per_judge_version(comparison):
    LMLabelFactory(comparison=comparison, judge_name="j", judge_version="1")
    LMLabelFactory(comparison=comparison, judge_name="j", judge_version="2")
    _violates(
        model=LMLabel,
        comparison=comparison,
        judge_name="j",
        judge_version="1",
        choice="B",
        strength="unknown",
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"route": "robot"},
        {"is_gold": True},  # gold without an answer
        {"gold_choice": "C"},
        {"external_id": ""},
    ],
)
def test_comparison_values_are_checked_by_the_database(project, overrides):
    values = {
        "project": project,
        "external_id": "x",
        "prompt": "p",
        "response_a": "a",
        "response_b": "b",
    }
    _violates(model=Comparison, **(values | overrides))


def test_external_id_is_unique_within_a_project_only(project, other_project, comparison):
    ComparisonFactory(project=other_project, external_id="c")
    _violates(
        model=Comparison,
        project=project,
        external_id="c",
        prompt="q",
        response_a="a",
        response_b="b",
    )


def test_project_settings_are_checked_by_the_database(project):
    from annotator.models import Project

    _violates(model=Project, slug="zero", name="z", labels_per_item=0)
    _violates(model=Project, slug="route", name="r", default_route="robot")
    # Beyond the ranges (a lease of 2^31 minutes breaks every annotate page).
    _violates(model=Project, slug="lease", name="l", lease_minutes=7 * 24 * 60 + 1)
    _violates(model=Project, slug="many", name="m", labels_per_item=101)
    _violates(model=Project, slug="quali", name="q", qualification_items=1001)


def test_one_membership_per_user_and_project(project):
    user = MembershipFactory(project=project).user
    _violates(model=Membership, project=project, user=user, role="viewer")
    _violates(
        model=Membership,
        project=project,
        user=UserFactory(),
        role="owner",
    )


def test_every_import_format_may_be_a_background_job():
    """The database's list of job formats is the registry's (a new format needs a migration)."""
    from annotator.dataio.formats import FORMAT_CHOICES
    from annotator.models import IMPORT_FORMAT_NAMES

    assert sorted(IMPORT_FORMAT_NAMES) == sorted(FORMAT_CHOICES)


def test_a_background_job_in_a_newer_format_is_stored(project):
    from annotator.models import ImportJob

    job = ImportJob.objects.create(
        project=project, source_name="a.jsonl", stored_path="/nowhere", format="mt-bench-human"
    )
    assert job.format == "mt-bench-human"
    with pytest.raises(IntegrityError), transaction.atomic():
        ImportJob.objects.create(
            project=project, source_name="b.jsonl", stored_path="/nowhere", format="csv"
        )
