#!/usr/bin/env bash
# Set up everything the demo and the tests need, idempotently: a virtualenv in .venv with the package (editable)
# and its pinned test dependencies. Safe to run again; a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: jupyter-pipelines needs Python >= 3.10; $("$PYTHON" --version) found. Set PYTHON=/path/to/python3.10+." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.jupyter-pipelines-setup
want="$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the package and its pinned dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c requirements/constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi
# The widget's browser tests: Debian chromium, fonts, graphviz, Playwright, and a fresh labextension build.
bash scripts/setup-browser.sh
# The container executor's tests: Podman with runc and two local test images (no registry needed).
bash scripts/setup-containers.sh
echo "setup: ready ($(.venv/bin/python --version), $(.venv/bin/jupyter-pipelines --help >/dev/null && echo 'jupyter-pipelines installed'))"
