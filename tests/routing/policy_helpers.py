"""Live routing policies for the tests of what shows them (panel, API, CLI, admin): a policy with
releases written as a round writes them, without running one."""

from annotator.models import Project
from routing.live import policy_save
from routing.models import RouterPrior, RoutingPolicy
from routing.priors import prior_save
from routing.router import RouterModel
from tests.factories import ComparisonFactory, RoutingDecisionFactory, RoutingRunFactory


def policy_released(
    project: Project, *, done: list[int], budget: int = 10, unit: str = "comparisons", **fields
) -> RoutingPolicy:
    """A policy whose round 0 released len(done) comparisons, the i-th with done[i] human labels
    in; its committed labels are the releases' cost."""
    policy = policy_save(project=project, budget=budget, budget_unit=unit, **fields)
    per_item = project.labels_per_item
    run = RoutingRunFactory(
        project=project, strategy="live:learned", budget=len(done), budget_count=len(done)
    )
    for n in done:
        RoutingDecisionFactory(
            run=run,
            comparison=ComparisonFactory(project=project, labels_done=n, slots_taken=n),
            strategy=run.strategy,
            policy=policy,
            round=0,
            purpose="release",
            labels=per_item,
        )
    RoutingPolicy.objects.filter(pk=policy.pk).update(
        labels_committed=len(done) * per_item, rounds=1
    )
    policy.refresh_from_db()
    return policy


def prior_stored(name: str = "llmbar", slugs: tuple[str, ...] = ("src",)) -> RouterPrior:
    """A stored prior (a constant router: enough for whatever only names and loads it)."""
    model = RouterModel(columns=("judge_confidence",), estimator=None, constant=0.2, n_train=10)
    source = [Project(slug=slug) for slug in slugs]
    return prior_save(
        name=name,
        model=model,
        source_projects=source,
        feature_versions=dict.fromkeys(slugs, "f1-minilm"),
        metrics={"auc": 0.7, "n": 10},
    )


def prior_tamper(prior: RouterPrior) -> None:
    """Change one byte of the stored model, as someone with access to the database could."""
    data = bytearray(bytes(RouterPrior.objects.get(pk=prior.pk).model))
    data[len(data) // 2] ^= 0xFF
    RouterPrior.objects.filter(pk=prior.pk).update(model=bytes(data))
