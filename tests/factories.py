"""Rows for tests, in one place (factory-boy). Each factory builds a valid row with as little as
possible given; a test names the values its assertions depend on.

Projects and judges are made through their services (`project_create` validates, `judge_save`
gives the version), users through `create_user` (password "pw"). A comparison gets an id
`comparison-<n>` unless given one, a prompt and responses that name its id ("prompt x",
"A of x", "B of x") and the content hash an import would store.
"""

import factory
from django.conf import settings
from factory.django import DjangoModelFactory

from annotator.dataio.records import content_hash
from annotator.models import (
    Comparison,
    HumanLabel,
    ImportJob,
    LabelSource,
    LMLabel,
    Membership,
    Project,
    Role,
)
from annotator.services import project_create
from routing.models import RoutingDecision, RoutingRun
from scoring.judging.runs import judge_save
from scoring.models import Judge, JudgeRun, RewardModelRun


def _strength_for(choice: str) -> str:
    """A Tie has no strength (the database refuses one); a side is chosen clearly."""
    return "unknown" if choice == "tie" else "clearly"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = settings.AUTH_USER_MODEL

    username = factory.Sequence(lambda n: f"user-{n}")
    password = "pw"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class._default_manager.create_user(*args, **kwargs)


class ProjectFactory(DjangoModelFactory):
    """Without a name the project is named after its slug, as `project_create` does."""

    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return project_create(**kwargs)


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class ComparisonFactory(DjangoModelFactory):
    """`human_votes`: imported human labels by `h0`, `h1`, ..., each vote a choice ("A", "B",
    "tie") or a (choice, strength) pair. `lm_votes`: LM labels, each a (judge, choice) pair."""

    class Meta:
        model = Comparison
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"comparison-{n}")
    prompt = factory.LazyAttribute(lambda o: f"prompt {o.external_id}")
    response_a = factory.LazyAttribute(lambda o: f"A of {o.external_id}")
    response_b = factory.LazyAttribute(lambda o: f"B of {o.external_id}")
    content_hash = factory.LazyAttribute(
        lambda o: content_hash(o.prompt, o.response_a, o.response_b)
    )

    @factory.post_generation
    def human_votes(comparison, create, votes, **kwargs):
        for index, vote in enumerate(votes or ()):
            choice, strength = (vote, _strength_for(vote)) if isinstance(vote, str) else vote
            HumanLabelFactory(
                comparison=comparison,
                annotator_name=f"h{index}",
                overall_choice=choice,
                overall_strength=strength,
            )

    @factory.post_generation
    def lm_votes(comparison, create, votes, **kwargs):
        for judge_name, choice in votes or ():
            LMLabelFactory(comparison=comparison, judge_name=judge_name, choice=choice)


class HumanLabelFactory(DjangoModelFactory):
    """An imported label (a name, no user); PlatformLabelFactory makes one from a user."""

    class Meta:
        model = HumanLabel

    comparison = factory.SubFactory(ComparisonFactory)
    annotator_name = factory.Sequence(lambda n: f"annotator-{n}")
    source = LabelSource.IMPORTED
    overall_choice = "A"
    overall_strength = factory.LazyAttribute(lambda o: _strength_for(o.overall_choice))


class PlatformLabelFactory(HumanLabelFactory):
    annotator = factory.SubFactory(UserFactory)
    annotator_name = ""
    source = LabelSource.PLATFORM


class LMLabelFactory(DjangoModelFactory):
    """A binary judge's label: its strength is unknown unless given."""

    class Meta:
        model = LMLabel

    comparison = factory.SubFactory(ComparisonFactory)
    judge_name = "judge"
    choice = "A"
    strength = "unknown"


class ImportJobFactory(DjangoModelFactory):
    class Meta:
        model = ImportJob

    project = factory.SubFactory(ProjectFactory)
    source_name = "data.jsonl"
    stored_path = "/nowhere"
    format = "native"


class JudgeFactory(DjangoModelFactory):
    """Saved through `judge_save`, which sets the version from what changes the answers."""

    class Meta:
        model = Judge

    name = factory.Sequence(lambda n: f"judge-{n}")
    backend = Judge.Backend.HF_LOCAL

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return judge_save(judge=model_class(*args, **kwargs))


class JudgeRunFactory(DjangoModelFactory):
    class Meta:
        model = JudgeRun

    project = factory.SubFactory(ProjectFactory)
    judge = factory.SubFactory(JudgeFactory)
    judge_version = factory.LazyAttribute(lambda o: o.judge.version)


class RewardModelRunFactory(DjangoModelFactory):
    class Meta:
        model = RewardModelRun

    project = factory.SubFactory(ProjectFactory)


class RoutingRunFactory(DjangoModelFactory):
    class Meta:
        model = RoutingRun

    project = factory.SubFactory(ProjectFactory)
    strategy = "judge_confidence"
    strategy_version = "1"
    budget = 1
    labels_per_item = factory.LazyAttribute(lambda o: o.project.labels_per_item)


class RoutingDecisionFactory(DjangoModelFactory):
    """A decision of its run's strategy, within its run's budget."""

    class Meta:
        model = RoutingDecision

    run = factory.SubFactory(RoutingRunFactory)
    comparison = factory.SubFactory(
        ComparisonFactory, project=factory.SelfAttribute("..run.project")
    )
    route = "human"
    strategy = factory.SelfAttribute("run.strategy")
    strategy_version = factory.SelfAttribute("run.strategy_version")
    score = 0.5
    reason = "chosen by the test"
    budget = factory.SelfAttribute("run.budget")
