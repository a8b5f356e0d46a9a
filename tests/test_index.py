"""`logreport index` and `logreport query` on trees of real runs: what is a run, the catalog
(DuckDB) and Parquet rows, incremental updates equal to a cold rebuild, the resumed parse."""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import duckdb
import pytest

from logreport import catalog, reader
from logreport.analysis import summarize, summary_json
from logreport.cli import main
from logreport.index import find_runs, index
from logreport.resume import Reader
from logreport.runs import RunSource
from logreport.sources import Input

DATA = Path(__file__).parent / "data"
DET = sorted(p for p in (DATA / "ppdet").glob("*.log") if not p.name.startswith("public_"))
LLM = ["sft_lora", "dpo_lora", "pt_full", "sft_full_diverge", "sft_lora_interrupted"]


def tree(root: Path) -> Path:
    """runs/det/<each real PaddleDetection run>.log, runs/llm/<five LLaMA-Factory output
    folders>, and a notes file that is no log."""
    (root / "det").mkdir(parents=True)
    for log in DET:
        shutil.copy(log, root / "det" / log.name)
    for name in LLM:
        shutil.copytree(DATA / "llamafactory" / name, root / "llm" / name)
    (root / "det" / "notes.txt").write_text("lr 0.01 was too high; 试试 0.001\n", encoding="utf-8")
    return root


def snapshot(site: Path) -> dict:
    """The catalog and the Parquet rows, less what depends on the hour it was made
    (indexed_at, and status evidence saying how long ago a file changed)."""
    con = catalog.connect_views(str(site))
    try:
        runs = con.execute("select * exclude (indexed_at) from catalog_runs order by id")
        names = [d[0] for d in runs.description]
        rows = []
        for values in runs.fetchall():
            row = dict(zip(names, values))
            row.pop("status_evidence")
            row["summary"] = json.loads(row["summary"])
            row["summary"].pop("status_evidence")
            row["view"] = json.loads(row["view"])
            row["view"].pop("evidence")
            rows.append(repr(row))
        metrics = repr(con.execute("select * from metrics order by all").fetchall())
        skipped = con.execute("select id, name, reason from catalog_skipped order by id").fetchall()
    finally:
        con.close()
    return {"runs": rows, "metrics": metrics, "skipped": skipped}


