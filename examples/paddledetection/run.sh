#!/usr/bin/env bash
# Train a small PicoDet on a synthetic shapes dataset and watch it live with logreport.
#
#   examples/paddledetection/run.sh [WORKDIR] [EPOCHS]    (default: ./ppdet-demo, 8 epochs)
#
# Uses the venv made by install.sh (PADDLE_VENV to choose another). Writes WORKDIR/run.log
# (the training console, as PaddleDetection's tools/train.py prints it), WORKDIR/report.html,
# WORKDIR/dataset/ and WORKDIR/output/ (checkpoints).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${PADDLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/logreport/paddle-venv}
WORK=${1:-ppdet-demo}
EPOCHS=${2:-8}
[ -x "$VENV/bin/python" ] || { echo "run.sh: no venv at $VENV; run $HERE/install.sh first" >&2; exit 1; }
mkdir -p "$WORK"
cd "$WORK"

[ -f dataset/annotations/instances_val2017.json ] || "$VENV/bin/python" "$HERE/make_dataset.py" dataset
: > run.log
# Unbuffered, so every line reaches run.log when it is printed; libz preloaded (see install.sh).
PYTHONUNBUFFERED=1 LD_PRELOAD=libz.so.1 "$VENV/bin/python" "$HERE/train.py" \
  --data dataset --epochs "$EPOCHS" --out output > run.log 2>&1 &
TRAIN=$!
trap 'kill $TRAIN 2>/dev/null || true' INT TERM EXIT

"$VENV/bin/logreport" watch run.log --exit-when-done -o report.html
RC=0; wait $TRAIN || RC=$?
trap - INT TERM EXIT
[ $RC -eq 0 ] || echo "run.sh: training exited with $RC; see $WORK/run.log" >&2
echo "run.sh: report at $WORK/report.html"
exit $RC
