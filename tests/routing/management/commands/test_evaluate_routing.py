"""The evaluate_routing command, as a user runs it."""

import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from routing.evaluation import ROW_KEYS
from routing.models import ComparisonFeatures
from tests.conftest import command_output
from tests.routing.conftest import comparison_record


def test_evaluate_routing_writes_results_plot_and_table(routing_project, import_records, tmp_path):
    # Known answer: the judge is right and sure on c000-c009, wrong and order-inconsistent on
    # c010-c019 (single gold labels), so judge_confidence at budget 0.5 reaches RE 1.
    records = [comparison_record(i, lm="A", p_a=1.0, human="A") for i in range(10)]
    records += [
        comparison_record(i, lm="A", p_a=0.6, consistent=False, human="B") for i in range(10, 20)
    ]
    import_records(records)
    out = command_output(
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
    assert {r["protocol"] for r in rows} == {"online"}  # the default
    assert "all-LM accuracy 0.500, all-human 1.000" in out
    assert "judge_confidence" in out and "RE(b) = (acc(b) - acc(0)) / (acc(1) - acc(0))" in out


def test_evaluate_routing_refuses_unknown_strategies(routing_project, tmp_path):
    with pytest.raises(CommandError, match="unknown nope"):
        command_output(
            "evaluate_routing",
            "--project",
            "proj",
            "--strategies",
            "random,nope",
            "--output",
            str(tmp_path),
        )


def _judged(n: int = 60) -> list[dict]:
    """The judge is wrong exactly where it is unsure and order-inconsistent (every fourth)."""
    return [
        comparison_record(i, lm="A", p_a=0.55, consistent=False, human="B")
        if i % 4 == 0
        else comparison_record(i, lm="A", p_a=0.95, human="A")
        for i in range(n)
    ]


def test_evaluate_routing_computes_missing_features_then_measures_each_protocol(
    routing_project, import_records, tmp_path
):
    import_records(_judged())
    assert not ComparisonFeatures.objects.exists()
    err = io.StringIO()
    call_command(
        "evaluate_routing",
        "--project",
        "proj",
        "--strategies",
        "random,learned,hyper_topk",
        "--protocol",
        "online,cross-fit",
        "--budgets",
        "0.25,0.5",
        "--seeds",
        "2",
        "--seed-fraction",
        "0.1",
        "--batch-fraction",
        "0.05",
        "--ppm-candidates",
        "30",
        "--output",
        str(tmp_path / "eval"),
        stdout=(out := io.StringIO()),
        stderr=err,
    )
    assert ComparisonFeatures.objects.count() == 60
    assert "computing the text features of 60 comparisons" in err.getvalue()
    assert "60/60 comparisons of proj" in err.getvalue()  # progress
    rows = orjson.loads((tmp_path / "eval" / "results.json").read_bytes())
    measured = {(r["protocol"], r["strategy"]) for r in rows}
    assert measured == {
        ("online", "random"),
        ("online", "learned"),
        ("cross-fit", "random"),
        ("cross-fit", "learned"),
        ("cross-fit", "hyper_topk"),
    }
    online = [r for r in rows if r["protocol"] == "online" and r["strategy"] == "learned"]
    # Seed 6 + rounds of 3: by 50% every wrong LM label has been found.
    assert all(r["label_accuracy"] == 1.0 for r in online if r["budget"] == 0.5)
    assert "hyper_topk under online" in out.getvalue()


def test_evaluate_routing_refuses_a_project_without_lm_labels(
    routing_project, import_records, tmp_path
):
    import_records([comparison_record(i, lm=None, human="A") for i in range(5)])
    with pytest.raises(CommandError, match="project 'proj' has no LM label to route on"):
        command_output("evaluate_routing", "--project", "proj", "--output", str(tmp_path))


def test_evaluate_routing_transfer_needs_a_prior(routing_project, import_records, tmp_path):
    import_records(_judged(8))
    with pytest.raises(CommandError, match="--prior"):
        command_output(
            "evaluate_routing",
            "--project",
            "proj",
            "--protocol",
            "transfer",
            "--output",
            str(tmp_path),
        )


def test_evaluate_routing_refuses_unknown_protocols(routing_project, tmp_path):
    with pytest.raises(CommandError, match="unknown bandit"):
        command_output(
            "evaluate_routing",
            "--project",
            "proj",
            "--protocol",
            "bandit",
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
    command_output(
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


@pytest.fixture
def stored_prior(db):
    """A prior fitted on other, synthetic projects, stored as train_router stores one."""
    from routing.online import prior_fit
    from routing.priors import prior_save
    from routing.problem import problem_build
    from tests.routing.test_online import inputs_for

    sources = [problem_build(inputs_for(seed=s), seed=0) for s in (1, 2)]
    model, metrics = prior_fit(sources, seed=0)
    return prior_save(
        name="elsewhere", model=model, source_projects=[], feature_versions={}, metrics=metrics
    )


def test_evaluate_routing_transfers_a_stored_prior(
    routing_project, import_records, stored_prior, tmp_path
):
    import_records(_judged(40))
    out = command_output(
        "evaluate_routing",
        "--project",
        "proj",
        "--strategies",
        "random,learned",
        "--protocol",
        "transfer,online",
        "--prior",
        "elsewhere",
        "--budgets",
        "0.25",
        "--seeds",
        "1",
        "--output",
        str(tmp_path / "eval"),
    )
    rows = orjson.loads((tmp_path / "eval" / "results.json").read_bytes())
    assert {(r["protocol"], r["strategy"]) for r in rows} == {
        ("transfer", "random"),
        ("transfer", "learned"),
        ("online", "random"),
        ("online", "learned"),
    }
    transfer = next(r for r in rows if (r["protocol"], r["strategy"]) == ("transfer", "learned"))
    # The prior learned that an unsure judge errs: it sends the 10 unsure comparisons first.
    assert transfer["label_accuracy"] == 1.0
    assert "transfer" in out


def test_evaluate_routing_refuses_an_unknown_or_altered_prior(
    routing_project, import_records, stored_prior, tmp_path
):
    import_records(_judged(8))
    args = ["evaluate_routing", "--project", "proj", "--protocol", "transfer"]
    with pytest.raises(CommandError, match="--prior: no router prior named 'nope'"):
        command_output(*args, "--prior", "nope", "--output", str(tmp_path))
    data = bytearray(stored_prior.model)
    data[len(data) // 2] ^= 0xFF
    stored_prior.model = bytes(data)
    stored_prior.save()
    with pytest.raises(CommandError, match="altered"):
        command_output(*args, "--prior", "elsewhere", "--output", str(tmp_path))