def test_a_tree_of_real_runs_becomes_a_site_and_a_catalog(tmp_path, runner):
    root = tree(tmp_path / "runs")
    site = tmp_path / "site"
    result = runner.invoke(main, ["index", str(root), "-o", str(site), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "skipped det/notes.txt" in result.stderr
    con = catalog.connect_views(str(site))
    try:
        names = [n for (n,) in con.execute("select name from runs order by name").fetchall()]
        folders = con.execute("select folder, count(*) from runs group by folder order by 1").fetchall()
        rows = con.execute("select count(*), count(distinct run_id) from metrics").fetchone()
        ids = [i for (i,) in con.execute("select id from runs").fetchall()]
        skipped = con.execute("select name from catalog_skipped").fetchall()
    finally:
        con.close()
    # one run per log, an LLaMA-Factory output folder is one run
    assert names == sorted([f"det/{p.name}" for p in DET] + [f"llm/{n}" for n in LLM])
    assert folders == [("det", len(DET)), ("llm", len(LLM))]
    assert skipped == [("det/notes.txt",)]
    assert rows[0] > 0 and rows[1] == len(ids)
    for run_id in ids:
        page = (site / "runs" / f"{run_id}.html").read_text(encoding="utf-8")
        assert '<script src="../assets/plotly.min.js"></script>' in page     # shared, relative
        assert len(page) < 400_000                      # not the ~700 kB of plotly.js
        assert (site / "runs" / f"{run_id}.data.js").exists()
    assert (site / "assets" / "plotly.min.js").read_bytes().startswith(b"/**")
    page = (site / "index.html").read_text(encoding="utf-8")
    assert "<script src=" not in page                   # the index page needs no script file


def test_the_catalog_row_is_the_summary(tmp_path):
    root = tree(tmp_path / "runs")
    index([str(root)], str(tmp_path / "site"), jobs=1)
    con = catalog.connect_views(str(tmp_path / "site"))
    try:
        cur = con.execute("select * from runs where name = 'llm/sft_lora'")
        row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    finally:
        con.close()
    want = summarize(reader.load(str(root / "llm" / "sft_lora")))
    assert json.loads(row["summary"])["train_records"] == want["train_records"] == 60
    assert (row["format"], row["status"], row["last_step"], row["total_steps"]) == \
        (want["format"], want["status"], want["last_step"], want["total_steps"])
    assert (row["best_metric"], row["best_value"], row["best_step"]) == \
        (want["best"]["metric"], want["best"]["value"], want["best"]["step"])
    assert row["final_loss"] == want["final"]["loss"] and row["loss_metric"] == "loss"
    assert row["wall_seconds"] == want["wall_seconds"]
    assert row["folder"] == "llm" and row["source"] == str(root / "llm" / "sft_lora")


def test_a_warm_index_reads_nothing_and_writes_nothing(tmp_path):
    root = tree(tmp_path / "runs")
    site = tmp_path / "site"
    index([str(root)], str(site), jobs=1)
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()
              and p.suffix != ".duckdb" and ".wal" not in p.name}
    again = index([str(root)], str(site), jobs=1)
    assert (again.read, again.resumed, again.removed, again.changed) == (0, 0, 0, [])
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before


def _a_third_written(tmp_path):
    """A runs folder whose live.log holds the first third of a real log: (folder, log, text)."""
    text = (DATA / "ppdet" / "picodet_s_320_coco_long80e.log").read_bytes()
    root = tmp_path / "runs"
    root.mkdir()
    live = root / "live.log"
    live.write_bytes(text[:len(text) // 3])
    return root, live, text


def test_an_appended_log_is_read_on_from_where_it_stopped(tmp_path):
    root, live, text = _a_third_written(tmp_path)
    index([str(root)], str(tmp_path / "site"), jobs=1)
    with open(live, "ab") as f:
        f.write(text[len(text) // 3:])
    result = index([str(root)], str(tmp_path / "site"), jobs=1)
    assert (result.read, result.resumed) == (1, 1)
    cold = index([str(root)], str(tmp_path / "cold"), jobs=1)
    assert (cold.read, cold.resumed) == (1, 0)
    assert snapshot(tmp_path / "site") == snapshot(tmp_path / "cold")


def test_a_write_killed_mid_way_leaves_no_file_once_its_run_is_written_again(tmp_path):
    """A worker killed while writing a run's Parquet part (SIGKILL, a lost Dask worker)
    leaves its temporary file; the next write of that run removes it."""
    root, live, text = _a_third_written(tmp_path)
    site = tmp_path / "site"
    index([str(root)], str(site), jobs=1)
    (part,) = (site / ".logreport" / "runs").glob("run_id=*/part-0.parquet")
    (part.parent / ".logreport-killed.tmp").write_bytes(b"PAR1 half written")
    with open(live, "ab") as f:
        f.write(text[len(text) // 3:])
    assert index([str(root)], str(site), jobs=1).read == 1
    assert sorted(p.name for p in part.parent.iterdir()) == ["part-0.parquet"]


def test_a_log_rewritten_with_the_same_first_bytes_is_read_from_the_start(tmp_path):
    """A new run of the same config starts with the same config dump: the first 64 KiB can be
    the same; the bytes before where the last read stopped tell it apart."""
    a = (DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log").read_bytes()
    b = (DATA / "ppdet" / "ppyoloe_crn_s_coco_diverge_lr1000.log").read_bytes()
    root = tmp_path / "runs"
    root.mkdir()
    log = root / "train.log"
    log.write_bytes(a)
    index([str(root)], str(tmp_path / "site"), jobs=1)
    with open(log, "r+b") as f:            # the same file (inode), rewritten in place, longer
        f.write(a[:1000] + b + b)
        f.truncate()
    result = index([str(root)], str(tmp_path / "site"), jobs=1)
    assert (result.read, result.resumed) == (1, 0)
    index([str(root)], str(tmp_path / "cold"), jobs=1)
    assert snapshot(tmp_path / "site") == snapshot(tmp_path / "cold")


@pytest.mark.timeout(240)
def test_after_random_appends_truncations_and_deletions_the_catalog_equals_a_cold_rebuild(
        tmp_path):
    rnd = random.Random(19)
    texts = {p.name: p.read_bytes() for p in DET}
    root = tmp_path / "runs"
    (root / "det").mkdir(parents=True)
    for name in LLM[:2]:
        shutil.copytree(DATA / "llamafactory" / name, root / "llm" / name)
    shown: dict[str, int] = {}              # log -> bytes of its real text written so far
    for name in rnd.sample(sorted(texts), 8):
        shown[name] = rnd.randrange(len(texts[name]))
        (root / "det" / name).write_bytes(texts[name][:shown[name]])
    site = tmp_path / "site"
    index([str(root)], str(site), jobs=2)
    resumed = 0
    for step in range(5):
        for name in rnd.sample(sorted(shown), 4):
            path, text = root / "det" / name, texts[name]
            action = rnd.choice(["append", "append", "truncate", "delete"])
            if action == "append" and shown[name] < len(text):
                end = rnd.randrange(shown[name] + 1, len(text) + 1)
                with open(path, "ab") as f:
                    f.write(text[shown[name]:end])
                shown[name] = end
            elif action == "truncate":
                shown[name] = rnd.randrange(shown[name] + 1)
                with open(path, "r+b") as f:
                    f.truncate(shown[name])
            elif action == "delete":
                path.unlink()
                del shown[name]
        new = rnd.choice(sorted(set(texts) - set(shown)))
        shown[new] = rnd.randrange(1, len(texts[new]) + 1)
        (root / "det" / new).write_bytes(texts[new][:shown[new]])
        with open(root / "llm" / LLM[0] / "console.log", "ab") as f:     # a folder run grows
            f.write(b"[INFO|2026-11-25 17:00:00] llamafactory: still here\n")
        result = index([str(root)], str(site), jobs=1 + step % 2)
        resumed += result.resumed
        cold = tmp_path / f"cold{step}"
        index([str(root)], str(cold), jobs=1)
        assert snapshot(site) == snapshot(cold), step
        gone = set(texts) - set(shown)
        assert not [p for p in (site / "runs").glob("*.html")
                    if p.stem not in {r[0] for r in _ids(site)}]
        assert not gone & {n.split("/")[-1] for (_, n) in _ids(site)}
    assert resumed > 0


def _ids(site: Path) -> list[tuple]:
    con = catalog.connect(str(site), read_only=True)
    try:
        return con.execute("select id, name from catalog_runs").fetchall()
    finally:
        con.close()


def test_a_resumed_read_gives_the_run_a_read_from_the_start_gives(tmp_path):
    """Every real log of tests/data cut at random bytes (mid-line too): read up to the cut,
    then on from its saved state after the rest is appended."""
    rnd = random.Random(14)
    logs = sorted(p for p in DATA.glob("*/*") if p.suffix in (".log", ".jsonl", ".txt"))
    checked = 0
    for log in logs:
        try:
            want = reader.read_source(RunSource(str(log), [Input(str(log))]))
        except Exception:
            continue                           # logs that give no run: nothing to compare
        text = log.read_bytes()
        path = tmp_path / log.name
        for _ in range(2):
            cut = rnd.randrange(len(text) + 1)
            path.unlink(missing_ok=True)
            path.write_bytes(text[:cut])
            os.utime(path, ns=(log.stat().st_mtime_ns,) * 2)      # the same year as the log
            first = Reader(str(path), str(tmp_path / "state"), None)
            mark = first.read()
            with open(path, "ab") as f:
                f.write(text[cut:])
            os.utime(path, ns=(log.stat().st_mtime_ns,) * 2)
            second = Reader(str(path), str(tmp_path / "state"), mark)
            second.read()
            got = second.finish()
            assert second.resumed == (mark.offset > 0)       # a whole line was read
            assert _figures(got, str(path)) == _figures(want, str(log)), (log.name, cut)
            checked += 1
    assert checked > 100


def _figures(run, name: str) -> tuple:
    s = summarize(run)
    s.pop("status_evidence")
    return summary_json([s]).replace(name, "LOG"), repr(list(run.rows()))


def test_names_include_and_exclude(tmp_path):
    root = tree(tmp_path / "runs")
    (tmp_path / "other").mkdir()
    shutil.copy(DET[0], tmp_path / "other" / "x.log")
    names = [e.name for e in find_runs([str(root)], include=["llm/*"])]
    assert names == sorted(f"llm/{n}" for n in LLM)
    names = [e.name for e in find_runs([str(root)], exclude=["det/*", "*diverge*"])]
    assert names == sorted(f"llm/{n}" for n in LLM if "diverge" not in n)
    both = [e.name for e in find_runs([str(root / "llm"), str(tmp_path / "other")])]
    assert both == sorted([f"llm/{n}" for n in LLM] + ["other/x.log"])
    one = find_runs([str(root / "llm" / "sft_lora")])
    assert [(e.name, e.folder) for e in one] == [("sft_lora", "")]
    assert [e.name for e in find_runs([str(root / "det" / "ppyoloe*.log")])] == \
        sorted(p.name for p in DET if p.name.startswith("ppyoloe"))
    index([str(root / "llm")], str(root / "llm" / "site"), jobs=1)       # a site inside the root
    inside = [e.name for e in find_runs([str(root / "llm")], outside=str(root / "llm" / "site"))]
    assert inside == sorted(LLM)


def test_the_index_page_in_chinese(tmp_path):
    root = tree(tmp_path / "runs")
    index([str(root / "llm")], str(tmp_path / "site"), jobs=1, lang="zh")
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="index-data">')[1].split("</script>")[0])
    assert data["lang"] == "zh" and data["labels"]["status"] == "状态"
    assert data["labels"]["compare"] == "对比" and '<html lang="zh">' in page
    assert '<html lang="zh">' in next((tmp_path / "site" / "runs").glob("*.html")).read_text(
        encoding="utf-8")


README_QUERIES = [q.strip() for q in
                  (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
                  .split("```sql")[1:] for q in [q.split("```")[0]]]


def test_query_views_formats_and_the_readme_examples(tmp_path, runner):
    root = tree(tmp_path / "runs")
    site = tmp_path / "site"
    index([str(root)], str(site), jobs=1)
    out = runner.invoke(main, ["query", "--site", str(site), "--csv",
                               "select count(*) as n from runs"])
    assert out.exit_code == 0 and out.stdout == f"n\n{len(DET) + len(LLM)}\n"
    out = runner.invoke(main, ["query", "--site", str(site), "--json",
                               "select run, min(step) as step from metrics where metric = 'loss' "
                               "and isnan(value) group by run order by run"])
    nan = json.loads(out.stdout)
    assert {"run": "det/faster_rcnn_r50_fpn_coco_nan_lr1e8.log", "step": 1} in nan
    assert len(README_QUERIES) == 3
    for sql in README_QUERIES:
        out = runner.invoke(main, ["query", "--site", str(site), "--json", sql])
        assert out.exit_code == 0, (sql, out.output)
    best = json.loads(runner.invoke(main, ["query", "--site", str(site), "--json",
                                           README_QUERIES[0]]).stdout)
    con = duckdb.connect(catalog.path_of(str(site)), read_only=True)
    try:
        top = con.execute("select max(best_value) from catalog_runs where folder = 'det' and "
                          "best_metric = 'bbox/AP'").fetchone()[0]
    finally:
        con.close()
    assert best[0]["folder"] == "det" and best[0]["best_ap"] == top == 0.096
    table = runner.invoke(main, ["query", "--site", str(site), "select name from runs limit 2"])
    assert table.exit_code == 0 and "det/" in table.stdout and "2 rows" in table.stderr


def test_query_and_index_errors_are_one_line(tmp_path, runner):
    out = runner.invoke(main, ["query", "--site", str(tmp_path), "select 1"])
    assert out.exit_code == 2 and "no runs catalog here" in out.stderr
    root = tree(tmp_path / "runs")
    index([str(root / "llm")], str(tmp_path / "site"), jobs=1)
    out = runner.invoke(main, ["query", "--site", str(tmp_path / "site"), "select nope from runs"])
    assert out.exit_code == 2 and out.stderr.count("\n") == 1 and "query failed" in out.stderr
    assert "Traceback" not in out.output
    out = runner.invoke(main, ["index", str(tmp_path / "missing"), "-o", str(tmp_path / "s")])
    assert out.exit_code == 2 and "no such file or folder" in out.stderr
    (tmp_path / "empty").mkdir()
    out = runner.invoke(main, ["index", str(tmp_path / "empty"), "-o", str(tmp_path / "s")])
    assert out.exit_code == 1 and "no log files in this folder" in out.stderr


def test_files_not_named_like_a_log_are_said_not_indexed(tmp_path, runner):
    """A console saved with no extension was left out of the site with `skipped 0`."""
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(DET[0], root / "a.log")
    shutil.copy(DET[0], root / "train")
    out = runner.invoke(main, ["index", str(root), "-o", str(tmp_path / "site")])
    assert out.exit_code == 0
    assert f"logreport: not read, not named like a log (*.log, *.txt, *.out): {root}/train\n" \
        in out.stderr
    assert "1 runs; read 1" in out.stderr
