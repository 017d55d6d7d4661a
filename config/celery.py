"""The Celery application. Configuration lives in `config.settings` (CELERY_* names)."""

import os

from celery import Celery
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hybrid_prefs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Task log lines carry the id of the request that queued the task (settings: Logging).
app.steps["worker"].add(DjangoStructLogInitStep)
