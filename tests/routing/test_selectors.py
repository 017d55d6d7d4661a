"""policy_figures: the one reading of a live policy that the panel, the API and the CLI show."""

import pytest

from routing.priors import PriorError
from routing.selectors import policy_figures, prior_checked
from tests.factories import RoutingDecisionFactory, RoutingRunFactory
from tests.routing.policy_helpers import policy_released, prior_stored, prior_tamper


def test_no_policy_no_figures(routing_project):
    assert policy_figures(routing_project) is None


def test_budget_figures_of_a_policy_with_releases(routing_project):
    # 3 labels per comparison; four released: complete, one label in, none yet, over-labelled.
    policy = policy_released(routing_project, done=[3, 1, 0, 5], budget=10)

    figures = policy_figures(routing_project)

    assert (figures.budget, figures.budget_unit, figures.budget_labels) == (10, "comparisons", 30)
    assert (figures.labels_committed, figures.labels_left) == (12, 18)
    assert figures.labels_spent == 3 + 1 + 0 + 3  # at most what each comparison asked for
    assert (figures.comparisons_released, figures.comparisons_complete) == (4, 2)
    assert figures.comparisons_outstanding == 2
    assert (figures.budget_comparisons, figures.comparisons_left) == (10, 6)
    assert (figures.state, figures.rounds, figures.prior) == ("draft", 1, None)
    assert figures.live  # labels are still coming in
    assert figures.as_dict()["labels_spent"] == 7
    assert policy.labels_left == figures.labels_left


def test_an_adjudication_label_is_asked_for_and_counted(routing_project):
    policy = policy_released(routing_project, done=[4], budget=30, unit="labels")
    release = policy.decisions.get()
    RoutingDecisionFactory(
        run=RoutingRunFactory(project=routing_project, budget_count=1),
        comparison=release.comparison,
        policy=policy,
        round=1,
        purpose="adjudicate",
        labels=1,
    )

    figures = policy_figures(routing_project)

    assert (figures.labels_spent, figures.comparisons_complete) == (4, 1)
    assert (figures.budget_labels, figures.budget_comparisons) == (30, 10)


def test_a_policy_names_its_prior_and_a_tampered_prior_is_refused(routing_project):
    prior = prior_stored("general")
    policy_released(routing_project, done=[], prior=prior_checked("general"))
    assert policy_figures(routing_project).prior == f"general@{prior.version}"

    prior_tamper(prior)
    with pytest.raises(PriorError, match="SHA-256"):
        prior_checked("general")
    with pytest.raises(PriorError, match="no router prior named 'nope'; known: general"):
        prior_checked("nope")
