"""Router priors: routers fitted on other labelled projects of this installation, stored as
versioned rows (RouterPrior), so that a live policy's first rounds are not blind.

A prior reads only the features that mean the same across datasets (routing.router
TRANSFERABLE_COLUMNS). Its model is stored with skops and checked against the SHA-256 recorded
with it whenever it is loaded: a file is never unpickled.
"""

from django.db import transaction

from annotator.models import Project
from routing.models import RouterPrior
from routing.router import (
    RouterFileError,
    RouterModel,
    router_dumps,
    router_loads,
    router_sha256,
)


class PriorError(ValueError):
    """A prior that cannot be used: unknown, altered, or unfit to train."""


@transaction.atomic
def prior_save(
    *,
    name: str,
    model: RouterModel,
    source_projects: list[Project],
    feature_versions: dict[str, str],
    metrics: dict,
) -> RouterPrior:
    """Store a new version of the prior `name` (earlier versions stay for the policies that
    name them)."""
    data = router_dumps(model)
    digest = router_sha256(data)
    prior, _ = RouterPrior.objects.get_or_create(
        name=name,
        version=digest[:12],
        defaults={
            "model": data,
            "sha256": digest,
            "columns": list(model.columns),
            "source_projects": [p.slug for p in source_projects],
            "feature_versions": feature_versions,
            "metrics": metrics,
        },
    )
    return prior


def prior_latest(name: str) -> RouterPrior:
    prior = RouterPrior.objects.filter(name=name).order_by("-created_at", "-id").first()
    if prior is None:
        known = sorted(set(RouterPrior.objects.values_list("name", flat=True)))
        raise PriorError(
            f"no router prior named {name!r}"
            + (f"; known: {', '.join(known)}" if known else " (train one: manage.py train_router)")
        )
    return prior


def prior_model(prior: RouterPrior) -> RouterModel:
    """The prior's router, refused when the stored bytes were altered."""
    try:
        return router_loads(bytes(prior.model), sha256=prior.sha256)
    except RouterFileError as exc:
        raise PriorError(f"router prior {prior}: {exc}") from None


def prior_load(name: str) -> RouterModel:
    """The latest version of the prior `name`, checked (PriorError when unknown or altered)."""
    return prior_model(prior_latest(name))
