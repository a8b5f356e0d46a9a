"""A run in one sentence and a few cards, from its summary (`analysis.summarize`): what a
teammate reads first in a report, an email or a chat message.

    sentence(summary, loss, "en") -> "Finished 80 epochs in 7m 23s. Best bbox/AP 0.096 at
                                      epoch 59; loss 4.071 → 2.851."
    cards(summary, loss, "en")    -> [{"key", "text", "sub", "metric", "value", "better"}]
    mark_best(cards_per_run)      -> the same cards, "best": True on the best run of each

`loss` is `loss_change(run)`: the main loss's first and last finite values (the summary has
only the last). Every number and duration is written by `present`.
"""
from __future__ import annotations

import math

import numpy as np

from . import formats, present, wording
from .analysis import lineage_starts, lower_is_better, main_loss
from .events import TRAIN
from .model import Run

FAILURES = ("traceback", "oom")      # anomaly kinds that end a run: the status says them
BROKEN_LOSS = ("nan", "divergence", "zero_loss")    # a loss with these is no run's best
LONGEST = 160                        # characters of a log-derived reason kept in a sentence

# key: (English, Chinese)
PHRASES = {
    "finished": ("Finished {span}{took}", "已完成 {span}{took}"),
    "failed": ("Failed at {where}: {why}", "失败于{where}：{why}"),
    "failed_": ("Failed: {why}", "失败：{why}"),                    # (the log states no step)
    "running": ("Running: {percent} ({step}){eta}", "运行中：{percent}（{step}）{eta}"),
    "unknown": ("Stopped at {where}{took}; no end was logged", "停止于{where}{took}，日志中没有结束记录"),
    "unknown_": ("Stopped{took}; no end was logged", "已停止{took}，日志中没有结束记录"),
    "stopped": ("Stopped by logreport at step {last}: {reason} at step {step} ({detail})",
                "logreport 在第 {last} 步停止了训练：第 {step} 步出现 {reason}（{detail}）"),
    "eval_only": ("{count}, no training records", "{count}，没有训练记录"),
    "begun": ("Training begun, no record logged yet: the bar at step {step} of {total}",
              "训练已开始，尚未记录：进度条在第 {step} 步（共 {total} 步）"),
    "final_only": ("No training record or evaluation, only the training's final metrics",
                   "没有训练记录或评估，只有训练的最终指标"),
    "took": (" in {}", "，用时 {}"), "after": (" after {}", "，已用 {}"),
    "spans": ("; the log, of {n} trainings, spans {d}", "；日志共 {n} 次训练，历时 {d}"),
    "eta": (", ETA {}", "，预计剩余 {}"), "with": (" with anomalies: {}", "，有异常：{}"),
    "and_anomalies": ("; anomalies: {}", "；异常：{}"),  # (after a phrase that ends in "records")
    "lang": ("en", "zh"),
    "best": ("Best {metric} {value}{at}", "最佳 {metric} {value}{at}"), "at": (" at {}", "（{}）"),
    "figure": ("{metric} {value}{at}", "{metric} {value}{at}"), "list": (", ", "，"),
    "alongside": (" (first of {n}; also {others})", "（{n} 个之首；另有 {others}）"),
    "first_of": ("first of {}", "{} 个之首"),
    "last_training": (" of the log's last training", "（日志中最后一次训练）"),
    "apart": (" of an evaluation apart from the training (the log states no step or epoch for it)",
              "（来自训练之外的单独评估，日志未给出其步数或轮次）"),
    "separate": (", the last of {n} separate evaluation runs (each its own process, maybe of "
                 "other data: not compared)",
                 "（{n} 次单独评估中的最后一次；各为独立进程，数据可能不同，不作比较）"),
    "last_of": ("last of {} evaluation runs", "{} 次评估中的最后一次"),
    "loss": ("{metric} {first} → {last}", "{metric} {first} → {last}"),
    "epoch": ("epoch {}", "第 {} 轮"), "step": ("step {}", "第 {} 步"),
    "step_epoch": ("step {} (epoch {})", "第 {} 步（第 {} 轮）"), "steps_epoch": ("{} ({})", "{}（{}）"),
    "from": ("from {first} ({change})", "起始 {first}（{change}）"),
    "stated": ("the trainer's average, stated at the end", "训练结束时给出的平均值"),
    "as_stated": ("as the log states", "日志所载"),      # a best no evaluation read reaches
    "at_stated": (", as the log states", "（日志所载）"),
    "duration": (present.duration, lambda seconds: present.duration(seconds, "zh")),
    "broke": ("broke down: {}", "已失效：{}"),
    "anomaly": ("{kind} at {where}: {detail}", "{kind}（{where}）：{detail}"),
    "eval_n": ("eval {}", "第 {} 次评估"),
    "by": ("; ", "；"), "join": ("; ", "；"), "end": (".", "。"), "sep": (" ", ""),
    "epochs": (lambda n: present.count(n, "epoch"), "{} 轮".format),
    "steps": (lambda n: present.count(n, "step"), "{} 步".format),
    "epoch_range": ("epochs {}", "第 {} 轮"), "step_range": ("steps {}", "第 {} 步"),
    "midway": ("{where} ({note})", "{where}（{note}）"), "resumed": ("resumed", "恢复训练"),
    "begins_midway": ("the log begins midway", "日志从中途开始"),
    "resumed_after": ("resumed after epoch {}", "从第 {} 轮后恢复训练"),
    "records": (lambda n: present.count(n, "record"), "{} 条记录".format),
    "evals": (lambda n: present.count(n, "evaluation"), "{} 次评估".format),
    "st_finished": ("finished", "已完成"), "st_failed": ("failed", "失败"),
    "st_running": ("running", "运行中"), "st_unknown": ("unknown", "未知"),
}
WORDS = {lang: {key: pair[i] for key, pair in PHRASES.items()} for i, lang in enumerate(("en", "zh"))}


