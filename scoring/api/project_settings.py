"""Scoring's section of the project settings API (annotator.api.project_settings): the retrain
threshold and whether the reward model labels the project, kept in scoring.models.ProjectScoring.
Registered in ScoringConfig.ready()."""

from rest_framework import serializers

from annotator.api.project_settings import ProjectSettingsSection
from scoring.models import REWARD_MODEL_JUDGE
from scoring.services import project_scoring_read, project_scoring_update

# More labels than a project ever gets; the column is a 32-bit integer.
RETRAIN_EVERY_MAX = 10**7

SCORING_SECTION = ProjectSettingsSection(
    name="scoring",
    fields={
        "retrain_every": lambda: serializers.IntegerField(
            min_value=0,
            max_value=RETRAIN_EVERY_MAX,
            error_messages={"max_value": f"Must be between 0 and {RETRAIN_EVERY_MAX}."},
            help_text="Train a new reward model after this many new labels (0: never by itself).",
        ),
        "label_with_reward_model": lambda: serializers.BooleanField(
            help_text="After each reward-model run, label every comparison with the new model "
            f"(judge {REWARD_MODEL_JUDGE!r}, version run-<id>), a judge like any other "
            "(default: on).",
        ),
    },
    read=project_scoring_read,
    write=project_scoring_update,
    select_related=("scoring",),
)
