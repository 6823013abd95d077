#!/usr/bin/env bash
# Every benchmark, figures printed as ratios against baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
mkdir -p build
exec .venv/bin/python benchmarks/run.py "$@"
