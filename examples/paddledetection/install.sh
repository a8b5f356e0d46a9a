#!/usr/bin/env bash
# Make a virtual environment that can train this example and run logreport.
#
#   examples/paddledetection/install.sh [--gpu] [VENV]     (default VENV: ~/.cache/logreport/paddle-venv)
#
# Why not `pip install '.[paddle-cpu]'`: the paddledet 2.6.0 wheel declares `sklearn==0.0`
# (a deprecated stub that refuses to build) and `numpy<1.24`, so pip cannot resolve it. We install
# paddledet with --no-deps and then the packages ppdet really imports, with versions known to work
# together on Python 3.11 (see the example's README). PyPI's newest Paddle 3.x does not run the
# paddledet 2.6.0 code (int64/int32 type promotion error in its label assigners), so Paddle is 2.6.2,
# which is also the newest paddlepaddle-gpu on PyPI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PADDLE=paddlepaddle==2.6.2
if [ "${1:-}" = "--gpu" ]; then PADDLE=paddlepaddle-gpu==2.6.2; shift; fi
VENV=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/logreport/paddle-venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q "$PADDLE" "numpy==1.26.4" "opencv-python==4.5.5.64" \
  "typeguard>=4" PyYAML shapely scipy terminaltables pycocotools tqdm requests six \
  matplotlib scikit-learn "pandas>=2" Pillow
"$PIP" install -q --no-deps "paddledet==2.6.0"
"$PIP" install -q -e "$REPO"          # logreport itself, from this checkout
# Paddle 2.6's bundled zlib shadows the system one; run.sh preloads libz.so.1 to avoid a segfault.
LD_PRELOAD=libz.so.1 "$VENV/bin/python" -c "import paddle, ppdet.engine, zlib; zlib.compress(b'ok')" \
  >/dev/null 2>&1 || { echo "install.sh: ppdet does not import in $VENV" >&2; exit 1; }
echo "ready: $VENV (paddle $("$VENV/bin/python" -c 'import paddle; print(paddle.__version__)'), paddledet 2.6.0)"
