"""Celery tasks of the router: thin, ids in, one service call, imported in the body (callers
import these tasks to queue them; the worker loads the embedding model only when it runs)."""

from dataclasses import asdict

from celery import shared_task


@shared_task(name="routing.features_compute", acks_late=True, reject_on_worker_lost=True)
def features_compute_task(project_id: int, recompute: bool = False) -> dict:
    from annotator.models import Project
    from routing.features import features_compute

    # Idempotent (upserts on comparison and feature version): a redelivery only redoes work.
    # With an LM tagger configured for the project, its tags are computed here too.
    result = features_compute(project=Project.objects.get(pk=project_id), recompute=recompute)
    return asdict(result)


@shared_task(name="routing.policy_round", acks_late=True, reject_on_worker_lost=True)
def policy_round_task(project_id: int) -> dict | None:
    """One round of the project's live routing policy; idempotent (a round that finds nothing
    to do releases nothing)."""
    from routing.live import policy_round

    outcome = policy_round(project_id=project_id)
    return asdict(outcome) if outcome else None


@shared_task(name="routing.policies_tick")
def policies_tick_task() -> int:
    """Periodic: queue a round of every running policy (labels may have come in without a
    commit signal: an earlier round failed, a worker restarted)."""
    from routing.live import policies_tick

    return policies_tick()
