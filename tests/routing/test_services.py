import numpy as np
import pytest
from django.db import DatabaseError, transaction

from annotator.models import Comparison
from routing.models import RoutingDecision, RoutingRun
from routing.services import Budget, RoutingError, routing_run_create
from tests.factories import HumanLabelFactory, MembershipFactory
from tests.routing.conftest import comparison_record


def _ten(import_records):
    # c000..c009, confidence falling with the index: judge_confidence takes the last ones first.
    import_records([comparison_record(i, p_a=round(0.99 - 0.04 * i, 2)) for i in range(10)])


def routes() -> dict[str, str]:
    return dict(Comparison.objects.order_by("external_id").values_list("external_id", "route"))


@pytest.mark.parametrize(
    ("text", "fraction", "count"),
    [("0.3", 0.3, None), ("30%", 0.3, None), ("1.0", 1.0, None), ("3", None, 3), ("0", None, 0)],
)
def test_budget_reads_a_fraction_or_a_count(text, fraction, count):
    assert Budget.parse(text) == Budget(fraction=fraction, count=count)


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "", "150%"])
def test_budget_refuses_nonsense(text):
    with pytest.raises(RoutingError):
        Budget.parse(text)


def test_fraction_budget_routes_that_share_and_sets_the_route(routing_project, import_records):
    _ten(import_records)
    run = routing_run_create(
        project=routing_project, strategy="judge_confidence", budget=Budget.parse("0.3")
    )
    assert (run.budget, run.human, run.lm, run.total) == (3, 3, 7, 10)
    # Human cost counts labels_per_item labels per human-routed comparison.
    assert run.human_label_cost == 9
    assert [k for k, v in routes().items() if v == "human"] == ["c007", "c008", "c009"]
    decisions = RoutingDecision.objects.filter(run=run)
    assert decisions.count() == 10
    one = decisions.get(comparison__external_id="c009")
    assert (one.route, one.strategy, one.strategy_version, one.budget) == (
        "human",
        "judge_confidence",
        "1",
        3,
    )
    assert "orders agree" in one.reason and "within the budget" in one.reason
    assert one.score > decisions.get(comparison__external_id="c000").score


def test_count_budget_routes_that_many(routing_project, import_records):
    _ten(import_records)
    run = routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("4"))
    assert (run.budget_count, run.budget_fraction, run.human) == (4, None, 4)
    assert list(routes().values()).count("human") == 4
    big = routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("50"))
    assert (big.budget, big.human) == (10, 10)


def test_rerouting_keeps_human_labelled_comparisons_and_appends(routing_project, import_records):
    _ten(import_records)
    first = routing_run_create(
        project=routing_project, strategy="judge_confidence", budget=Budget.parse("0.2")
    )
    before = list(RoutingDecision.objects.filter(run=first).values_list("id", "route", "reason"))
    # A human labels c000, which the first run left to the LM.
    assert routes()["c000"] == "lm"
    HumanLabelFactory(
        comparison=Comparison.objects.get(external_id="c000"),
        annotator_name="ann-1",
        overall_choice="A",
        overall_strength="unknown",
    )
    second = routing_run_create(
        project=routing_project, strategy="judge_confidence", budget=Budget.parse("0.2")
    )
    assert routes()["c000"] == "human"
    assert (second.human, second.kept_human) == (2, 1)
    kept = RoutingDecision.objects.get(run=second, comparison__external_id="c000")
    assert kept.reason == "already human-labelled: stays human"
    assert [k for k, v in routes().items() if v == "human"] == ["c000", "c009"]
    # The first run's decisions are untouched; the second added its own.
    assert (
        list(RoutingDecision.objects.filter(run=first).values_list("id", "route", "reason"))
        == before
    )
    assert RoutingDecision.objects.count() == 20
    assert RoutingRun.objects.count() == 2


def test_labelled_comparisons_stay_human_even_over_budget(routing_project, import_records):
    import_records(
        [comparison_record(i, human="A") for i in range(3)]
        + [comparison_record(i) for i in range(3, 6)]
    )
    run = routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("1"))
    assert (run.budget, run.human, run.kept_human) == (1, 3, 3)
    assert run.summary["over_budget"] == 2


def test_decisions_are_append_only_in_the_database(routing_project, import_records):
    _ten(import_records)
    routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("0.5"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        RoutingDecision.objects.filter(route="human").update(route="lm")
    assert RoutingDecision.objects.filter(route="human").count() == 5


def test_all_human_needs_no_budget_and_all_lm_routes_none(routing_project, import_records):
    _ten(import_records)
    run = routing_run_create(project=routing_project, strategy="all_human", budget=None)
    assert (run.human, run.budget) == (10, 10)
    run = routing_run_create(project=routing_project, strategy="all_lm", budget=None)
    assert run.human == 0 and set(routes().values()) == {"lm"}


def test_learning_strategies_need_labels_and_features(routing_project, import_records):
    _ten(import_records)
    with pytest.raises(RoutingError, match="no features"):
        routing_run_create(project=routing_project, strategy="learned", budget=Budget.parse("0.2"))
    with pytest.raises(RoutingError, match="needs a budget"):
        routing_run_create(project=routing_project, strategy="random", budget=None)
    assert RoutingRun.objects.count() == 0


def test_gold_comparisons_are_not_routed(routing_project, import_records):
    records = [comparison_record(i) for i in range(4)]
    records[0]["gold"] = "A"
    import_records(records)
    Comparison.objects.filter(external_id="c000").update(is_gold=True)
    run = routing_run_create(project=routing_project, strategy="all_human", budget=None)
    assert run.total == 3
    assert routes()["c000"] == "pending"


def test_expected_accuracy_from_labelled_comparisons(routing_project, import_records):
    # 20 labelled: the LM is right on the confident ones, wrong on the unsure ones.
    records = [comparison_record(i, p_a=0.95, human="A") for i in range(10)]
    records += [comparison_record(i, p_a=0.55, human="B") for i in range(10, 20)]
    records += [comparison_record(i, p_a=0.95) for i in range(20, 30)]
    import_records(records)
    run = routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("0.7"))
    assert run.summary["labelled"] == 20
    assert run.expected_label_accuracy is not None
    assert 0.0 <= run.expected_label_accuracy <= 1.0
    assert np.isclose(run.human / run.total, 0.7)


def test_a_comparison_an_annotator_holds_stays_human(routing_project, import_records):
    from annotator.assignment import assignment_next

    _ten(import_records)
    routing_run_create(project=routing_project, strategy="random", budget=Budget.parse("1"))
    held = Comparison.objects.get(route="human")
    membership = MembershipFactory(project=routing_project)
    lease = assignment_next(project=routing_project, user=membership.user, membership=membership)
    assert lease.comparison_id == held.pk
    run = routing_run_create(project=routing_project, strategy="all_lm", budget=None)
    assert (run.human, run.kept_human) == (1, 1)
    assert Comparison.objects.get(pk=held.pk).route == "human"
    decision = RoutingDecision.objects.get(run=run, comparison=held)
    assert decision.reason == "being labelled (an annotator holds it): stays human"
