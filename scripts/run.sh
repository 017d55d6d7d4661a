#!/usr/bin/env bash
# Set up and run the platform on the embedded default: SQLite and a filesystem Celery broker under
# var/, so no server is needed. Creates .venv, installs, migrates, seeds the demo project, then
# runs a Celery worker and the web server until Ctrl-C. Set DATABASE_URL / CELERY_BROKER_URL to
# use PostgreSQL and Redis instead.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DEBUG=${DEBUG:-1}

scripts/install.sh ml

# Development only: a secret key kept under var/ so that logins survive restarts.
var=${VAR_DIR:-var}
mkdir -p "$var"
if [ ! -s "$var/dev-secret-key" ]; then
  (umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" >"$var/dev-secret-key")
fi

.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py seed_demo --url "http://$HOST:$PORT/"

# -B: the periodic jobs (expired-lease reaper) run inside this one development worker.
.venv/bin/celery -A config worker -B --schedule "$var/celerybeat-schedule" -Q default,gpu \
  --pool=solo --loglevel=INFO \
  >"$var/worker.log" 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT
echo "Celery worker running (pid $worker, log $var/worker.log)."

.venv/bin/python manage.py runserver "$HOST:$PORT"
