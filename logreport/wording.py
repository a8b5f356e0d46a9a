"""What logreport itself writes in English into a summary, in another language (`--lang zh`):
anomaly details and status evidence. The log's own text in them (an exception line, a path)
stays as it is; a text of no known shape stays English."""
from __future__ import annotations

import re

_N = r"\S+"                                     # a number or a step as present writes it
_DETAILS = [(re.compile(pattern), zh) for pattern, zh in (
    (rf"(?P<name>\S+) is (?P<value>{_N})(?: at step (?P<step>{_N}))?; (?P<n>\d+) records? with a "
     r"non-finite loss or grad_norm", "{name} 为 {value}{at}；{n} 条记录的 loss 或 grad_norm 非有限值"),
    (rf"(?P<name>\S+) is exactly 0 for (?P<n>\d+) records from step (?P<step>{_N})",
     "{name} 自第 {step} 步起连续 {n} 条记录恰为 0"),
    (r"train_loss, the training's average loss stated at its end, is exactly 0",
     "train_loss（训练结束时给出的平均损失）恰为 0"),
    (rf"(?P<name>\S+)(?: \(median of (?P<width>\d+) records\))? (?P<value>{_N}) at step "
     rf"(?P<step>{_N}) is (?P<x>{_N})x the median (?P<median>{_N}) of the previous records",
     "第 {step} 步 {name}{median_of} 为 {value}，是此前记录中位数 {median} 的 {x} 倍"),
    (rf"(?P<name>\S+) level (?P<now>{_N}) over the last (?P<n>\d+) records is (?P<x>{_N})x its "
     rf"best level (?P<best>{_N}); high since step (?P<step>{_N})",
     "{name} 最后 {n} 条记录的水平 {now} 是其最佳水平 {best} 的 {x} 倍，自第 {step} 步起一直偏高"),
    (rf"(?P<name>\S+) (?P<value>{_N}) at step (?P<step>{_N}) is (?P<x>{_N})x its lowest value "
     rf"(?P<low>{_N}) before, and (?P<after>{_N}) after it",
     "第 {step} 步 {name} 为 {value}，是此前最低值 {low} 的 {x} 倍，其后为 {after}"),
    (rf"(?P<name>\S+) (?P<pct>\d+%) below (?P<whose>the run's|its training's) median "
     rf"(?P<median>{_N}) for (?P<n>\d+) records from step (?P<step>{_N})",
     "自第 {step} 步起连续 {n} 条记录 {name} 比{whose}中位数 {median} 低 {pct}"),
    (rf"(?P<name>\S+) (?P<value>{_N}) is worse than its best (?P<best>{_N}) for (?P<n>\d+) "
     r"evals in a row", "{name} 为 {value}，已连续 {n} 次评估差于其最佳值 {best}"),
    (r"no new line for (?P<age>.+) \(limit (?P<limit>.+)\)", "已{age}没有新的日志行（上限 {limit}）"),
)]
_WHOSE = {"the run's": "本次运行的", "its training's": "其所在训练的"}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([dhms])\b ?")       # present.duration's: 3h 17m, 2.2s
_UNIT = {"d": "天", "h": "小时", "m": "分", "s": "秒"}
_SPANS = ("age", "limit", "behind")                         # the groups that hold one
# pieces of status evidence (status.status), each replaced where it stands
_EVIDENCE = [(re.compile(pattern), zh) for pattern, zh in (
    (r"^final training metrics were logged", "日志记录了训练的最终指标"),
    (r"^the tool logged the end of training at line (?P<line>\d+)", "训练工具在第 {line} 行记录了训练结束"),
    (r"^the tool's own ETA had run out at the last training record, and the eval after the last "
     r"epoch \(if the run evaluates\) was printed", "训练工具自己的预计剩余时间在最后一条训练记录时已用完，"
     "且最后一轮之后的评估（若有）已输出"),
    (r"^no end of training and no error ended it", "没有训练结束的记录，也没有错误使其终止"),
    (r"; the source has no modification time", "；来源没有修改时间"),
    (r"; the file changed (?P<age>.+?) ago but its lines have no timestamps to tell a live run "
     r"from a copy \(`watch` it to follow it live\)",
     "；文件在{age}前有改动，但各行没有时间戳，无法区分正在运行的任务和一份副本（用 `watch` 实时跟踪）"),
    (r"; its last timestamped line is (?P<behind>.+?) older than the file's last change, "
     r"(?P<age>.+?) ago", "；其最后一个带时间戳的行比文件最后一次改动（{age}前）早 {behind}"),
    (r"; its last timestamped line is (?P<behind>.+?) later than \(its clock is not this "
     r"machine's\) the file's last change, (?P<age>.+?) ago",
     "；其最后一个带时间戳的行比文件最后一次改动（{age}前）晚 {behind}（其时钟与本机不同）"),
    (r" \(its stamps print no year: (?P<year>\d+) assumed\)", "（时间戳不含年份：推测为 {year} 年）"),
    (r"^the log was written (?P<age>.+?) ago and its last line is (?P<behind>.+?) older",
     "日志在{age}前写入，其最后一行早 {behind}"),
    (r"^the log is being watched and has no end of training yet", "正在监视日志，尚无训练结束的记录"),
    (r"; then stopped \((?P<what>.*) at line (?P<line>\d+)\)$", "；之后被终止（第 {line} 行：{what}）"),
    (r"; after the training's end at line (?P<line>\d+)$", "；在训练于第 {line} 行结束之后"),
    (r"; a later launch failed before it trained \(", "；之后的一次启动在训练前失败（"),
    (r"; (?P<n>\d+) later launches failed before they trained, the last \(",
     "；之后有 {n} 次启动在训练前失败，最后一次（"),
    (r"; (?P<n>\d+) earlier launch(?:es)? failed too \((?:the first )?at line (?P<line>\d+)\)",
     "；此前另有 {n} 次启动失败（最早一次在第 {line} 行）"),
    (r"; a later launch \(line (?P<line>\d+)\) logged no training record$",
     "；之后的一次启动（第 {line} 行）没有训练记录"),
    (r"(?P<before>^|（)(?P<kind>traceback|oom|killed) at line (?P<line>\d+): ",
     "{before}{kind}（第 {line} 行）："),
)]


