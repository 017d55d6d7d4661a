"""Live routing: a policy spends its budget in rounds, learns from what it released, and the
database refuses what must never happen (a comparison released twice, a budget overspent)."""

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from annotator.models import Comparison, Route
from routing.live import PolicyError, policies_tick, policy_round, policy_save, policy_state_set
from routing.models import DecisionPurpose, PolicyState, RoutingDecision, RoutingPolicy
from tests.factories import ComparisonFactory, HumanLabelFactory, ProjectFactory


@pytest.fixture
def project(db):
    """60 comparisons judged by `judge`: its label is wrong where p_a is near 0.5."""
    project = ProjectFactory(slug="live", primary_judge="judge", labels_per_item=2)
    rng = np.random.default_rng(0)
    for i in range(60):
        p_a = float(rng.random())
        ComparisonFactory(
            project=project,
            external_id=f"c{i:02d}",
            lm_votes=[("judge", "A" if p_a > 0.5 else "B")],
        )
    Comparison.objects.filter(project=project).update(route=Route.PENDING)
    return project


def _running(project, **fields):
    settings = {"budget": 30, "seed_size": 10, "batch_size": 5, "refit_every": 5} | fields
    policy_save(project=project, **settings)
    return policy_state_set(project=project, action="start")


def _released(project) -> list[int]:
    return list(
        RoutingDecision.objects.filter(
            policy__project=project, purpose=DecisionPurpose.RELEASE
        ).values_list("comparison_id", flat=True)
    )


def _label_all_released(project, choice="A"):
    """Every released comparison gets its full human labels (labels_per_item of them)."""
    for pk in _released(project):
        comparison = Comparison.objects.get(pk=pk)
        for _ in range(project.labels_per_item - comparison.human_labels.count()):
            HumanLabelFactory(comparison=comparison, overall_choice=choice)


def test_the_seed_round_releases_the_seed_and_charges_the_budget(project):
    _running(project)
    outcome = policy_round(project_id=project.pk)
    assert (outcome.round, outcome.released) == (0, 10)
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert (policy.rounds, policy.labels_committed, policy.budget_labels) == (1, 20, 60)
    released = _released(project)
    assert Comparison.objects.filter(pk__in=released, route=Route.HUMAN).count() == 10
    # What the judge labelled and was not released keeps the LM label.
    assert Comparison.objects.filter(project=project, route=Route.LM).count() == 50


def test_no_new_batch_while_annotators_still_have_a_batch(project):
    _running(project)
    policy_round(project_id=project.pk)
    assert policy_round(project_id=project.pk).released == 0
    _label_all_released(project)
    second = policy_round(project_id=project.pk)
    assert (second.round, second.released, second.refitted) == (1, 5, True)
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert policy.router_version and policy.router_trained_on == 10
    decisions = RoutingDecision.objects.filter(policy=policy, round=1)
    assert {d.router_version for d in decisions} == {policy.router_version}
    assert all(d.reason.startswith("round 1:") and d.labels == 2 for d in decisions)


def test_the_budget_is_spent_and_never_exceeded(project):
    _running(project, budget=12, seed_size=10)
    policy_round(project_id=project.pk)
    _label_all_released(project)
    assert policy_round(project_id=project.pk).released == 2
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert policy.labels_committed == policy.budget_labels == 24
    assert policy.state == PolicyState.SPENT
    assert policy_round(project_id=project.pk) is None  # a spent policy does nothing
    assert len(_released(project)) == 12 == len(set(_released(project)))


