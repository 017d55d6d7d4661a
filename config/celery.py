"""The Celery application. Configuration lives in `config.settings` (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hybrid_prefs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
