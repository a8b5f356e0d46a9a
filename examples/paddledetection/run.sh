#!/usr/bin/env bash
# Train a small PicoDet on a synthetic shapes dataset and watch it live with logreport.
#
#   examples/paddledetection/run.sh [WORKDIR [EPOCHS [WATCH OPTIONS...]]]
#
# Defaults: ./ppdet-demo, 20 epochs. WATCH OPTIONS go to `logreport watch` (e.g. --serve).
# Trains in the venv made by install.sh (PADDLE_VENV to choose another); watches with the
# `logreport` on PATH (pip install -e . from the repository root; LOGREPORT to choose another).
# Writes, in WORKDIR: run.log (the training console, as PaddleDetection's tools/train.py prints
# it), report.html, dataset/ and output/ (checkpoints).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${PADDLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/logreport/paddle-venv}
WORK=${1:-ppdet-demo}
EPOCHS=${2:-20}
shift $(( $# < 2 ? $# : 2 ))
LOGREPORT=${LOGREPORT:-logreport}
if [ ! -x "$VENV/bin/python" ]; then
  echo "run.sh: no venv at $VENV; run $HERE/install.sh first" >&2; exit 1
fi
if ! command -v "$LOGREPORT" >/dev/null; then
  echo "run.sh: no logreport command; run pip install -e . in $(dirname "$(dirname "$HERE")")" >&2
  exit 1
fi
mkdir -p "$WORK"
cd "$WORK"

if [ ! -f dataset/annotations/instances_val2017.json ]; then
  "$VENV/bin/python" "$HERE/make_dataset.py" dataset
fi
: > run.log
# Unbuffered, so every line reaches run.log when it is printed; libz preloaded (see install.sh).
PYTHONUNBUFFERED=1 LD_PRELOAD=libz.so.1 "$VENV/bin/python" "$HERE/train.py" \
  --data dataset --epochs "$EPOCHS" --out output > run.log 2>&1 &
TRAIN=$!
trap 'kill $TRAIN 2>/dev/null || true' INT TERM EXIT

"$LOGREPORT" watch run.log --exit-when-done -o report.html "$@" || true
RC=0; wait $TRAIN || RC=$?
trap - INT TERM EXIT
# The watcher may stop at the last training line, before the last evaluation is printed:
# write the report once more from the whole log.
"$LOGREPORT" report run.log -o report.html
[ $RC -eq 0 ] || echo "run.sh: training exited with $RC; see $WORK/run.log" >&2
echo "run.sh: report at $WORK/report.html"
exit $RC
