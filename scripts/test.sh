#!/usr/bin/env bash
# Set up and run the whole test suite. Uses SQLite and the filesystem broker unless DATABASE_URL
# and CELERY_BROKER_URL are set (CI sets them to PostgreSQL and Redis). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh dev,ml,flower  # flower: the compose tests check its command
exec .venv/bin/pytest "$@"
