#!/usr/bin/env bash
# Make the virtual environment that trains this example (Paddle + ppdet; logreport is not in it).
#
#   examples/paddledetection/install.sh [--gpu] [VENV]
#
# VENV defaults to ~/.cache/logreport/paddle-venv; --gpu installs paddlepaddle-gpu instead.
#
# Why not `pip install '.[paddle-cpu]'`: paddledet 2.6.0, the newest on PyPI, declares numpy<1.24
# (logreport needs >=1.24, so pip finds no solution) and `sklearn==0.0`, a stub without the
# `sklearn` module, and it imports requests, six, pandas and matplotlib without declaring them.
# So paddledet goes in with --no-deps, then requirements.txt. Paddle is 2.6.2: Paddle 3.x fails in
# paddledet 2.6.0's label assigners, and 2.6.2 is the newest paddlepaddle-gpu on PyPI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PADDLE=paddlepaddle==2.6.2
if [ "${1:-}" = "--gpu" ]; then PADDLE=paddlepaddle-gpu==2.6.2; shift; fi
VENV=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/logreport/paddle-venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q "$PADDLE" -r "$HERE/requirements.txt"
"$VENV/bin/pip" install -q --no-deps "paddledet==2.6.0"
# Paddle 2.6's bundled zlib shadows the system one: preload libz.so.1 (run.sh does), or any
# zlib call after `import paddle` segfaults.
LD_PRELOAD=libz.so.1 "$VENV/bin/python" -c "import ppdet.engine, zlib; zlib.compress(b'1')" \
  >/dev/null 2>&1 || { echo "install.sh: ppdet does not import in $VENV" >&2; exit 1; }
VERSION=$("$VENV/bin/python" -c 'import paddle; print(paddle.__version__)')
echo "ready: $VENV (paddlepaddle $VERSION, paddledet 2.6.0)"
