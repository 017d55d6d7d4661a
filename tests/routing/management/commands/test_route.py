"""The route command, as a user runs it."""

import orjson
import pytest
from django.core.management import CommandError

from annotator.models import Comparison
from routing.models import ComparisonFeatures, RoutingDecision
from tests.conftest import command_output
from tests.routing.conftest import comparison_record


def test_route_with_a_fraction_and_with_a_count(routing_project, import_records):
    import_records([comparison_record(i) for i in range(8)])
    summary = orjson.loads(
        command_output(
            "route", "--project", "proj", "--strategy", "random", "--budget", "0.25"
        ).splitlines()[-1]
    )
    assert (summary["human"], summary["budget"], summary["human_label_cost"]) == (2, 2, 6)
    summary = orjson.loads(
        command_output(
            "route", "--project", "proj", "--strategy", "random", "--budget", "5"
        ).splitlines()[-1]
    )
    assert summary["human"] == 5
    assert Comparison.objects.filter(route="human").count() == 5
    assert RoutingDecision.objects.count() == 16


def test_route_refuses_a_bad_budget_and_changes_nothing(routing_project, import_records):
    import_records([comparison_record(i) for i in range(3)])
    with pytest.raises(CommandError, match="--budget"):
        command_output("route", "--project", "proj", "--strategy", "random", "--budget", "1.5")
    with pytest.raises(CommandError, match="no project"):
        command_output("route", "--project", "nope", "--strategy", "random", "--budget", "1")
    assert RoutingDecision.objects.count() == 0
    assert set(Comparison.objects.values_list("route", flat=True)) == {"pending"}


@pytest.mark.slow
def test_route_learned_computes_features_and_routes_the_unlabelled(routing_project, import_records):
    # 16 labelled comparisons: the judge is wrong exactly where it is unsure (p_a 0.6).
    records = [comparison_record(i, p_a=0.95, human="A") for i in range(8)]
    records += [comparison_record(i, p_a=0.6, human="B") for i in range(8, 16)]
    records += [comparison_record(i, p_a=0.95) for i in range(16, 20)]
    records += [comparison_record(i, p_a=0.6) for i in range(20, 24)]
    import_records(records)
    summary = orjson.loads(
        command_output(
            "route", "--project", "proj", "--strategy", "learned", "--budget", "20"
        ).splitlines()[-1]
    )
    assert ComparisonFeatures.objects.count() == 24
    assert (summary["kept_human"], summary["human"]) == (16, 20)
    routed = set(
        Comparison.objects.filter(route="human", human_labels__isnull=True).values_list(
            "external_id", flat=True
        )
    )
    assert routed == {f"c{i:03d}" for i in range(20, 24)}
    values = ComparisonFeatures.objects.get(comparison__external_id="c000").values
    assert 0.0 < values["cosine"] < 1.0 and values["len_prompt"] > 0
