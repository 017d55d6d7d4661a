"""Write operations on projects and members. Each owns its transaction."""

import logging

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from annotator.labels import AnnotatorType
from annotator.models import Membership, Project, Role

User = get_user_model()
logger = logging.getLogger(__name__)


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


def project_labels_changed(*, project_id: int) -> None:
    """Call where labels of the project are written, inside the writing transaction: once it
    commits, the cached analytics are marked stale and one debounced refresh is queued (a burst
    of labels queues one). A broker that is down does not fail the write: the next change
    queues the refresh again."""

    def after_commit() -> None:
        from annotator.analytics.report import analytics_labels_changed, analytics_queue_cleared
        from annotator.analytics.tasks import analytics_refresh_task

        if not analytics_labels_changed(project_id=project_id):
            return
        try:
            analytics_refresh_task.apply_async(
                (project_id,), countdown=django_settings.ANALYTICS_DEBOUNCE_SECONDS
            )
        except Exception:
            logger.exception("could not queue the analytics refresh of project %s", project_id)
            analytics_queue_cleared(project_id=project_id)

    transaction.on_commit(after_commit)
