#!/bin/bash
# SLURM array job: one bids-infantage participant per task, with the Apptainer image.
#
# Task i processes the participant on line i+1 of participants.tsv (line 1 is the header).
# Submit with one task per participant, then the group level once the array is done:
#
#   N=$(( $(wc -l < /data/study/bids/participants.tsv) - 1 ))
#   jid=$(sbatch --parsable --array=1-"$N"%20 scripts/slurm_array.sh)
#   sbatch --dependency=afterany:"$jid" --cpus-per-task=1 --mem=4G --time=00:30:00 \
#     --wrap "apptainer run --cleanenv -B /data/study/bids:/data:ro \
#             -B /data/study/derivatives/bids-infantage:/out -B \$TMPDIR:/work \
#             /containers/infantage.sif /data /out group -w /work"
#
# afterany runs the group level even when some participants failed (their rows are missing
# from group_brainage.tsv); use afterok to require that all succeeded. Validate the dataset
# once before submitting (bids-validator-deno, or one participant run without
# --skip-bids-validation): the tasks skip validation.
#
# Settings (environment variables, or edit the defaults):
#   BIDS_DIR, OUT_DIR  input dataset and output folder (shared file system)
#   SIF                the Apptainer image (see docs/apptainer.md)
#   SCRATCH            node-local scratch for the work folders (default: $TMPDIR or /tmp)
#   GPU=1              add --nv (needs an image with CUDA torch and a --gres=gpu:1 request)
#   KEEP_WORK=1        keep the work folder of successful tasks
#
#SBATCH --job-name=infantage
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=infantage_%A_%a.log

set -euo pipefail

BIDS_DIR=${BIDS_DIR:-/data/study/bids}
OUT_DIR=${OUT_DIR:-/data/study/derivatives/bids-infantage}
SIF=${SIF:-/containers/infantage.sif}
SCRATCH=${SCRATCH:-${TMPDIR:-/tmp}}
NPROCS=${SLURM_CPUS_PER_TASK:-1}

if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "slurm_array.sh: submit as an array job (sbatch --array=1-N ...)" >&2
  exit 2
fi

# Participant label on line TASK_ID+1 of participants.tsv (column participant_id).
LABEL=$(awk -F'\t' -v line=$((SLURM_ARRAY_TASK_ID + 1)) '
  NR == 1 { for (i = 1; i <= NF; i++) if ($i == "participant_id") c = i; next }
  NR == line && c { gsub(/\r/, "", $c); print $c; exit }' "$BIDS_DIR/participants.tsv")
LABEL=${LABEL#sub-}
if [ -z "$LABEL" ]; then
  echo "slurm_array.sh: no participant on line $((SLURM_ARRAY_TASK_ID + 1)) of $BIDS_DIR/participants.tsv" >&2
  exit 2
fi

# One work folder per task, on node-local scratch.
WORK=$SCRATCH/infantage_${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
mkdir -p "$WORK" "$OUT_DIR"

MEM_ARGS=()
if [ -n "${SLURM_MEM_PER_NODE:-}" ]; then   # MB; leave 10% for the container itself
  MEM_ARGS=(--mem-gb "$(awk -v m="$SLURM_MEM_PER_NODE" 'BEGIN { printf "%.1f", 0.9 * m / 1024 }')")
fi
NV=()
[ "${GPU:-0}" = 1 ] && NV=(--nv)

echo "task $SLURM_ARRAY_TASK_ID: sub-$LABEL on $(hostname), $NPROCS CPUs, work $WORK"
rc=0
apptainer run ${NV[@]+"${NV[@]}"} --cleanenv \
  -B "$BIDS_DIR":/data:ro -B "$OUT_DIR":/out -B "$WORK":/work \
  "$SIF" /data /out participant \
  --participant-label "$LABEL" \
  -w /work \
  --nprocs "$NPROCS" --omp-nthreads 1 ${MEM_ARGS[@]+"${MEM_ARGS[@]}"} \
  --skip-bids-validation || rc=$?

if [ "$rc" = 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
  rm -rf "$WORK"
else
  echo "task $SLURM_ARRAY_TASK_ID: exit code $rc; work folder kept in $WORK (on $(hostname))"
fi
exit "$rc"
