"""Settings refuse insecure starts; the embedded default needs no server."""

import subprocess
import sys

from tests.conftest import ROOT

PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
)


def _run(env: dict, tmp_path, probe: str = PROBE) -> subprocess.CompletedProcess:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", probe],
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
    # Django's start (config.apps) made the broker's folders.
    assert (tmp_path / "broker" / "queue").is_dir()


def test_reading_the_settings_writes_nothing(tmp_path):
    var = tmp_path / "var"
    probe = "import config.settings as s; print(s.DEBUG)"
    result = _run({"DEBUG": "1", "VAR_DIR": str(var)}, tmp_path, probe)
    assert result.returncode == 0, result.stderr
    assert not var.exists()


def test_the_development_key_comes_from_var_when_it_is_there(tmp_path):
    (tmp_path / "dev-secret-key").write_text("kept-development-key\n")
    probe = "from django.conf import settings; print(settings.SECRET_KEY)"
    assert _run({"DEBUG": "1"}, tmp_path, probe).stdout.strip() == "kept-development-key"
    # Without the file (scripts/run.sh writes it), each process has a random key of its own.
    (tmp_path / "dev-secret-key").unlink()
    first = _run({"DEBUG": "1"}, tmp_path, probe).stdout.strip()
    assert first and first != _run({"DEBUG": "1"}, tmp_path, probe).stdout.strip()
    assert not (tmp_path / "dev-secret-key").exists()


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


def _env_example() -> dict:
    """The active KEY=value lines of docker/env.example, as a deployment starts from them."""
    lines = (ROOT / "docker" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _server(env: dict, tmp_path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", "127.0.0.1:0"],
        env=base | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_web_server_refuses_to_start_without_allowed_hosts(tmp_path):
    result = _server({"SECRET_KEY": "k"}, tmp_path)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_a_web_server_refuses_to_start_without_a_secret_key(tmp_path):
    result = _server({"ALLOWED_HOSTS": "prefs.example.org"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_behind_a_tls_proxy_https_is_required_and_remembered(client, settings):
    settings.ALLOWED_HOSTS = ["prefs.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000

    plain = client.get("/accounts/login/", HTTP_HOST="prefs.example.org")
    assert plain.status_code == 301
    assert plain["Location"] == "https://prefs.example.org/accounts/login/"

    proxied = client.get(
        "/accounts/login/", HTTP_HOST="prefs.example.org", HTTP_X_FORWARDED_PROTO="https"
    )
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


SWITCHES = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
    "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, sep='|')"
)


def _switches(env: dict, tmp_path) -> list[str]:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", SWITCHES],
        env=base | {"VAR_DIR": str(tmp_path), "SECRET_KEY": "k"} | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().split("|")


def test_one_switch_turns_on_https_for_a_site_behind_a_tls_proxy(tmp_path):
    assert _switches({}, tmp_path) == ["None", "False", "0", "True", "True"]
    assert _switches({"BEHIND_TLS_PROXY": "1"}, tmp_path) == [
        "('HTTP_X_FORWARDED_PROTO', 'https')",
        "True",
        "31536000",
        "True",
        "True",
    ]
    # Each part can still be set on its own.
    assert _switches({"BEHIND_TLS_PROXY": "1", "SECURE_HSTS_SECONDS": "600"}, tmp_path)[2] == "600"


def test_the_production_example_passes_the_deployment_checks(tmp_path):
    env = _env_example() | {
        "SECRET_KEY": "fT3q-" + "x9Lm2Pz7Rk4Vw8Nc6Hb1Jd5Gs0Yt3Qe" * 2,
        "PATH": "/usr/bin:/bin",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    # A plain-http setup is flagged, so that the check does look at these settings.
    plain = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env | {"BEHIND_TLS_PROXY": "0"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode != 0
    assert "SECURE_HSTS_SECONDS" in plain.stderr


def test_log_format_is_json_or_plain(tmp_path):
    result = _run({"SECRET_KEY": "k", "LOG_FORMAT": "xml"}, tmp_path)
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or plain" in result.stderr


def _manage(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_code_only_commands_run_without_a_secret_but_nothing_else_does(tmp_path):
    checked = _manage(["makemigrations", "--check", "--dry-run"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "No changes detected" in checked.stdout
    refused = _manage(["migrate", "--plan"], tmp_path)
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
