"""The assignment engine: leases, overlap, skips, double submits, permissions, quality control."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, connections
from django.utils import timezone

from annotator.assignment import (
    AssignmentError,
    ComparisonFull,
    LabelAnswer,
    LeaseGone,
    NotAllowed,
    annotator_deactivate,
    assignment_next,
    assignment_skip,
    label_submit,
    leases_reclaim,
    shown_to_canonical,
)
from annotator.models import Comparison, HumanLabel, Lease, Membership, Role, Route, Skip
from annotator.services import comparisons_label_more
from tests.factories import ComparisonFactory, HumanLabelFactory, MembershipFactory, ProjectFactory

User = get_user_model()


def _project(slug="queue", n=5, labels_per_item=3, **settings):
    """Project `slug` with n comparisons routed to humans: `<slug>-0`, `<slug>-1`, ..."""
    project = ProjectFactory(slug=slug, labels_per_item=labels_per_item, **settings)
    Comparison.objects.bulk_create(
        ComparisonFactory.build(project=project, external_id=f"{slug}-{i}", route=Route.HUMAN)
        for i in range(n)
    )
    return project


def _label(project, user, overall=1, **kwargs):
    lease = assignment_next(project=project, user=user)
    assert lease is not None
    return lease, label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(overall, **kwargs))


@pytest.mark.parametrize(
    ("value", "order", "expected"),
    [
        (1, "AB", ("A", "clearly")),
        (2, "AB", ("A", "slightly")),
        (3, "AB", ("tie", "unknown")),
        (4, "AB", ("B", "slightly")),
        (5, "AB", ("B", "clearly")),
        (1, "BA", ("B", "clearly")),
        (2, "BA", ("B", "slightly")),
        (4, "BA", ("A", "slightly")),
        (5, "BA", ("A", "clearly")),
    ],
)
def test_answers_in_shown_order_are_stored_in_canonical_terms(value, order, expected):
    assert shown_to_canonical(value, order) == expected


def test_a_label_is_stored_canonically_with_its_shown_order(db):
    project = _project(ask_helpful=True)
    user = MembershipFactory(project=project).user
    lease, label = _label(
        project,
        user,
        overall=1,
        aspects={"helpful": 4},
        confidence="fairly",
        reasons=["concise", "correct", "concise"],
        rationale=" Better. ",
        time_spent_s=31.5,
    )
    first = "A" if lease.shown_order == "AB" else "B"
    second = "B" if first == "A" else "A"
    assert (label.overall_choice, label.overall_strength) == (first, "clearly")
    assert (label.helpful_choice, label.helpful_strength) == (second, "slightly")
    assert label.shown_order == lease.shown_order
    assert label.reasons == ["concise", "correct"]
    assert (label.rationale, label.time_spent_s, label.confidence) == ("Better.", 31.5, "fairly")
    assert label.guidelines_version == project.guidelines_version
    assert label.source == "platform"
    lease.refresh_from_db()
    assert lease.outcome == "submitted"


def test_the_shown_order_is_randomised_across_assignments(db):
    project = _project(n=40, labels_per_item=1)
    user = MembershipFactory(project=project).user
    orders = set()
    for _ in range(40):
        lease, _ = _label(project, user)
        orders.add(lease.shown_order)
    assert orders == {"AB", "BA"}


def test_a_live_lease_comes_back_on_reload(db):
    project = _project()
    user = MembershipFactory(project=project).user
    first = assignment_next(project=project, user=user)
    again = assignment_next(project=project, user=user)
    assert again.pk == first.pk
    assert Lease.objects.count() == 1
    assert Comparison.objects.get(pk=first.comparison_id).slots_taken == 1


def test_each_comparison_gets_labels_per_item_labels_and_then_no_more(db):
    project = _project(n=2, labels_per_item=2)
    users = [MembershipFactory(project=project).user for _ in range(3)]
    for user in users[:2]:
        _label(project, user)
        _label(project, user)
    assert assignment_next(project=project, user=users[2]) is None
    assert set(Comparison.objects.values_list("labels_done", "slots_taken")) == {(2, 2)}


def test_a_comparison_asked_for_one_more_label_is_served_again_then_stops(db):
    project = _project(n=1, labels_per_item=1)
    first, second, third = (MembershipFactory(project=project).user for _ in range(3))
    _label(project, first)
    assert assignment_next(project=project, user=second) is None  # full
    comparison = Comparison.objects.get()
    assert comparisons_label_more(comparison_ids=[comparison.pk]) == 1
    lease, label = _label(project, second)
    assert lease.comparison_id == comparison.pk and label.pk
    assert assignment_next(project=project, user=third) is None  # full again, at 2
    assert Comparison.objects.get().labels_done == 2


def test_an_annotator_never_gets_the_same_comparison_twice(db):
    project = _project(n=3, labels_per_item=3)
    user = MembershipFactory(project=project).user
    seen = [_label(project, user)[0].comparison_id for _ in range(3)]
    assert len(set(seen)) == 3
    assert assignment_next(project=project, user=user) is None


def test_closest_to_completion_first_then_oldest(db):
    project = _project(n=3, labels_per_item=3)
    a, b = MembershipFactory(project=project).user, MembershipFactory(project=project).user
    first, _ = _label(project, a)
    # b gets the comparison a already started, not a fresh one
    assert assignment_next(project=project, user=b).comparison_id == first.comparison_id


def test_experts_get_their_subjects_first(db):
    project = _project(n=4)
    Comparison.objects.filter(external_id="queue-2").update(metadata={"subject": "chemistry"})
    expert = MembershipFactory(
        project=project, annotator_type="expert", subjects=["chemistry"]
    ).user
    normal = MembershipFactory(project=project).user
    assert assignment_next(project=project, user=normal).comparison.external_id == "queue-0"
    # queue-0 is now nearest to completion, but the expert's subject comes first
    assert assignment_next(project=project, user=expert).comparison.external_id == "queue-2"


def test_only_human_routed_comparisons_are_served(db):
    project = _project(n=3)
    Comparison.objects.exclude(external_id="queue-1").update(route=Route.LM)
    user = MembershipFactory(project=project).user
    assert _label(project, user)[0].comparison.external_id == "queue-1"
    assert assignment_next(project=project, user=user) is None


def test_a_skipped_comparison_never_comes_back_to_that_annotator(db):
    project = _project(n=2, labels_per_item=3)
    user, other = MembershipFactory(project=project).user, MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    skip = assignment_skip(lease_id=lease.pk, user=user, reason="The prompt is unclear")
    assert skip.reason == "The prompt is unclear"
    assert Comparison.objects.get(pk=lease.comparison_id).slots_taken == 0

    nxt = _label(project, user)[0]
    assert nxt.comparison_id != lease.comparison_id
    assert assignment_next(project=project, user=user) is None
    # others still get it (after the comparison that is nearer to completion)
    served = [_label(project, other)[0].comparison_id for _ in range(2)]
    assert served == [nxt.comparison_id, lease.comparison_id]


def test_a_skip_needs_a_reason(db):
    project = _project()
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    with pytest.raises(AssignmentError, match="why"):
        assignment_skip(lease_id=lease.pk, user=user, reason="  ")
    assert not Skip.objects.exists()


def test_a_double_submit_creates_one_label_and_returns_it_again(db):
    project = _project()
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    first = label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(2))
    second = label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(5))
    assert second.pk == first.pk
    assert (second.overall_choice, second.overall_strength) == (
        first.overall_choice,
        first.overall_strength,
    )
    assert HumanLabel.objects.count() == 1
    assert Comparison.objects.get(pk=lease.comparison_id).labels_done == 1


def _expire(lease):
    """Move a lease's time window into the past, as if the annotator had walked away."""
    now = timezone.now()
    Lease.objects.filter(pk=lease.pk).update(
        created_at=now - timedelta(minutes=11), expires_at=now - timedelta(minutes=1)
    )


