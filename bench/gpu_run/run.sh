#!/bin/bash
# GPU run: HF Trainer training writes its console to a log while logreport watch follows it.
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
python3 -m pip install -q --no-deps --no-index wheels/*.whl 2>&1 | tail -2
python3 -c "import pynvml, plotly, watchdog, rich, click, jinja2, pandas, transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0))"
export PYTHONPATH=$PWD/src
W=/tmp/w; mkdir -p $W
python3 train.py > $W/run.log 2>&1 &
TP=$!
python3 -m logreport watch $W/run.log --no-tui --serve --port 8765 --gpu --exit-when-done -o $OUT/report.html > $OUT/watch.out 2>&1 &
WP=$!
python3 probe.py $W/run.log http://127.0.0.1:8765/ $OUT/latency.json > $W/probe.out 2>&1 &
PP=$!
wait $TP; echo "train rc=$?"
for i in $(seq 60); do kill -0 $WP 2>/dev/null || break; sleep 1; done
kill -0 $WP 2>/dev/null && { echo "watch still running: SIGINT"; kill -INT $WP; }
wait $WP; echo "watch rc=$?"
wait $PP
cp $W/run.log $OUT/run.log
python3 -m logreport summary $W/run.log --json > $OUT/summary.json; echo "summary rc=$?"
# idle: a watch of the finished log, left alone for 60 s
python3 -m logreport watch $W/run.log --no-tui --serve --port 8766 -o $W/idle.html > $W/idle.out 2>&1 &
IP=$!; sleep 5
c0=$(awk '{print $14+$15}' /proc/$IP/stat); sleep 60; c1=$(awk '{print $14+$15}' /proc/$IP/stat)
kill -TERM $IP; wait $IP   # a script's background job ignores SIGINT
python3 -c "import os,sys; t=($c1-$c0)/os.sysconf('SC_CLK_TCK'); print(f'idle 60 s: watch used {t:.2f} CPU s ({t/60:.2%} of a core)')" | tee $OUT/idle.txt
tail -5 $OUT/watch.out; cat $W/probe.out; tail -3 $OUT/run.log | cut -c1-300
