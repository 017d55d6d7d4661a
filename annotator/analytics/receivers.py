"""The analytics' receiver of `labels_committed` (annotator.signals): mark the cached report
stale and queue one debounced refresh. Connected in AnnotatorConfig.ready()."""

import logging

from django.conf import settings

from annotator.analytics.report import analytics_labels_changed, analytics_queue_cleared
from annotator.analytics.tasks import analytics_refresh_task

logger = logging.getLogger(__name__)


def analytics_on_labels_committed(sender, *, project_id: int, **kwargs) -> None:
    """A burst of labels queues one refresh. A broker that is down does not fail the write:
    the next change queues the refresh again."""
    if not analytics_labels_changed(project_id=project_id):
        return
    try:
        analytics_refresh_task.apply_async(
            (project_id,), countdown=settings.ANALYTICS_DEBOUNCE_SECONDS
        )
    except Exception:
        logger.exception("could not queue the analytics refresh of project %s", project_id)
        analytics_queue_cleared(project_id=project_id)