def test_an_expired_lease_is_refused_and_its_slot_reclaimed(db):
    project = _project(n=1, labels_per_item=1)
    slow, fast = MembershipFactory(project=project).user, MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=slow)
    assert assignment_next(project=project, user=fast) is None  # the only slot is held
    _expire(lease)

    cache.clear()  # as if the reclaim interval (a few seconds) had passed since the last claim
    taken = assignment_next(project=project, user=fast)  # reclaims on the way

    assert taken.comparison_id == lease.comparison_id
    lease.refresh_from_db()
    assert lease.outcome == "expired"
    with pytest.raises(LeaseGone, match="ran out"):
        label_submit(lease_id=lease.pk, user=slow, answer=LabelAnswer(1))
    label_submit(lease_id=taken.pk, user=fast, answer=LabelAnswer(1))
    assert Comparison.objects.get().labels_done == 1 == Comparison.objects.get().slots_taken


def test_the_periodic_reaper_closes_expired_leases_everywhere(db):
    project = _project()
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    _expire(lease)
    assert leases_reclaim() == 1
    assert Comparison.objects.get(pk=lease.comparison_id).slots_taken == 0
    assert leases_reclaim() == 0


def test_a_submit_on_a_full_comparison_is_refused(db):
    project = _project(n=1, labels_per_item=1)
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    # An import added the wanted label meanwhile.
    HumanLabelFactory(
        comparison_id=lease.comparison_id,
        annotator_name="imported",
        overall_choice="A",
        overall_strength="unknown",
    )
    Comparison.objects.filter(pk=lease.comparison_id).update(labels_done=1, slots_taken=2)
    with pytest.raises(ComparisonFull):
        label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1))


