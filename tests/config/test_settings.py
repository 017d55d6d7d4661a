"""Settings refuse insecure starts; the embedded default needs no server."""

import subprocess
import sys

from tests.conftest import ROOT

PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
)


def _run(env: dict, tmp_path) -> subprocess.CompletedProcess:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=base | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _run({}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_is_off_unless_asked(tmp_path):
    result = _run({"SECRET_KEY": "k"}, tmp_path)
    assert result.stdout.split()[0] == "False"


def test_embedded_default_is_sqlite_and_a_filesystem_broker(tmp_path):
    result = _run({"DEBUG": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3", "filesystem://"]
    assert (tmp_path / "broker" / "queue").is_dir()
    # The development key is generated once and kept.
    key = (tmp_path / "dev-secret-key").read_text()
    _run({"DEBUG": "1"}, tmp_path)
    assert (tmp_path / "dev-secret-key").read_text() == key


def test_database_and_broker_come_from_the_environment(tmp_path):
    result = _run(
        {
            "SECRET_KEY": "k",
            "DATABASE_URL": "postgres://u@db.example:5432/prefs",
            "CELERY_BROKER_URL": "redis://cache.example:6379/0",
        },
        tmp_path,
    )
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "redis://cache.example:6379/0",
    ]
