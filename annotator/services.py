"""Write operations on projects and members. Each owns its transaction."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from annotator.labels import AnnotatorType
from annotator.models import Comparison, Membership, Project, Role, Route
from annotator.signals import LABEL_ORIGINS, labels_committed

User = get_user_model()


@transaction.atomic
def project_create(
    *, slug: str, name: str = "", description: str = "", guidelines: str = "", **settings
) -> Project:
    project = Project(
        slug=slug, name=name or slug, description=description, guidelines=guidelines, **settings
    )
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def project_guidelines_update(*, project: Project, guidelines: str) -> Project:
    """Replace the guidelines; the version goes up only when the text really changes."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.guidelines != guidelines:
        Project.objects.filter(pk=locked.pk).update(
            guidelines=guidelines, guidelines_version=F("guidelines_version") + 1
        )
    locked.refresh_from_db()
    return locked


@transaction.atomic
def membership_set(
    *,
    project: Project,
    user,
    role: str = Role.ANNOTATOR,
    annotator_type: str = AnnotatorType.NORMAL,
    subjects: list[str] | None = None,
) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        project=project,
        user=user,
        defaults={
            "role": role,
            "annotator_type": annotator_type,
            "subjects": subjects or [],
            "is_active": True,
        },
    )
    return membership


def project_labels_changed(
    *, project_id: int, new_labels: int = 0, origin: str, judge_name: str = ""
) -> None:
    """Call where labels of the project are written, inside the writing transaction: once it
    commits, `labels_committed` is sent (annotator.signals), and the analytics refresh, the
    retrain counter and the live router hear of it."""
    if origin not in LABEL_ORIGINS:
        raise ValueError(f"unknown label origin {origin!r}; expected one of {LABEL_ORIGINS}")
    transaction.on_commit(
        lambda: labels_committed.send_robust(
            sender=Project,
            project_id=project_id,
            new_labels=new_labels,
            origin=origin,
            judge_name=judge_name,
        )
    )


def comparisons_label_more(*, comparison_ids: list[int], extra: int = 1) -> int:
    """Ask humans for `extra` more labels on these human-routed comparisons (an adjudication):
    they go back to the annotator queue until the new labels arrive. Returns how many changed.
    The caller owns the transaction (a routing round charges the labels to its budget)."""
    return Comparison.objects.filter(id__in=comparison_ids, route=Route.HUMAN).update(
        extra_labels=F("extra_labels") + extra
    )
