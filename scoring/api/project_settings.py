"""Scoring's section of the project settings API (annotator.api.project_settings): the retrain
threshold, kept in scoring.models.ProjectScoring. Registered in ScoringConfig.ready()."""

from rest_framework import serializers

from annotator.api.project_settings import ProjectSettingsSection
from scoring.services import project_scoring_read, project_scoring_update

SCORING_SECTION = ProjectSettingsSection(
    name="scoring",
    fields={
        "retrain_every": lambda: serializers.IntegerField(
            min_value=0,
            help_text="Train a new reward model after this many new labels (0: never by itself).",
        )
    },
    read=project_scoring_read,
    write=project_scoring_update,
    select_related=("scoring",),
)
