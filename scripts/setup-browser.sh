#!/usr/bin/env bash
# What the widget's browser tests and benchmark need beyond the package itself, idempotently: Debian's chromium,
# fonts the graph is drawn with, Graphviz's `dot` (SVG/PNG from `jupyter-pipelines graph`) and Python Playwright
# (driving that chromium; `playwright install` is never run: it downloads browsers). A second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION="1.65.2"

missing=()
for package in chromium fonts-liberation graphviz; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-browser: installing ${missing[*]} (apt-get)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup-browser: .venv is missing: run scripts/setup.sh first" >&2
  exit 2
fi
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('playwright') != '$PLAYWRIGHT_VERSION')" \
  2>/dev/null; then
  echo "setup-browser: installing playwright==$PLAYWRIGHT_VERSION into .venv"
  .venv/bin/python -m pip install --quiet "playwright==$PLAYWRIGHT_VERSION"
fi
# The widget's JupyterLab extension is built and copied into .venv by `pip install -e .`; rebuild it when its
# sources changed since (scripts/setup.sh reinstalls only when pyproject.toml or the constraints change).
stamp=.venv/.jupyter-pipelines-labextension
want="$(cd labextension && cat package.json yarn.lock tsconfig.json src/*.ts style/* | sha256sum | cut -d' ' -f1)"
installed=.venv/share/jupyter/labextensions/jupyter-pipelines/package.json
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f "$installed" ]; then
  echo "setup-browser: building and installing the JupyterLab extension (pip install -e .)"
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
echo "setup-browser: ready ($(/usr/bin/chromium --version 2>/dev/null | head -n1), $(dot -V 2>&1 | head -n1)," \
  "playwright $PLAYWRIGHT_VERSION)"
