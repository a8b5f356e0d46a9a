"""The report's embedded JSON payload reads back to the run's data."""
import json
import re

from logreport.reader import load
from logreport.render import write_html
from logreport.report import build


def payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "no report-data payload"
    return json.loads(m.group(1))


def test_payload_reads_back(data, tmp_path):
    run = load(str(data / "ppdet/picodet_s_320_coco_long80e.log"))
    out = tmp_path / "r.html"
    write_html(build([run]), str(out))
    data_back = payload(out.read_text(encoding="utf-8"))
    summary = data_back["runs"][0]["summary"]
    assert summary["train_records"] == 80
    assert summary["best"]["metric"] == "bbox/AP" and summary["best"]["value"] == 0.096
    titles = [c["title"] for c in data_back["charts"]]
    assert "loss" in titles and "learning rate" in titles
    metrics = {m for c in data_back["charts"] for m in c["metrics"]}
    assert {"loss", "loss_vfl", "loss_bbox", "loss_dfl", "ips", "bbox/AP"} <= metrics
