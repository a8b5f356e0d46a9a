"""`--lang zh`: what logreport itself writes (anomaly details, status evidence) reads in
Chinese on the pages and in chat messages; the log's own text in it stays as it is."""
import re

from conftest import DATA

from logreport import notify, wording
from logreport.analysis import summarize
from logreport.reader import load
from logreport.report import build

FAILURES = ("traceback", "oom", "killed")       # their detail is the log's own line
ENGLISH = re.compile(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}")


def test_every_anomaly_and_evidence_of_the_real_logs_reads_in_chinese():
    kinds = set()
    for log in sorted(DATA.glob("*/*.log*")):
        try:
            summary = summarize(load(str(log)))
        except Exception:           # (a log of no known format: none to say)
            continue
        zh = wording.summary_in(summary, "zh")
        for en, said in zip(summary["anomalies"], zh["anomalies"]):
            if en["kind"] not in FAILURES:
                kinds.add(en["kind"])
                assert not ENGLISH.search(said["detail"]), (log.name, said["detail"])
        evidence = re.sub(r"(?:traceback|oom|killed)（第 \d+ 行）：[^；]*", "", zh["status_evidence"])
        assert not ENGLISH.search(evidence), (log.name, zh["status_evidence"])
        assert wording.summary_in(summary, "en") == summary
    assert {"nan", "zero_loss", "spike", "divergence", "eval_regression"} <= kinds


def test_the_details_the_logs_here_do_not_give_read_in_chinese_too():
    assert wording.detail("ips 45% below its training's median 12.3 for 7 records from step "
                          "120", "zh") == "自第 120 步起连续 7 条记录 ips 比其所在训练的中位数 12.3 低 45%"
    assert wording.detail("no new line for 12m 00s (limit 10m 00s)", "zh") == \
        "已12分00秒没有新的日志行（上限 10分00秒）"
    assert wording.detail("something else entirely", "zh") == "something else entirely"
    assert wording.evidence("traceback at line 322: AssertionError: x; 2 earlier launches failed "
                            "too (the first at line 161)", "zh") == \
        "traceback（第 322 行）：AssertionError: x；此前另有 2 次启动失败（最早一次在第 161 行）"


def test_a_chinese_page_and_message_say_what_went_wrong_in_chinese():
    run = load(str(DATA / "llamafactory" / "05_sft_nan_then_zero_loss_npu.log"))
    page = build([run], lang="zh")["runs"][0]
    details = [a["detail"] for a in page["summary"]["anomalies"]]
    assert details[0].startswith("grad_norm 为 nan（第 ") and "非有限值" in details[0]
    assert any("条记录恰为 0" in d for d in details)
    assert "非有限值" in page["headline"]["sentence"] or "异常" in page["headline"]["sentence"]
    message = notify.compose(summarize(run), ["anomaly:nan"], "zh")
    assert "非有限值" in message.headline and not ENGLISH.search(message.headline)


def test_segment_labels_read_in_chinese_on_a_chinese_page():
    """The page's run facts and chart lines said "segment 0", "restart at step 0 (line 6)"."""
    run = load(str(DATA / "ppdet" / "public_07_ppyolo_nan_paddle33911.log"))
    page = build([run], lang="zh")["runs"][0]
    assert page["facts"]["segments"] == ["第 0 段", "第 0 步重新开始（第 6 行）"]
    assert "第 0 步重新开始（第 6 行）" in [m["detail"] for m in page["marks"]]
    assert build([run])["runs"][0]["facts"]["segments"] == ["segment 0",
                                                           "restart at step 0 (line 6)"]
    assert wording.label("Continuing training from checkpoint", "zh") == \
        "Continuing training from checkpoint"


def test_a_chinese_evaluation_table_gives_its_times_in_chinese_units():
    rows = build([load(str(DATA / "ppdet" / "picodet_s_320_coco_long80e.log"))],
                 lang="zh")["runs"][0]["evals"]
    elapsed = [r["elapsed"] for r in rows["rows"]]
    assert elapsed and all(re.fullmatch(r"\d+(?:分\d{2})?秒|\d+(?:小时\d{2})?分", e) for e in elapsed)


def test_a_zh_page_writes_its_durations_and_the_buffered_fact_in_chinese():
    """`--lang zh` (LLaMA-Factory 108, a buffered console): Details → Summary said "7m 38s"
    where the headline said 7分38秒, and the fact 字典记录的步数 was the English sentence
    "estimated: stdout was buffered apart from the progress bar ..."."""
    run = load(str(DATA / "llamafactory" / "108_nonLF_unsloth_sft_banner_buffered_zh.log"))
    page = build([run], lang="zh")
    wall = next(r for r in page["compare"] if r["key"] == "wall_seconds")
    assert wall["text"][0].endswith("秒") and "m" not in wall["text"][0]
    assert page["runs"][0]["facts"]["dict_steps"].startswith("估计值：标准输出")
