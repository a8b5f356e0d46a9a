"""Passive latency probe: when a training record reaches the log vs when /api/summary counts it.

Tails the log itself every 5 ms, counting HF Trainer loss dicts ({'loss': ...}), and polls
/api/summary every 20 ms. Latency of record n = first time the API shows >= n records minus the
time the probe saw the n-th loss dict in the file. Writes latency.json."""
import json
import sys
import threading
import time
import urllib.request

log, url, out = sys.argv[1], sys.argv[2], sys.argv[3]
seen_file, seen_api, stop = {}, {}, threading.Event()


def tail():
    n, pos, buf = 0, 0, b""
    while not stop.is_set():
        try:
            with open(log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except OSError:
            data = b""
        pos += len(data)
        buf += data
        if b"\n" in buf or b"\r" in buf:
            cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
            done, buf = buf[:cut], buf[cut:]
            now = time.time()
            for _ in range(done.count(b"{'loss': ")):
                n += 1
                seen_file[n] = now
        time.sleep(0.005)


threading.Thread(target=tail, daemon=True).start()
last, fails, t0 = 0, 0, time.time()
while time.time() - t0 < 500:
    try:
        with urllib.request.urlopen(url + "api/summary", timeout=2) as r:
            text = r.read()
            s = json.loads(text)["runs"][0]
        fails = 0
        now = time.time()
        for k in range(last + 1, s["train_records"] + 1):
            seen_api[k] = now
        last = max(last, s["train_records"])
        if s["status"] in ("finished", "failed"):
            open(out.replace("latency", "api_summary"), "wb").write(text)
            break
    except Exception:
        fails += 1
        if fails > 400 and seen_api:
            break
    time.sleep(0.02)
stop.set()
lat = sorted(seen_api[k] - seen_file[k] for k in seen_api if k in seen_file)
res = {"records_api": last, "records_file": len(seen_file), "n": len(lat)}
if lat:
    res.update(p50=lat[len(lat) // 2], p95=lat[int(0.95 * (len(lat) - 1))], max=lat[-1])
json.dump(res, open(out, "w"), indent=1)
print("probe", res)