def words(lang: str) -> dict:
    return WORDS.get(lang, WORDS["en"])


def loss_change(run: Run) -> dict | None:
    """{"metric", "first", "last"}: the main training loss's first finite value in the log's
    last training (lineage_starts) and its last value (nan or inf where the run ended so)."""
    name = main_loss(run)
    if name is None:
        return None
    first = last = None
    start = lineage_starts(run)[-1]
    for part in run.chunks(TRAIN, name, ()):
        if part["segment"] < start:
            continue
        finite = part["value"][np.isfinite(part["value"])]
        if len(finite) and first is None:
            first = float(finite[0])
        if len(part["value"]):
            last = float(part["value"][-1])
    return None if first is None else {"metric": name, "first": first, "last": last}


def sentence(summary: dict, loss: dict | None = None, lang: str = "en") -> str:
    """The run in one or two sentences (see the module docstring)."""
    w = words(lang)
    parts = [_state(summary, w)]
    figures = [x for x in (_best(summary, w), _loss(loss, w)) if x]
    if figures:
        text = w["join"].join(figures)
        parts.append(text[0].upper() + text[1:] if lang == "en" else text)
    return w["sep"].join(p + w["end"] for p in parts)


def _state(summary: dict, w: dict) -> str:
    state = summary.get("status") or "unknown"
    took = summary.get("wall_seconds")
    stopped = summary.get("stopped")
    if stopped:                  # `run --stop-on` ended it
        return w["stopped"].format(last=present.number(stopped.get("last_step")),
                                   step=present.number(stopped.get("step")),
                                   reason=stopped.get("reason"),
                                   detail=_short(stopped.get("detail") or ""))
    if state == "failed":
        where = _at(summary, w)
        return w["failed" if where else "failed_"].format(where=where, why=_why(summary, w))
    if state == "running" and summary.get("progress"):
        p = summary["progress"]
        eta = summary.get("eta_seconds")
        return w["running"].format(percent=present.percent(p.get("percent")),
                                   step=w["step"].format(present.step_of(
                                       p.get("step"), p.get("total_steps"),
                                       summary.get("last_step_estimated"))),
                                   eta=w["eta"].format(w["duration"](eta)) if eta else "")
    if not summary.get("train_records"):
        evals, begun = summary.get("eval_records") or 0, summary.get("progress") or {}
        if not evals and state != "finished" and begun.get("step"):    # (a bar, no record)
            return w["begun"].format(step=begun["step"], total=begun.get("total_steps") or "?") \
                + _anomalies(summary, w)
        if evals or state != "finished":
            return w["eval_only"].format(count=w["evals"](evals)) \
                + _anomalies(summary, w, "and_anomalies")
        return w["final_only"] + _anomalies(summary, w)   # (the `train metrics` block alone)
    took_text = after = ""
    trainings = summary.get("trainings") or 1
    if took is not None and trainings > 1:      # the duration is the whole log's: say so
        took_text = after = w["spans"].format(n=trainings, d=w["duration"](took))
    elif took is not None:
        took_text, after = (w[key].format(w["duration"](took)) for key in ("took", "after"))
    if state == "finished":
        return w["finished"].format(span=_span(summary, w), took=took_text) + _anomalies(summary, w)
    where = _at(summary, w)
    return w["unknown" if where else "unknown_"].format(where=where, took=after) \
        + _anomalies(summary, w)


