#!/usr/bin/env bash
# The main demo, from a fresh clone: set up, then run the quickstart notebook's pipeline from the command line
# (twice: the second run comes from the cache) and in a real Jupyter kernel with the magics; then the abalone
# pipeline: its local run, the else-branch ending in the fail step, its SageMaker export, and its promotion to
# SageMaker Pipelines against a local stand-in for AWS (moto's server on 127.0.0.1, fake credentials); then a
# pipeline with a step in a container (Podman's Docker-compatible service on a private socket).
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

# Local stand-ins for the services, stopped when the demo ends.
services="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$services"; }
trap cleanup EXIT
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/python -m moto.server -H 127.0.0.1 -p "$port" >"$services/moto.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=demo-not-a-key AWS_SECRET_ACCESS_KEY=demo-not-a-secret
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
.venv/bin/python - <<'PY'
import time, boto3
for _ in range(100):
    try:
        boto3.client("s3").create_bucket(Bucket="demo-ml-bucket")
        break
    except Exception:
        time.sleep(0.1)
PY
promote=(promote "$ab" --role-arn arn:aws:iam::123456789012:role/SageMakerRole --bucket demo-ml-bucket
         --region us-east-1 --name abalone-demo)
echo; echo "== jupyter-pipelines promote $ab --wait (against moto's server on $AWS_ENDPOINT_URL, a local stand-in for AWS)"
$jp "${promote[@]}" --wait
echo; echo "== promote again: nothing to upload, the pipeline is updated; with a daily schedule"
$jp "${promote[@]}" --no-start --schedule "rate(1 day)" \
  --schedule-role-arn arn:aws:iam::123456789012:role/SchedulerRole
echo; echo "== jupyter-pipelines runs $ab --remote"; $jp runs "$ab" --remote --name abalone-demo --region us-east-1

cn=notebooks/containers.ipynb
echo; echo "== jupyter-pipelines run $cn (the 'total' step runs in a container: Podman, no network, 1 CPU, 256 MB)"
if command -v podman >/dev/null && podman image exists jupyter-pipelines-test:py3 2>/dev/null; then
  export CONTAINERS_CONF="$PWD/scripts/containers.conf"
  (cd "$services" && exec podman system service --time=0 "unix://$services/podman.sock") >"$services/podman.log" 2>&1 &
  pids+=($!)
  export DOCKER_HOST="unix://$services/podman.sock"
  for _ in $(seq 100); do [ -S "$services/podman.sock" ] && break; sleep 0.1; done
  $jp run "$cn" -v
  echo; echo "== again: the container step comes from the cache (its image id is in the key)"; $jp run "$cn"
else
  echo "demo: no container engine here (scripts/setup-containers.sh installs podman and builds the image); skipped"
fi
echo "demo: done"
