#!/usr/bin/env bash
# Set up (if needed), then run bids-infantage on ../shared/demo_bids: participant, then group.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${1:-$PWD/out/demo}
WORK=${2:-$PWD/work/demo}
.venv/bin/bids-infantage ../shared/demo_bids "$OUT" participant -w "$WORK" --nprocs 2
.venv/bin/bids-infantage ../shared/demo_bids "$OUT" group -w "$WORK"
echo "Reports: $OUT/sub-*.html and $OUT/group.html"
