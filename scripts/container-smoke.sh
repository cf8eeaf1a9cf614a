#!/usr/bin/env bash
# Build the bids-infantage image with podman (local base image, no registry) and run it on the
# demo data: one participant (sub-m06), then the group level, with no network, as the image's
# non-root user. Checks the outputs and, optionally, compares the predicted age with a run of
# the pip-installed package.
#
#   bash scripts/container-smoke.sh [PIP_RUN]
#
# PIP_RUN (optional): output folder of a pip-installed run on ../shared/demo_bids that includes
# sub-m06 (e.g. `bids-infantage ../shared/demo_bids out/demo-full participant`; not the 1.6 mm
# embedded demo of scripts/demo.sh), or that run's sub-m06_brainage.tsv.
#
# Environment: IMAGE (default bids/infantage:dev), SKIP_BUILD=1 (reuse the image),
# NPROCS (default 2), TOL_MONTHS (largest accepted age difference, default 0.05),
# KEEP=1 (keep the temporary output and work folders).
# Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$ROOT/../shared" && pwd)
IMAGE=${IMAGE:-bids/infantage:dev}
NPROCS=${NPROCS:-2}
TOL_MONTHS=${TOL_MONTHS:-0.05}
PARTICIPANT=m06
PIP_RUN=${1:-}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'container-smoke: %s\n' "$*"; }
FAILED=0
fail() { say "FAIL: $*"; FAILED=1; }
TIMINGS=()

if [ -n "$PIP_RUN" ] && [ ! -e "$PIP_RUN" ]; then
  say "FAIL: $PIP_RUN does not exist (give a pip-installed run's output folder or its brainage TSV)"
  exit 1
fi

T0=$(now)
cd "$ROOT"
# Sets $PODMAN (podman with its own storage, runc, ulimits) and $OCI_BASE; creates the base
# image on first use.
# shellcheck source=/dev/null
source "$SHARED/tools/oci-local-base.sh"
set -euo pipefail   # the sourced script sets -eu only

# ---------------------------------------------------------------------------- build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $IMAGE (base $OCI_BASE)"
  t=$(now)
  # shellcheck disable=SC2086  # $PODMAN is a command with arguments
  if ! $PODMAN build --network host \
      -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
      -v /opt/wheels:/wheels:ro \
      --build-arg BASE_IMAGE="$OCI_BASE" -t "$IMAGE" .; then
    say "FAIL: image build failed"
    exit 1
  fi
  TIMINGS+=("build: $(secs "$t" "$(now)") s")
fi
# shellcheck disable=SC2086
if ! $PODMAN image exists "$IMAGE"; then
  say "FAIL: image $IMAGE does not exist"
  exit 1
fi
# shellcheck disable=SC2086
SIZE=$($PODMAN image inspect --format '{{.Size}}' "$IMAGE")
say "image $IMAGE: $(awk -v s="$SIZE" 'BEGIN { printf "%.0f MB", s / 1e6 }')"

# ---------------------------------------------------------------------------- image checks
# shellcheck disable=SC2086
RUN=($PODMAN run --rm --network none)
uid=$("${RUN[@]}" --entrypoint id "$IMAGE" -u) || uid=?
[ "$uid" = 1000 ] || fail "the image runs as uid $uid, not the non-root user infantage (1000)"
version=$("${RUN[@]}" "$IMAGE" --version 2>&1) || fail "bids-infantage --version failed: $version"
say "in the image: $version"

