"""`labels_committed`: the base app's news to the others, sent once labels have committed."""

import logging

import pytest
from django.db import transaction

from annotator.assignment import LabelAnswer, assignment_next, label_submit
from annotator.models import Route
from annotator.services import project_labels_changed
from annotator.signals import labels_committed
from scoring.models import ProjectScoring, RewardModelRun
from scoring.services import project_scoring_update
from tests.factories import ComparisonFactory, MembershipFactory


@pytest.fixture
def heard():
    """What `labels_committed` said, in order."""
    received = []

    def receiver(sender, **kwargs):
        received.append({k: v for k, v in kwargs.items() if k != "signal"})

    labels_committed.connect(receiver, dispatch_uid="test-heard")
    yield received
    labels_committed.disconnect(dispatch_uid="test-heard")


def _label(project, user) -> None:
    lease = assignment_next(project=project, user=user)
    label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(overall=1))


def test_a_submitted_label_is_announced_after_its_commit(
    project, heard, django_capture_on_commit_callbacks
):
    ComparisonFactory(project=project, route=Route.HUMAN)
    user = MembershipFactory(project=project, user__username="ann").user
    with django_capture_on_commit_callbacks(execute=True):
        _label(project, user)
        assert heard == []  # not while the label's transaction is open
    assert heard == [
        {"project_id": project.pk, "new_labels": 1, "origin": "annotator", "judge_name": ""}
    ]


def test_nothing_is_announced_when_the_write_rolls_back(
    project, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                project_labels_changed(project_id=project.pk, new_labels=3, origin="judge")
                raise RuntimeError("the chunk failed")
        except RuntimeError:
            pass
    assert heard == []


def test_an_unknown_origin_is_refused(project):
    with pytest.raises(ValueError, match="unknown label origin"):
        project_labels_changed(project_id=project.pk, origin="somebody")


def test_a_failing_receiver_is_logged_and_the_others_still_hear(
    project, heard, django_capture_on_commit_callbacks, caplog
):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    labels_committed.connect(broken, dispatch_uid="test-broken")
    try:
        with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
            project_labels_changed(project_id=project.pk, new_labels=1, origin="import")
    finally:
        labels_committed.disconnect(dispatch_uid="test-broken")
    assert [h["origin"] for h in heard] == ["import"]
    assert "receiver bug" in caplog.text


def test_annotator_labels_count_toward_retraining_and_imports_do_not(
    project, django_capture_on_commit_callbacks
):
    project_scoring_update(project=project, retrain_every=2)
    ComparisonFactory.create_batch(2, project=project, route=Route.HUMAN)
    with django_capture_on_commit_callbacks(execute=True):
        project_labels_changed(project_id=project.pk, new_labels=5, origin="import")
    assert not RewardModelRun.objects.exists()
    for name in ("ann-1", "ann-2"):
        with django_capture_on_commit_callbacks(execute=True):
            _label(project, MembershipFactory(project=project, user__username=name).user)
    assert RewardModelRun.objects.filter(project=project, status="queued").count() == 1
    assert ProjectScoring.objects.get(project=project).labels_since_retrain == 0
