#!/usr/bin/env bash
# Set up and run the whole test suite. Uses SQLite and the filesystem broker unless DATABASE_URL
# and CELERY_BROKER_URL are set (CI sets them to PostgreSQL and Redis). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev,ml]"

exec .venv/bin/pytest "$@"
