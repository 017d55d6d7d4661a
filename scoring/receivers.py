"""Scoring's receivers of the base app's signals (annotator.signals), connected in
ScoringConfig.ready()."""

from scoring.models import REWARD_MODEL_JUDGE
from scoring.training.runs import reward_retrain_count

# Labels that count toward a project's retrain threshold: new judgements, not imports.
RETRAIN_ORIGINS = ("annotator", "judge")


def retrain_on_labels_committed(
    sender, *, project_id: int, new_labels: int, origin: str, **kwargs
) -> None:
    # The reward model's own labels teach it nothing new: counted, every run would bring the
    # next one closer by the size of the project.
    if kwargs.get("judge_name") == REWARD_MODEL_JUDGE:
        return
    if origin in RETRAIN_ORIGINS:
        reward_retrain_count(project_id=project_id, new_labels=new_labels)
