"""Writes on a project's scoring settings (scoring.models.ProjectScoring). Each owns its
transaction."""

from django.db import IntegrityError, transaction

from annotator.models import Project
from scoring.models import ProjectScoring


def project_scoring(*, project: Project) -> ProjectScoring:
    """The project's scoring settings, created with the defaults on first use."""
    found = ProjectScoring.objects.filter(project=project).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return ProjectScoring.objects.create(project=project)
    except IntegrityError:  # created meanwhile by another request
        return ProjectScoring.objects.get(project=project)


def project_scoring_read(project: Project) -> dict:
    """The settings the project API shows beside the project's own (the model's defaults where
    the project has none stored)."""
    try:
        stored = project.scoring
    except ProjectScoring.DoesNotExist:
        stored = ProjectScoring(project=project)
    return {
        "retrain_every": stored.retrain_every,
        "label_with_reward_model": stored.label_with_reward_model,
    }


@transaction.atomic
def project_scoring_update(*, project: Project, **fields) -> ProjectScoring:
    settings = ProjectScoring.objects.select_for_update().filter(project=project).first()
    settings = settings or project_scoring(project=project)
    for name, value in fields.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["project", "judges"])
    settings.save(update_fields=[*fields] or None)
    return settings