def test_permission_matrix(db):
    project = _project(slug="x")
    other = _project(slug="y")
    member = MembershipFactory(project=project).user
    outsider = MembershipFactory(project=other).user
    viewer = MembershipFactory(project=project, role=Role.VIEWER).user
    admin = MembershipFactory(project=project, role=Role.ADMIN).user

    with pytest.raises(NotAllowed):
        assignment_next(project=project, user=outsider)
    with pytest.raises(NotAllowed, match="Viewers"):
        assignment_next(project=project, user=viewer)
    assert assignment_next(project=project, user=admin) is not None

    lease = assignment_next(project=project, user=member)
    for intruder in (outsider, viewer, admin):
        with pytest.raises(NotAllowed, match="not assigned to you"):
            label_submit(lease_id=lease.pk, user=intruder, answer=LabelAnswer(1))
        with pytest.raises(NotAllowed):
            assignment_skip(lease_id=lease.pk, user=intruder, reason="Other")
    assert not HumanLabel.objects.exists()


def test_deactivating_an_annotator_releases_their_leases(db):
    project = _project()
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)

    assert annotator_deactivate(project=project, user=user) == 1

    lease.refresh_from_db()
    assert lease.outcome == "released"
    assert Comparison.objects.get(pk=lease.comparison_id).slots_taken == 0
    with pytest.raises(NotAllowed):
        assignment_next(project=project, user=user)
    with pytest.raises(NotAllowed):
        label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1))


def test_required_fields_are_enforced(db):
    project = _project(ask_truthful=True, require_aspects=True, require_rationale=True)
    user = MembershipFactory(project=project).user
    lease = assignment_next(project=project, user=user)
    with pytest.raises(AssignmentError, match="truthful"):
        label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1))
    with pytest.raises(AssignmentError, match="rationale"):
        label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1, aspects={"truthful": 2}))
    label_submit(
        lease_id=lease.pk,
        user=user,
        answer=LabelAnswer(1, aspects={"truthful": 2}, rationale="Because."),
    )


def _gold(project, n, choice="A"):
    Comparison.objects.bulk_create(
        ComparisonFactory.build(
            project=project,
            external_id=f"gold-{i}",
            prompt=f"gold {i}",
            response_a="right",
            response_b="wrong",
            is_gold=True,
            gold_choice=choice,
        )
        for i in range(n)
    )


def _answer_gold(project, user, right: bool):
    lease = assignment_next(project=project, user=user)
    assert lease.comparison.is_gold
    first_is_a = lease.shown_order == "AB"
    picks_first = first_is_a if right else not first_is_a
    label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1 if picks_first else 5))
    return lease


def test_qualification_comes_first_and_a_pass_opens_the_queue(db):
    project = _project(qualification_items=3, qualification_pass_percent=66)
    _gold(project, 4)
    user = MembershipFactory(project=project).user
    leases = [_answer_gold(project, user, right) for right in (True, True, False)]
    assert {lease.purpose for lease in leases} == {"qualification"}

    real = assignment_next(project=project, user=user)

    assert not real.comparison.is_gold and real.purpose == "label"
    assert Membership.objects.get(user=user).qualification == "passed"


def test_failing_the_qualification_blocks_real_items(db):
    project = _project(qualification_items=2, qualification_pass_percent=90)
    _gold(project, 2)
    user = MembershipFactory(project=project).user
    _answer_gold(project, user, True)
    _answer_gold(project, user, False)
    with pytest.raises(NotAllowed, match="qualification"):
        assignment_next(project=project, user=user)
    assert Membership.objects.get(user=user).qualification == "failed"


