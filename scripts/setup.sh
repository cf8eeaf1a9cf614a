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
if [ "${SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "setup: chromium could not be installed; the report screenshot test will be skipped"
fi
