"""Property tests: no parser raises on random or mutated input, and splitting is chunk-proof."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import DATA, documents, raw_bytes  # also loads the hypothesis profile

from logreport import formats
from logreport.events import Record
from logreport.sources import LineSplitter

pytestmark = pytest.mark.timeout(120)      # properties: hundreds of examples each

FORMATS = formats.all_formats()


def parse_all(fmt, lines):
    parser = fmt.Parser()
    events = []
    for number, text in enumerate(lines, 1):
        events.extend(parser.feed(text, number) or [])
    return events + parser.finish()


@given(documents)
def test_no_format_raises_on_mutated_real_lines(lines):
    for fmt in FORMATS:
        parse_all(fmt, lines)
        fmt.sniff(lines)


@given(raw_bytes)
def test_no_format_raises_on_random_bytes(data):
    splitter = LineSplitter()
    lines = [text for _, text in splitter.feed(data) + splitter.flush()]
    for fmt in FORMATS:
        parse_all(fmt, lines)


@given(raw_bytes, st.lists(st.integers(0, 400), max_size=8))
def test_splitting_is_the_same_whatever_the_chunks(data, cuts):
    whole = LineSplitter()
    expected = whole.feed(data) + whole.flush()
    pieces = LineSplitter()
    got, start = [], 0
    for cut in sorted(set(c for c in cuts if c <= len(data))) + [len(data)]:
        got.extend(pieces.feed(data[start:cut]))
        start = cut
    got.extend(pieces.flush())
    assert [t for _, t in got] == [t for _, t in expected]
    assert [n for n, _ in got] == [n for n, _ in expected]


# --- junk between real lines: a malformed line never stops a parse nor changes a record --------
JUNK_LOGS = {  # real logs with many records and multi-line eval tables
    "ppdet": ["ppdet/ppyoloe_crn_s_coco_train.log", "ppdet/ppyoloe_crn_s_coco_evalonly_classwise.log",
              "ppdet/public_10_ppyolov2_voc_eval_indented_notebook.log"],
    "hf_trainer": ["llamafactory/02_pt_lora_v0.7_step_dicts.log",
                   "llamafactory/50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"],
}
JUNK_CASES = [(formats.get(name), path) for name, paths in JUNK_LOGS.items() for path in paths]
FOREIGN = {"ppdet": "llamafactory", "hf_trainer": "ppdet"}    # the other family's real lines


def foreign_lines(fmt) -> list[str]:
    lines = []
    for path in sorted((DATA / FOREIGN[fmt.NAME]).glob("*.log")):
        lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    # a line opening LLaMA-Factory's example dump is structure, not junk: what follows it is the
    # user's own data and is skipped on purpose until the next logger line
    return [line for line in lines
            if line.strip() and line.strip() not in ("training example:", "eval example:")]


FOREIGN_LINES = {fmt.NAME: foreign_lines(fmt) for fmt, _ in JUNK_CASES}
junk_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=60),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")
                               .decode("utf-8", "replace")))


def records(fmt, numbered):
    """The records a fresh parser makes of (number, text) lines, as comparable tuples."""
    parser = fmt.Parser()
    events = []
    for number, text in numbered:
        events.extend(parser.feed(text, number) or [])
    events.extend(parser.finish())
    return [(e.line, e.phase, e.step, e.epoch, e.time, sorted(e.metrics.items()))
            for e in events if isinstance(e, Record)]


@given(st.sampled_from(JUNK_CASES), st.data())
def test_junk_lines_between_real_lines_change_no_record(case, data):
    """Random text, random bytes or another log family's real lines, inserted anywhere (inside
    eval tables too): the records of the real lines stay exactly the same."""
    fmt, path = case
    junk = st.one_of(junk_text, st.sampled_from(FOREIGN_LINES[fmt.NAME]))
    inserts = data.draw(st.lists(st.tuples(st.integers(0, 10**6), junk), min_size=1, max_size=12))
    real = (DATA / path).read_text(encoding="utf-8").splitlines()
    junk_at = {}
    for at, text in inserts:
        junk_at.setdefault(at % (len(real) + 1), []).append(text)
    mixed, original = [], {}    # mixed line number -> real line number
    for index in range(len(real) + 1):
        for text in junk_at.get(index, []):
            mixed.append((len(mixed) + 1, text))
        if index < len(real):
            mixed.append((len(mixed) + 1, real[index]))
            original[len(mixed)] = index + 1
    expected = records(fmt, list(enumerate(real, 1)))
    got = [(original[line], *rest) for line, *rest in records(fmt, mixed) if line in original]
    assert got == expected


def test_found_by_fuzzing_a_record_after_a_traceback_header_is_kept():
    """Another rank's record between a traceback's header and its body still counts."""
    real = (DATA / JUNK_LOGS["hf_trainer"][0]).read_text(encoding="utf-8").splitlines()
    fmt = formats.get("hf_trainer")
    mixed = [(1, "Traceback (most recent call last):")] + [(n + 1, t) for n, t in
                                                           enumerate(real, 1)]
    assert [r[1:] for r in records(fmt, mixed)] == \
        [r[1:] for r in records(fmt, list(enumerate(real, 1)))]


def test_found_by_fuzzing_a_jsonl_epoch_that_is_not_a_number():
    line = (DATA / "llamafactory/07_trainer_log_v0.1_pt_final_null.jsonl").read_text(
        encoding="utf-8").splitlines()[0]
    swapped = line.replace('"epoch": 0.99', '"epoch": "0:32:48"').replace(
        '"current_steps": 3200', '"current_steps": true')
    (rec,) = [e for e in formats.get("llamafactory").Parser().feed(swapped, 1)
              if isinstance(e, Record)]
    assert rec.epoch is None and rec.step == 1 and rec.metrics["loss"] == 4.4671
