#!/usr/bin/env bash
# Every benchmark, figures printed as ratios against baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
mkdir -p build
# Measure the package as an install has it: with up-to-date bytecode (pip compiles it when installing a wheel;
# an editable install in an environment with PYTHONDONTWRITEBYTECODE set would recompile edited modules on every
# command and measure the compiler instead).
.venv/bin/python -m compileall -q jupyter_pipelines
exec .venv/bin/python benchmarks/run.py "$@"