# ---------------------------------------------------------------------------- runs
TMP=$(mktemp -d "${TMPDIR:-/tmp}/infantage-smoke.XXXXXX")
OUT=$TMP/out
WORK=$TMP/work
mkdir -p "$OUT" "$WORK"
chmod 0777 "$OUT" "$WORK"   # the container user (uid 1000) writes here
cleanup() {
  if [ "${KEEP:-0}" = 1 ] || [ "$FAILED" != 0 ]; then
    say "outputs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# The demo images are text files linking into ../templateflow: mount the whole shared folder.
MOUNTS=(-v "$SHARED:/shared:ro" -v "$OUT:/out" -v "$WORK:/work")

say "participant level (sub-$PARTICIPANT, --nprocs $NPROCS)"
t=$(now)
rc=0
"${RUN[@]}" "${MOUNTS[@]}" "$IMAGE" /shared/demo_bids /out participant \
  --participant-label "$PARTICIPANT" -w /work --nprocs "$NPROCS" || rc=$?
TIMINGS+=("participant (sub-$PARTICIPANT): $(secs "$t" "$(now)") s")
[ "$rc" = 0 ] || fail "participant level exited with $rc"

say "group level"
t=$(now)
rc=0
"${RUN[@]}" "${MOUNTS[@]}" "$IMAGE" /shared/demo_bids /out group -w /work || rc=$?
TIMINGS+=("group: $(secs "$t" "$(now)") s")
[ "$rc" = 0 ] || fail "group level exited with $rc"

# ---------------------------------------------------------------------------- outputs
TSV=$OUT/sub-$PARTICIPANT/anat/sub-${PARTICIPANT}_brainage.tsv
for f in "$TSV" \
         "$OUT/sub-$PARTICIPANT/anat/sub-${PARTICIPANT}_brainage.json" \
         "$OUT/sub-$PARTICIPANT.html" \
         "$OUT/dataset_description.json" \
         "$OUT/.bidsignore" \
         "$OUT/group_brainage.tsv" \
         "$OUT/group.html"; do
  [ -s "$f" ] || fail "missing or empty: ${f#"$OUT"/}"
done

# Value of column $2 in the first data row of TSV $1.
tsv_col() {
  awk -F'\t' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
                         NR == 2 && c { print $c; exit }' "$1"
}

if [ -s "$TSV" ]; then
  AGE=$(tsv_col "$TSV" predicted_age_months)
  say "predicted age of sub-$PARTICIPANT (container): $AGE months" \
      "[$(tsv_col "$TSV" predicted_age_lower_months), $(tsv_col "$TSV" predicted_age_upper_months)]," \
      "configuration $(tsv_col "$TSV" model_configuration)"
  awk -v a="$AGE" 'BEGIN { exit !(a ~ /^-?[0-9.]+$/) }' || fail "predicted age is not a number: '$AGE'"
  if [ "$(id -u)" = 0 ]; then   # rootful podman: container uid 1000 is host uid 1000
    owner=$(stat -c %u "$TSV")
    [ "$owner" = 1000 ] || fail "outputs are owned by uid $owner, not 1000"
  fi
fi
if [ -s "$OUT/group_brainage.tsv" ]; then
  grep -q "sub-$PARTICIPANT" "$OUT/group_brainage.tsv" \
    || fail "group_brainage.tsv has no row for sub-$PARTICIPANT"
fi
if [ -s "$OUT/dataset_description.json" ]; then
  grep -q '"Container"' "$OUT/dataset_description.json" \
    || fail "dataset_description.json: GeneratedBy has no Container entry (BIDS_INFANTAGE_CONTAINER)"
fi

# ---------------------------------------------------------------------------- vs pip install
if [ -n "$PIP_RUN" ] && [ -s "$TSV" ]; then
  REF=$PIP_RUN
  [ -d "$REF" ] && REF=$REF/sub-$PARTICIPANT/anat/sub-${PARTICIPANT}_brainage.tsv
  if [ ! -s "$REF" ]; then
    fail "no brainage TSV of sub-$PARTICIPANT in the pip-installed run ($REF)"
  else
    REF_AGE=$(tsv_col "$REF" predicted_age_months)
    sha=$(tsv_col "$TSV" model_sha256)
    ref_sha=$(tsv_col "$REF" model_sha256)
    if [ "$sha" != "$ref_sha" ]; then
      fail "different models: container $sha, pip-installed $ref_sha (rebuild the image or rerun)"
    fi
    diff=$(awk -v a="$AGE" -v b="$REF_AGE" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.3f", d }')
    say "predicted age: container $AGE, pip-installed $REF_AGE months (|difference| $diff, tolerance $TOL_MONTHS)"
    awk -v d="$diff" -v t="$TOL_MONTHS" 'BEGIN { exit !(d <= t) }' \
      || fail "predicted ages differ by $diff months (> $TOL_MONTHS)"
  fi
fi

# ---------------------------------------------------------------------------- summary
TIMINGS+=("total: $(secs "$T0" "$(now)") s")
say "timings:"
for line in "${TIMINGS[@]}"; do say "  $line"; done
if [ "$FAILED" != 0 ]; then
  say "FAILED"
  exit 1
fi
say "all checks passed"
