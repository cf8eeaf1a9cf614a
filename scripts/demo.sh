#!/usr/bin/env bash
# Set up (if needed), then run bids-infantage on the embedded demo dataset (five infant brain
# templates shipped in the package): participant, then group. Needs neither ../shared nor a
# network. OUT defaults to out/demo (input in OUT/bids, reports in OUT/bids-infantage).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${1:-$PWD/out/demo}
.venv/bin/bids-infantage-demo "$OUT" --nprocs "${NPROCS:-2}"
