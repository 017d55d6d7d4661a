"""The route and evaluate_routing commands, as a user runs them."""

import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotator.models import Comparison
from routing.evaluation import ROW_KEYS
from routing.models import ComparisonFeatures, RoutingDecision
from tests.routing.conftest import comparison_record


def run(name, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_route_with_a_fraction_and_with_a_count(routing_project, import_records):
    import_records([comparison_record(i) for i in range(8)])
    summary = orjson.loads(
        run("route", "--project", "proj", "--strategy", "random", "--budget", "0.25").splitlines()[
            -1
        ]
    )
    assert (summary["human"], summary["budget"], summary["human_label_cost"]) == (2, 2, 6)
    summary = orjson.loads(
        run("route", "--project", "proj", "--strategy", "random", "--budget", "5").splitlines()[-1]
    )
    assert summary["human"] == 5
    assert Comparison.objects.filter(route="human").count() == 5
    assert RoutingDecision.objects.count() == 16


def test_route_refuses_a_bad_budget_and_changes_nothing(routing_project, import_records):
    import_records([comparison_record(i) for i in range(3)])
    with pytest.raises(CommandError, match="--budget"):
        run("route", "--project", "proj", "--strategy", "random", "--budget", "1.5")
    with pytest.raises(CommandError, match="no project"):
        run("route", "--project", "nope", "--strategy", "random", "--budget", "1")
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
        run("route", "--project", "proj", "--strategy", "learned", "--budget", "20").splitlines()[
            -1
        ]
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


def test_evaluate_routing_writes_results_plot_and_table(routing_project, import_records, tmp_path):
    # Known answer: the judge is right and sure on c000-c009, wrong and order-inconsistent on
    # c010-c019 (single gold labels), so judge_confidence at budget 0.5 reaches RE 1.
    records = [comparison_record(i, lm="A", p_a=1.0, human="A") for i in range(10)]
    records += [
        comparison_record(i, lm="A", p_a=0.6, consistent=False, human="B") for i in range(10, 20)
    ]
    import_records(records)
    out = run(
        "evaluate_routing",
        "--project",
        "proj",
        "--strategies",
        "all_lm,random,judge_confidence,all_human",
        "--budgets",
        "0,0.5,1",
        "--seeds",
        "2",
        "--output",
        str(tmp_path / "eval"),
    )
    rows = orjson.loads((tmp_path / "eval" / "results.json").read_bytes())
    assert len(rows) == 4 * 3 * 2
    assert all(tuple(row) == ROW_KEYS for row in rows)
    confident = [r for r in rows if r["strategy"] == "judge_confidence" and r["budget"] == 0.5]
    assert all(r["label_accuracy"] == 1.0 and r["routing_efficiency"] == 1.0 for r in confident)
    random_half = [r for r in rows if r["strategy"] == "random" and r["budget"] == 0.5]
    for r in random_half:
        assert r["routing_efficiency"] == pytest.approx((r["label_accuracy"] - 0.5) / 0.5)
    assert (tmp_path / "eval" / "routing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "all-LM accuracy 0.500, all-human 1.000" in out
    assert "judge_confidence" in out and "RE(b) = (acc(b) - acc(0)) / (acc(1) - acc(0))" in out


def test_evaluate_routing_refuses_unknown_strategies(routing_project, tmp_path):
    with pytest.raises(CommandError, match="unknown nope"):
        run(
            "evaluate_routing",
            "--project",
            "proj",
            "--strategies",
            "random,nope",
            "--output",
            str(tmp_path),
        )


@pytest.mark.slow
def test_evaluate_routing_trains_reward_models_on_routed_labels(
    routing_project, import_records, tmp_path
):
    records = [comparison_record(i, lm="A", p_a=1.0, human="A") for i in range(12)]
    records += [
        comparison_record(i, lm="A", p_a=0.6, consistent=False, human="B") for i in range(12, 24)
    ]
    import_records(records)
    run(
        "evaluate_routing",
        "--project",
        "proj",
        "--strategies",
        "all_lm,all_human",
        "--budgets",
        "0.5",
        "--seeds",
        "1",
        "--train-rm",
        "--output",
        str(tmp_path / "rm"),
    )
    rows = orjson.loads((tmp_path / "rm" / "results.json").read_bytes())
    assert [r["strategy"] for r in rows] == ["all_lm", "all_human"]
    for row in rows:
        assert 0.0 <= row["rm_accuracy"] <= 1.0
