#!/usr/bin/env bash
# Set up (if needed) and run the test suite; slow end-to-end tests are marked `slow` and
# deselected here except the demo participant + group run, which always runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TEMPLATEFLOW_HOME=${TEMPLATEFLOW_HOME:-$(cd .. && pwd)/shared/templateflow}
.venv/bin/python -m pytest -m "not slow" -q -rs --doctest-modules tests bids_infantage "$@"
