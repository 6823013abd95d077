#!/usr/bin/env bash
# The main demo, from a fresh clone: set up, then run the quickstart notebook's pipeline from the command line
# (twice: the second run comes from the cache) and in a real Jupyter kernel with the magics; then the abalone
# pipeline: its local run, the else-branch ending in the fail step, and its SageMaker export.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jp=.venv/bin/jupyter-pipelines
nb=notebooks/quickstart.ipynb
echo; echo "== jupyter-pipelines show $nb"; $jp show "$nb"
echo; echo "== jupyter-pipelines run $nb -p test_fraction=0.3"; $jp run "$nb" -p test_fraction=0.3
echo; echo "== again: every step comes from the cache"; $jp run "$nb" -p test_fraction=0.3
echo; echo "== jupyter-pipelines why $nb preprocess -p test_fraction=0.25"; $jp why "$nb" preprocess -p test_fraction=0.25
echo; echo "== jupyter-pipelines logs $nb train"; $jp logs "$nb" train
echo; echo "== the same notebook executed in a real kernel (magics): build/quickstart.ipynb"
mkdir -p build
.venv/bin/jupyter-execute --output=../build/quickstart "$nb" 2>&1 | grep -v "comm target" || true

ab=notebooks/abalone.ipynb
echo; echo "== jupyter-pipelines run $ab (train, evaluate, MSE condition, register, create model, transform)"
$jp run "$ab"
echo; echo "== the else-branch: a threshold no model meets ends in the fail step (exit code 1 expected)"
if $jp run "$ab" -p mse_threshold=0.001; then echo "demo: expected the fail step" >&2; exit 1; fi
echo; echo "== jupyter-pipelines export $ab -o build/abalone.json"
$jp export "$ab" -o build/abalone.json \
  --role-arn arn:aws:iam::123456789012:role/SageMakerRole --bucket my-ml-bucket --region eu-west-1
echo; echo "== jupyter-pipelines graph $ab -o build/abalone.svg"; $jp graph "$ab" -o build/abalone.svg
echo "demo: done"
