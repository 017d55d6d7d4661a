from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class PlatformConfig(AppConfig):
    """The project itself as an app: what every process (web, worker, command) does when Django
    starts, before anything touches the database or the broker."""

    name = "config"
    verbose_name = "Platform"

    def ready(self) -> None:
        local_dirs_create()


def local_dirs_create() -> None:
    """The folders the platform writes to, created where missing: VAR_DIR (the SQLite file),
    the filesystem broker's folders when that broker is used, and STATIC_ROOT, which WhiteNoise
    expects to exist when it serves the source folders."""
    folders = [Path(settings.VAR_DIR)]
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folders += [
            Path(options[key])
            for key in ("data_folder_in", "processed_folder", "control_folder")
            if key in options
        ]
    if not settings.STATIC_MANIFEST:
        folders.append(Path(settings.STATIC_ROOT))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
