"""Routing's receivers of the base app's signals (annotator.signals), connected in
RoutingConfig.ready(): a project with a running live policy routes as labels come in."""

from contextlib import suppress

from annotator.models import Project
from routing.live import policy_round_queue
from routing.models import PolicyState, RoutingPolicy
from routing.tasks import features_compute_task


def policy_on_labels_committed(sender, *, project_id: int, origin: str, **kwargs) -> None:
    """New human or LM labels queue a (debounced) round. New comparisons (an import) first
    get their text features and their judges' labels; those labels then queue the round."""
    if not RoutingPolicy.objects.filter(pk=project_id, state=PolicyState.RUNNING).exists():
        return
    if origin == "import":
        _judge_new_comparisons(project_id)
    policy_round_queue(project_id=project_id)


def _judge_new_comparisons(project_id: int) -> None:
    from scoring.judging.runs import JudgeRunActive, judge_run_start
    from scoring.models import Judge

    features_compute_task.delay(project_id)
    project = Project.objects.get(pk=project_id)
    for judge in Judge.objects.filter(project_settings__project_id=project_id):
        # An active run labels what is new when it gets there.
        with suppress(JudgeRunActive):
            judge_run_start(project=project, judge=judge)
