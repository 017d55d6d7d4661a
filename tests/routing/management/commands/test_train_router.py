"""The train_router command: a prior fitted on labelled projects, stored, read back, refused
when altered, and clear errors for projects it cannot learn from."""

import orjson
import pytest
from django.core.management import CommandError

from routing.features import FEATURE_VERSION
from routing.models import ComparisonFeatures, RouterPrior
from routing.priors import PriorError, prior_load
from routing.problem import TEXT_COLUMNS
from routing.router import TRANSFERABLE_COLUMNS
from tests.conftest import command_output
from tests.factories import ComparisonFactory, LMLabelFactory, ProjectFactory
from tests.routing.policy_helpers import prior_tamper


def labelled_project(slug: str, n: int = 40, *, features: bool = True, human: bool = True):
    """The judge is right where it is sure (p_a 0.95) and wrong where it hesitates (0.6)."""
    project = ProjectFactory(slug=slug, labels_per_item=1)
    for i in range(n):
        sure = i % 2 == 0
        comparison = ComparisonFactory(
            project=project, human_votes=(["A" if sure else "B"] if human else [])
        )
        LMLabelFactory(comparison=comparison, judge_name="J", choice="A", p_a=0.95 if sure else 0.6)
        if features:
            ComparisonFeatures.objects.create(
                comparison=comparison,
                version=FEATURE_VERSION,
                values={c: float(10 + i) for c in TEXT_COLUMNS},
            )
    return project


def train(*args) -> dict:
    return orjson.loads(command_output("train_router", *args))


def test_a_prior_is_stored_and_read_back(db):
    labelled_project("a")
    labelled_project("b")

    shown = train("--from-projects", "a,b", "--output", "general", "--seed", "1")

    prior = RouterPrior.objects.get()
    assert (shown["name"], shown["version"]) == ("general", prior.version)
    assert prior.source_projects == shown["source_projects"] == ["a", "b"]
    assert prior.feature_versions == {"a": FEATURE_VERSION, "b": FEATURE_VERSION}
    assert set(prior.columns) <= set(TRANSFERABLE_COLUMNS) and "judge_confidence" in prior.columns
    assert prior.metrics["n"] == 80 and prior.metrics["auc"] > 0.9  # leave one project out
    model = prior_load("general")
    assert model.columns == tuple(prior.columns) and model.n_train == 80

    # Each training is a new version; the name loads the latest, the older stays.
    again = train("--from-projects", "a", "--output", "general")
    assert RouterPrior.objects.count() == 2 and again["version"] != shown["version"]
    assert prior_load("general").n_train == 40


def test_a_tampered_prior_is_refused_on_load(db):
    labelled_project("a")
    train("--from-projects", "a", "--output", "general")
    prior_tamper(RouterPrior.objects.get())

    with pytest.raises(PriorError, match="does not match its recorded SHA-256"):
        prior_load("general")


@pytest.mark.parametrize(
    ("made", "error"),
    [
        ({"features": False}, r"40 comparisons have no text features .* --features-only"),
        ({"human": False}, "'a' has no human labels to learn from"),
        ({"n": 0}, "'a' has no LM labels"),
    ],
)
def test_projects_it_cannot_learn_from_are_refused(db, made, error):
    labelled_project("a", **made)

    with pytest.raises(CommandError, match=error):
        train("--from-projects", "a", "--output", "general")
    assert not RouterPrior.objects.exists()


def test_unknown_projects_are_named(db):
    labelled_project("a")

    with pytest.raises(CommandError, match="no project 'x', 'y'"):
        train("--from-projects", "a,x,y", "--output", "general")