def _span(summary: dict, w: dict) -> str:
    """'80 epochs' when the run counts whole epochs, else '60 steps (epoch 0.533333)'; a run
    that finished its stated total after its last record, the total ('2628 steps'); a log that
    begins midway in its training (summary's `began`), what it holds ('epochs 2–4 (...)')."""
    epoch, step = summary.get("last_epoch"), summary.get("last_step")
    described = formats.describe(summary.get("format"))
    began = summary.get("began")
    if began:
        return _midway(summary, began, w, described)
    if isinstance(epoch, int) and epoch >= 0:
        return w["epochs"](epoch + described.zero_based_epochs)
    if step is None:
        return w["records"](summary.get("train_records") or 0)
    total = summary.get("total_steps")
    if summary.get("status") == "finished" and (summary.get("progress") or {}).get(
            "percent") == 100.0 and total and total > step and not summary.get(
            "total_steps_estimated"):
        return w["steps"](total)
    steps = ("~" if summary.get("last_step_estimated") else "") \
        + w["steps"](step + described.zero_based_steps)
    return w["steps_epoch"].format(steps, w["epoch"].format(present.number(epoch))) \
        if epoch is not None else steps


def _midway(summary: dict, began: dict, w: dict, described) -> str:
    """What a log that begins midway in its training holds: 'epochs 2–4 (resumed after epoch
    1)' where its epochs are labels, else 'steps 1260–2500 (resumed)' ('epoch 100 (the log
    begins midway)' for one)."""
    first, last = began["epoch"], summary.get("last_epoch")
    if described.epoch_labels and isinstance(first, int) and isinstance(last, int):
        note, one, many = w["resumed_after"].format(first - 1), w["epoch"], w["epoch_range"]
    else:
        first, last = began["step"], summary.get("last_step")
        note, one, many = w["resumed"], w["step"], w["step_range"]
    shown = present.step_number(last, summary.get("last_step_estimated")) \
        if one == w["step"] else last
    where = one.format(shown) if first == last else many.format(f"{first}–{shown}")
    return w["midway"].format(where=where,
                              note=note if began.get("resumed") else w["begins_midway"])


def _at(summary: dict, w: dict) -> str:
    step, epoch = summary.get("last_step"), summary.get("last_epoch")
    if step is None:
        return w["epoch"].format(present.number(epoch)) if epoch is not None else ""
    step = present.step_number(step, summary.get("last_step_estimated"))
    if epoch is None:
        return w["step"].format(step)
    return w["step_epoch"].format(step, present.number(epoch))