def test_the_database_refuses_a_commitment_beyond_the_budget(project):
    _running(project, budget=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        RoutingPolicy.objects.filter(pk=project.pk).update(labels_committed=7)


def test_the_database_refuses_releasing_a_comparison_twice(project):
    _running(project)
    policy_round(project_id=project.pk)
    first = RoutingDecision.objects.filter(policy__project=project).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        RoutingDecision.objects.create(
            run=first.run,
            comparison_id=first.comparison_id + 0,
            route="human",
            strategy="x",
            strategy_version="1",
            reason="again",
            budget=1,
            policy=first.policy,
            round=5,
            purpose=DecisionPurpose.RELEASE,
        )


def test_a_paused_policy_does_nothing_and_resumes(project):
    _running(project)
    policy_state_set(project=project, action="pause")
    assert policy_round(project_id=project.pk) is None
    assert not _released(project)
    policy_state_set(project=project, action="start")
    assert policy_round(project_id=project.pk).released == 10


def test_the_budget_cannot_fall_below_what_is_committed(project):
    _running(project)
    policy_round(project_id=project.pk)
    with pytest.raises(PolicyError, match="below what is already committed"):
        policy_save(project=project, budget=5)


def test_a_failed_round_writes_nothing_and_says_why(project, monkeypatch):
    _running(project)
    RoutingPolicy.objects.filter(pk=project.pk).update(round_queued=True)

    def broken(*args, **kwargs):
        raise RuntimeError("router exploded")

    monkeypatch.setattr("routing.live.round_release", broken)
    with pytest.raises(RuntimeError):
        policy_round(project_id=project.pk)
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert "router exploded" in policy.error and not policy.round_queued
    assert (policy.rounds, policy.labels_committed) == (0, 0) and not _released(project)


def test_comparisons_without_an_lm_label_wait(project):
    waiting = ComparisonFactory(project=project, external_id="unjudged")
    _running(project, seed_size=100, budget=100)
    policy_round(project_id=project.pk)
    waiting.refresh_from_db()
    assert waiting.route == Route.PENDING and waiting.pk not in _released(project)


def test_the_tick_queues_each_running_policy_once(project, django_capture_on_commit_callbacks):
    _running(project)
    RoutingPolicy.objects.filter(pk=project.pk).update(round_queued=False)
    assert policies_tick() == 1
    assert policies_tick() == 0  # already queued


def test_a_split_vote_gets_one_more_label_charged_to_the_budget(project):
    _running(project, max_labels_per_item=3)
    policy_round(project_id=project.pk)
    first, *rest = _released(project)
    HumanLabelFactory(comparison_id=first, overall_choice="A")
    HumanLabelFactory(comparison_id=first, overall_choice="B")
    for pk in rest:
        HumanLabelFactory(comparison_id=pk, overall_choice="A")
        HumanLabelFactory(comparison_id=pk, overall_choice="A")
    outcome = policy_round(project_id=project.pk)
    assert outcome.adjudicated == 1
    decision = RoutingDecision.objects.get(purpose=DecisionPurpose.ADJUDICATE)
    assert decision.comparison_id == first and decision.labels == 1
    assert "split (1 A / 1 B" in decision.reason
    assert Comparison.objects.get(pk=first).extra_labels == 1
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert policy.labels_committed == 20 + 10 + 1  # seed, a batch of 5, one more label
    # Asked once: the next round waits for that label.
    assert policy_round(project_id=project.pk).adjudicated == 0


def test_new_labels_queue_one_round_of_a_running_policy(
    project, django_capture_on_commit_callbacks
):
    from annotator.services import project_labels_changed

    _running(project)
    RoutingPolicy.objects.filter(pk=project.pk).update(round_queued=False)
    with django_capture_on_commit_callbacks(execute=True):
        project_labels_changed(project_id=project.pk, new_labels=1, origin="annotator")
        project_labels_changed(project_id=project.pk, new_labels=1, origin="annotator")
    assert RoutingPolicy.objects.get(pk=project.pk).round_queued


@pytest.mark.slow
def test_concurrent_rounds_on_two_workers_never_double_release_nor_overspend(
    start_celery_worker, transactional_db
):
    """Two real worker processes run eight rounds of one policy at once (PostgreSQL row locks;
    SQLite serialises writers anyway): every comparison is released once, and the budget is
    spent exactly, never beyond."""
    from django.db import connection

    from routing.tasks import policy_round_task
    from tests.conftest import wait_for

    if connection.vendor != "postgresql":
        pytest.skip("two workers racing for a row lock needs PostgreSQL")
    project = ProjectFactory(slug="race", primary_judge="judge", labels_per_item=2)
    for i in range(120):
        ComparisonFactory(project=project, external_id=f"r{i:03d}", lm_votes=[("judge", "A")])
    policy_save(project=project, budget=50, seed_size=10, batch_size=40, refit_every=5)
    RoutingPolicy.objects.filter(pk=project.pk).update(state=PolicyState.RUNNING)
    workers = [start_celery_worker(), start_celery_worker()]
    for _ in range(8):
        policy_round_task.delay(project.pk)

    def finished() -> int:
        logs = "".join(w.log_path.read_text() for w in workers)
        assert "raised unexpected" not in logs, logs
        return logs.count("routing.policy_round[") // 2 >= 8  # received + succeeded

    wait_for(finished, timeout=120, what="eight rounds on two workers")
    logs = [w.log_path.read_text() for w in workers]
    assert all("succeeded" in log for log in logs), "both workers ran rounds"

    released = _released(project)
    policy = RoutingPolicy.objects.get(pk=project.pk)
    assert len(released) == len(set(released)) == 50  # the seed, then what the budget leaves
    assert policy.labels_committed == policy.budget_labels == 100
    assert policy.state == PolicyState.SPENT
    assert Comparison.objects.filter(project=project, route=Route.HUMAN).count() == 50
    charged = sum(RoutingDecision.objects.filter(policy=policy).values_list("labels", flat=True))
    assert charged == policy.labels_committed


def test_annotators_do_not_wait_for_a_round_in_progress(transactional_db, monkeypatch):
    """A round takes seconds on a large project; annotators' submits, their next comparison and
    the label commits that queue the next round must not wait for it (the round is held here
    after it has written its releases). Regressions: the round held the policy row's lock, and a
    submit locked the project row, which the round's inserts hold a key-share lock on; the
    annotate load benchmark's p95 went from about 40 ms to over 500 ms."""
    import threading

    from django.db import OperationalError, connection

    import routing.live
    from annotator.assignment import LabelAnswer, assignment_next, label_submit
    from tests.factories import MembershipFactory

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    project = ProjectFactory(slug="slow-round", primary_judge="judge", labels_per_item=2)
    for i in range(30):
        ComparisonFactory(project=project, external_id=f"s{i:02d}", lm_votes=[("judge", "A")])
    Comparison.objects.filter(project=project).update(route=Route.PENDING)
    for i in range(2):
        ComparisonFactory(project=project, external_id=f"h{i}", route=Route.HUMAN)
    user = MembershipFactory(project=project, user__username="ann").user
    lease = assignment_next(project=project, user=user)
    _running(project)
    inside, finish = threading.Event(), threading.Event()
    update = routing.live._policy_update

    def held_round(*args, **kwargs):
        inside.set()
        finish.wait(30)
        return update(*args, **kwargs)

    monkeypatch.setattr(routing.live, "_policy_update", held_round)
    outcome = []

    def round_in_thread():
        try:
            outcome.append(policy_round(project_id=project.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=round_in_thread)
    thread.start()
    try:
        assert inside.wait(30), "the round never started"
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            # The submit's commit sends labels_committed, whose receiver queues the next round
            # (send_robust: a lock timeout there would be logged and the flag left unset).
            label_submit(lease_id=lease.pk, user=user, answer=LabelAnswer(overall=1))
            assert assignment_next(project=project, user=user) is not None
        except OperationalError as exc:
            pytest.fail(f"an annotator waited for the round: {exc}")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        # The round in progress may not see this label: one more round is queued.
        assert RoutingPolicy.objects.get(pk=project.pk).round_queued
    finally:
        finish.set()
        thread.join(60)
    assert outcome and outcome[0].released == 10
