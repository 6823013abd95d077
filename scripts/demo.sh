#!/usr/bin/env bash
# The main demo, from a fresh clone: set up, then run the quickstart notebook's pipeline from the command line
# (twice: the second run comes from the cache) and in a real Jupyter kernel with the magics.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
nb=notebooks/quickstart.ipynb
echo; echo "== jupyter-pipelines show $nb"; .venv/bin/jupyter-pipelines show "$nb"
echo; echo "== jupyter-pipelines run $nb -p test_fraction=0.3"; .venv/bin/jupyter-pipelines run "$nb" -p test_fraction=0.3
echo; echo "== again: every step comes from the cache"; .venv/bin/jupyter-pipelines run "$nb" -p test_fraction=0.3
echo; echo "== jupyter-pipelines logs $nb evaluate"; .venv/bin/jupyter-pipelines logs "$nb" train
echo; echo "== the same notebook executed in a real kernel (magics), output in build/quickstart.out.ipynb"
mkdir -p build
.venv/bin/jupyter-execute --output=../build/quickstart.out "$nb" 2>&1 | tail -n 3 || .venv/bin/jupyter-execute "$nb"
echo "demo: done"