def test_gold_items_are_mixed_in_at_the_project_rate(db):
    project = _project(n=60, labels_per_item=1, gold_rate=0.25)
    _gold(project, 60)
    user = MembershipFactory(project=project).user
    purposes = [_label(project, user)[0].purpose for _ in range(60)]
    gold = purposes.count("gold")
    assert 5 <= gold <= 28  # 15 expected
    # gold leases do not use the comparison's human slots
    assert Comparison.objects.filter(is_gold=True, labels_done=1).count() == gold


def _work(project_id, user_id, results, errors, barrier):
    from annotator.models import Project

    try:
        project = Project.objects.get(pk=project_id)
        user = User.objects.get(pk=user_id)
        barrier.wait()
        while True:
            lease = assignment_next(project=project, user=user)
            if lease is None:
                return
            label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(2))
            results.append((lease.comparison_id, user_id))
    except Exception as exc:  # reported by the test
        errors.append(repr(exc))
    finally:
        connections.close_all()


def _intrude(user_id, stop, accepted, errors):
    """Keep trying to submit on other annotators' open leases and on expired ones."""
    try:
        user = User.objects.get(pk=user_id)
        while not stop.is_set():
            for lease in Lease.objects.exclude(annotator_id=user_id).order_by("-id")[:5]:
                try:
                    label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(1))
                    accepted.append(lease.pk)
                except NotAllowed:
                    pass
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connections.close_all()


def _run_annotators(project, users, intruder=None):
    results, errors, accepted = [], [], []
    barrier = threading.Barrier(len(users))
    stop = threading.Event()
    threads = [
        threading.Thread(target=_work, args=(project.pk, u.pk, results, errors, barrier))
        for u in users
    ]
    if intruder is not None:
        spy = threading.Thread(target=_intrude, args=(intruder.pk, stop, accepted, errors))
        spy.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    if intruder is not None:
        spy.join(timeout=30)
        assert accepted == [], "a submit on someone else's lease was accepted"
    return results, errors


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_over_assign_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel row locking needs PostgreSQL; SQLite serialises writers")
    project = _project(slug="crowd", n=300, labels_per_item=3)
    users = [MembershipFactory(project=project).user for _ in range(20)]
    intruder = MembershipFactory(project=project).user  # a member, but never holds these leases

    results, errors = _run_annotators(project, users, intruder=intruder)

    assert errors == []
    assert len(results) == 900
    per_comparison = dict(
        Comparison.objects.filter(project=project).values_list("id", "labels_done")
    )
    assert set(per_comparison.values()) == {3}
    labels = list(HumanLabel.objects.values_list("comparison_id", "annotator_id"))
    assert len(labels) == len(set(labels)) == 900
    assert not Lease.objects.filter(finished_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_on_the_serialised_sqlite_path():
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL path has its own, larger test")
    project = _project(slug="crowd", n=20, labels_per_item=2)
    users = [MembershipFactory(project=project).user for _ in range(4)]

    results, errors = _run_annotators(project, users)

    assert errors == []
    assert len(results) == 40
    assert set(Comparison.objects.values_list("labels_done", flat=True)) == {2}


@pytest.mark.django_db(transaction=True)
def test_next_and_submit_do_not_lock_the_project_row():
    """An annotator's next and submit lock their own rows only. Other transactions hold a
    key-share lock on the project row until they commit (the foreign-key check of every lease,
    label or routing run they insert); a FOR UPDATE of the project row waited for each of them,
    and serialised every annotator of the project (the membership lock joined the project through
    Membership's ordering; the submit's lease lock through select_related)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks")
    project = _project(slug="rows", n=3, labels_per_item=1)
    user = MembershipFactory(project=project).user
    held, done = threading.Event(), threading.Event()

    def key_share():  # what an insert referencing the project holds until its commit
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT 1 FROM annotator_project WHERE id = %s FOR KEY SHARE", [project.pk]
                )
                held.set()
                done.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    thread = threading.Thread(target=key_share)
    thread.start()
    try:
        assert held.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        lease = assignment_next(project=project, user=user)
        label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(overall=1))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
        done.set()
        thread.join(30)
    assert HumanLabel.objects.filter(annotator=user).count() == 1
