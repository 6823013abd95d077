#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set up, lint, type-check, test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check jupyter_pipelines tests benchmarks
.venv/bin/ruff format --check jupyter_pipelines tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# setup.sh installed a container engine and the test images (unless JP_SKIP_CONTAINERS=1): their tests must run.
if [ "${JP_SKIP_CONTAINERS:-}" != 1 ]; then export JP_REQUIRE_CONTAINERS=1; fi
.venv/bin/python -m pytest "$@"
