"""The routing_policy command, as a user runs it: settings, start, pause, one round, figures."""

import orjson
import pytest
from django.core.management import CommandError

from routing.models import RoutingPolicy
from routing.selectors import policy_figures
from tests.conftest import command_output
from tests.factories import ComparisonFactory, LMLabelFactory
from tests.routing.policy_helpers import policy_released, prior_stored, prior_tamper


def _policy(*args) -> dict:
    return orjson.loads(command_output("routing_policy", "--project", "proj", *args))


def test_create_change_and_show_a_policy(routing_project):
    prior = prior_stored("general")
    figures = _policy(
        "--budget", "20", "--unit", "labels", "--strategy", "random", "--seed-size", "4",
        "--seed-tag", "subset", "--batch-size", "2", "--refit-every", "5", "--prior", "general",
        "--prior-threshold", "7", "--max-labels-per-item", "5",
    )  # fmt: skip

    assert figures == policy_figures(routing_project).as_dict()
    assert (figures["budget_labels"], figures["strategy"], figures["seed_tag"]) == (
        20,
        "random",
        "subset",
    )
    assert (figures["prior"], figures["prior_threshold"]) == (f"general@{prior.version}", 7)
    assert (figures["max_labels_per_item"], figures["state"]) == (5, "draft")

    changed = _policy("--budget", "10", "--unit", "comparisons", "--no-prior")
    assert (changed["budget_labels"], changed["prior"], changed["batch_size"]) == (30, None, 2)
    assert _policy() == _policy("--show") == changed


def test_start_pause_and_refusals(routing_project):
    with pytest.raises(CommandError, match="has no routing policy; create one with --budget"):
        _policy("--show")
    with pytest.raises(CommandError, match="a new policy needs a budget"):
        _policy("--batch-size", "3")
    with pytest.raises(CommandError, match="no project 'nope'"):
        command_output("routing_policy", "--project", "nope", "--show")

    assert _policy("--budget", "5", "--start")["state"] == "running"
    assert _policy("--pause")["state"] == "paused"
    with pytest.raises(CommandError, match="cannot pause a policy that is paused"):
        _policy("--pause")
    with pytest.raises(CommandError, match=r"no round: the policy is paused.*--start"):
        _policy("--round")


def test_a_budget_below_what_is_committed_is_refused(routing_project):
    policy_released(routing_project, done=[0, 0], budget=10)  # 6 labels committed

    with pytest.raises(CommandError, match=r"the budget \(5 labels\) is below .* \(6 labels\)"):
        _policy("--budget", "5", "--unit", "labels")
    assert RoutingPolicy.objects.get().budget_labels == 30


def test_an_unknown_or_tampered_prior_is_refused(routing_project):
    prior = prior_stored("general")
    prior_tamper(prior)

    with pytest.raises(CommandError, match=r"--prior: .*does not match its recorded SHA-256"):
        _policy("--budget", "5", "--prior", "general")
    with pytest.raises(CommandError, match="--prior: no router prior named 'other'"):
        _policy("--budget", "5", "--prior", "other")
    assert not RoutingPolicy.objects.exists()


def test_a_round_runs_here_and_releases_the_seed(routing_project):
    for i in range(6):
        LMLabelFactory(
            comparison=ComparisonFactory(project=routing_project),
            judge_name="J",
            choice="A",
            p_a=0.5 + i / 20,
        )
    _policy("--budget", "3", "--strategy", "random", "--seed-size", "2", "--start")

    outcome = orjson.loads(command_output("routing_policy", "--project", "proj", "--round"))

    assert (outcome["round"], outcome["released"]) == (0, 2)  # round 0: the seed
    figures = _policy("--show")
    assert (figures["rounds"], figures["comparisons_released"]) == (1, 2)
    assert (figures["labels_committed"], figures["labels_left"]) == (6, 3)
    assert figures["comparisons_outstanding"] == 2