# a segment's label (model.Segment, the reader's NEW_RUN markers): what logreport names it
_LABELS = [(re.compile(pattern), zh) for pattern, zh in (
    (r"segment (?P<n>\d+)", "第 {n} 段"),
    (r"restart at step (?P<step>\S+) \(line (?P<line>\d+)\)", "第 {step} 步重新开始（第 {line} 行）"),
    (r"restart at epoch (?P<epoch>\S+) \(line (?P<line>\d+)\)", "第 {epoch} 轮重新开始（第 {line} 行）"),
    (r"new run", "新的运行"), (r"log truncated", "日志被截断"), (r"log rewritten", "日志被重写"),
    (r"log replaced by a new file", "日志被新文件替换"), (r"log deleted", "日志被删除"),
)]


# facts a format states in English (hf_steps.BUFFERED), in Chinese
_FACTS = {"estimated: stdout was buffered apart from the progress bar (the dicts came out in "
          "bursts after the bar had moved on)":
          "估计值：标准输出与进度条分开缓冲（字典记录在进度条前进之后才成批输出）"}


def fact(value, lang: str):
    """A run fact's value in `lang` (one logreport writes; the log's own stay as they are)."""
    return _FACTS.get(value, value) if lang == "zh" and isinstance(value, str) else value


def label(text: str, lang: str) -> str:
    """A segment's label in `lang` (one from the log, a resume's line, stays as it is)."""
    if lang == "zh":
        for pattern, zh in _LABELS:
            m = pattern.fullmatch(text)
            if m:
                return zh.format(**m.groupdict())
    return text


def detail(text: str, lang: str) -> str:
    """An anomaly's detail in `lang` (a failure's detail is the log's own line: as it is)."""
    if lang != "zh" or not text:
        return text
    for pattern, zh in _DETAILS:
        m = pattern.fullmatch(text)
        if m:
            got = {k: v or "" for k, v in m.groupdict().items()}
            got["at"] = f"（第 {got['step']} 步）" if got.get("step") else ""
            got["median_of"] = f"（{got['width']} 条记录的中位数）" if got.get("width") else ""
            got["whose"] = _WHOSE.get(got.get("whose", ""), "")
            return zh.format(**_spans(got))
    return text


def evidence(text: str, lang: str) -> str:
    """A status evidence in `lang`: its known pieces replaced, the log's text in it kept."""
    if lang != "zh" or not text:
        return text
    for pattern, zh in _EVIDENCE:
        text = pattern.sub(lambda m, zh=zh: zh.format(**_spans(m.groupdict())), text, count=1)
    return text


def _spans(groups: dict) -> dict:
    """The groups, durations among them in Chinese units (3h 17m -> 3小时17分)."""
    return {k: _SPAN.sub(lambda m: m.group(1) + _UNIT[m.group(2)], v) if k in _SPANS and v else v
            for k, v in groups.items()}


# anomaly kinds in Chinese; the kind itself is kept beside (the word `--fail-on` takes)
_KINDS = {"nan": "非有限值", "zero_loss": "损失为零", "spike": "突增", "divergence": "发散",
          "throughput_drop": "吞吐下降", "stall": "停滞", "traceback": "报错", "oom": "内存不足",
          "eval_regression": "评估退步", "killed": "被终止"}


def kind(name: str, lang: str) -> str:
    """An anomaly kind as a page in `lang` names it ('发散（divergence）')."""
    return f"{_KINDS[name]}（{name}）" if lang == "zh" and name in _KINDS else name


def summary_in(summary: dict, lang: str) -> dict:
    """A summary whose anomaly details and status evidence read in `lang`."""
    if lang != "zh":
        return summary
    return dict(summary, status_evidence=evidence(summary.get("status_evidence") or "", lang),
                anomalies=[dict(a, detail=detail(a.get("detail") or "", lang),
                                label=kind(a["kind"], lang))
                           for a in summary.get("anomalies") or []])