def _why(summary: dict, w: dict) -> str:
    """What went wrong first (a divergence, NaN, ...) and what ended the run."""
    found = summary.get("anomalies") or []
    cause = next((a for a in found if a["kind"] not in FAILURES), None)
    end = _short(summary.get("status_evidence") or "")
    if cause is None:
        return end
    return f"{cause['kind']}, {_short(cause['detail'])}" + (w["by"] + end if end else "")


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= LONGEST else text[:LONGEST - 1] + "…"


def _anomalies(summary: dict, w: dict, join: str = "with") -> str:
    """The anomalies' kinds, joined to the state's phrase (`and_anomalies`: after one that ends in a
    noun they would seem to qualify: "no training records")."""
    found = summary.get("anomalies") or []
    return w[join].format(present.kinds(found, w["lang"])) if found else ""


def _where(step, epoch, w: dict, estimated: bool = False) -> str:
    """'epoch 59' for a whole epoch, else 'step 60' ('step ~60' for an estimate; '' when
    neither is known)."""
    if isinstance(epoch, int):
        return w["epoch"].format(present.number(epoch))
    if step is not None:
        return w["step"].format(present.step_number(step, estimated))
    return w["epoch"].format(present.number(epoch)) if epoch is not None else ""


def _best(summary: dict, w: dict) -> str | None:
    """'Best eval_a_loss 1.1 at epoch 1', and where several alike stand equal (two eval
    datasets' losses) that it is the first of them, and the others' best."""
    b = summary.get("best")
    if not b:
        return None
    others = [_figure(o, summary, w, w["figure"]) for o in b.get("alongside", ())]
    return _figure(b, summary, w, w["best"]) + (w["alongside"].format(
        n=len(others) + 1, others=w["list"].join(others)) if others else "")


def _figure(b: dict, summary: dict, w: dict, phrase: str) -> str:
    where = _where(b.get("step"), b.get("epoch"), w, b.get("step_estimated"))
    at = w["at"].format(where) if where else w["at_stated"] if b.get("stated") else ""
    # an evaluation with no step or epoch in a log that trained: another process's (PaddleOCR's
    # tools/eval.py of some checkpoint), not one of the last training's, whatever came before
    apart = not where and not b.get("stated") and summary.get("train_records")
    separate = b.get("separate_evaluations", 0)
    return phrase.format(metric=b["metric"], value=present.number(b["value"]), at=at) \
        + (w["apart"] if apart else w["last_training"] if b.get("last_training") else "") \
        + (w["separate"].format(n=separate) if separate > 1 else "")


def _loss(loss: dict | None, w: dict) -> str | None:
    if not loss:
        return None
    return w["loss"].format(metric=loss["metric"], first=present.number(loss["first"]),
                            last=present.number(loss["last"]))


def _change(loss: dict) -> str:
    """'−30 %'; '×1000' or '÷373' for a tenfold change or more ('' when the first value is
    0)."""
    first, last = loss["first"], loss["last"]
    if not first or not math.isfinite(last):
        return ""
    if first > 0 and last / first >= 10:
        return f"×{present.number(round(last / first))}"
    if first > 0 and last > 0 and first / last >= 10:
        return f"÷{present.number(round(first / last))}"
    change = (last - first) / abs(first) * 100
    return ("−" if change < 0 else "+") + present.percent(abs(change))


def anomaly_line(anomaly: dict, lang: str = "en") -> str:
    """'divergence at step 1 (loss): loss 1808.51 at step 1 is 430x ...' (the detail as the
    analysis wrote it)."""
    w = words(lang)
    where = w["step"].format(present.step_number(anomaly["step"], anomaly.get("step_estimated"))) \
        if anomaly.get("step") is not None else ""
    if anomaly.get("metric"):
        where = f"{where}, {anomaly['metric']}" if where else anomaly["metric"]
    name = wording.kind(anomaly["kind"], lang)
    if not where:
        return f"{name}: {_short(anomaly.get('detail') or '')}"
    return w["anomaly"].format(kind=name, where=where,
                               detail=_short(anomaly.get("detail") or ""))


# --- cards -------------------------------------------------------------------------------
def cards(summary: dict, loss: dict | None = None, lang: str = "en") -> list[dict]:
    """The figures beside the sentence: status, best, final loss, duration, throughput and,
    while running, progress. `text` and `sub` are ready to show; `value` and `better`
    ("max"/"min") let a comparison mark the best run."""
    w = words(lang)
    state = summary.get("status") or "unknown"
    found = summary.get("anomalies") or []
    out = [_card("status", w.get(f"st_{state}", state), present.kinds(found, lang) if found else "")]
    out[0]["state"] = state
    out[0]["warn"] = bool(found)            # (a finished run with anomalies is not all green)
    b = summary.get("best")
    if b:
        where = _where(b.get("step"), b.get("epoch"), w, b.get("step_estimated")) \
            or (w["as_stated"] if b.get("stated") else "")
        alike = w["first_of"].format(len(b["alongside"]) + 1) if b.get("alongside") else ""
        separate = b.get("separate_evaluations", 0)
        last_of = w["last_of"].format(separate) if separate > 1 else ""
        out.append(_card("best", present.number(b["value"]),
                         w["list"].join(x for x in (where, alike, last_of) if x),
                         metric=b["metric"],
                         value=b["value"], better="min" if lower_is_better(b["metric"]) else "max"))
    if loss:
        change = _change(loss)
        sub = w["from"].format(first=present.number(loss["first"]), change=change) if change \
            else ""
        broken = [a for a in found if a["kind"] in BROKEN_LOSS and a.get("metric") == loss["metric"]]
        collapsed = [a for a in broken if a["kind"] != "divergence"]    # 0 is no fall of -100 %
        sub = w["broke"].format(present.kinds(collapsed, lang)) if collapsed else sub
        out.append(_card("loss", present.number(loss["last"]), sub, metric=loss["metric"],
                         value=None if broken else loss["last"], better="min",
                         scale=summary.get("format")))
    out.append(_card("duration", w["duration"](summary.get("wall_seconds")), ""))
    speed = summary.get("throughput")
    if speed:
        unit = formats.describe(summary.get("format")).units.get(speed["metric"], "")
        out.append(_card("throughput", f"{present.number(speed['median'])} {unit}".strip(),
                         w["stated"] if speed.get("stated") else "", metric=speed["metric"],
                         value=speed["median"], better="max", scale=summary.get("format")))
    progress = summary.get("progress")
    if state == "running" and progress:
        eta = summary.get("eta_seconds")
        sub = w["step"].format(present.step_of(progress.get("step"), progress.get("total_steps"),
                                               summary.get("last_step_estimated")))
        out.append(_card("progress", present.percent(progress.get("percent")),
                         sub + (w["eta"].format(w["duration"](eta)) if eta else "")))
    return out


def _card(key: str, text: str, sub: str, metric: str | None = None, value=None,
          better: str | None = None, scale: str | None = None) -> dict:
    """A card; `value` and `better` where it can be the best of several runs (a finite value;
    `scale`: only against cards of the same scale)."""
    card = {"key": key, "text": text, "sub": sub}
    if metric:
        card["metric"] = metric
    if better and value is not None and math.isfinite(value):
        card.update(value=value, better=better)
        if scale:
            card["scale"] = scale
    return card


def mark_best(per_run: list[list[dict]]) -> list[list[dict]]:
    """Set "best" on the card of the best run, per card key and metric, where runs differ."""
    if len(per_run) < 2:
        return per_run
    groups: dict[tuple, list[dict]] = {}
    for run_cards in per_run:
        for card in run_cards:
            if "better" in card:       # (losses of different tools do not compare)
                groups.setdefault((card["key"], card.get("metric"), card.get("scale")),
                                  []).append(card)
    for group in groups.values():
        values = [c["value"] for c in group]
        if len(group) < 2 or len(set(values)) < 2:
            continue
        target = min(values) if group[0]["better"] == "min" else max(values)
        for card in group:
            if card["value"] == target:
                card["best"] = True
    return per_run
