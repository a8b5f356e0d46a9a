"""Property tests: no parser raises on random or mutated input, and splitting is chunk-proof."""
from hypothesis import given
from hypothesis import strategies as st

from logreport import formats
from logreport.sources import LineSplitter
from strategies import documents, raw_bytes  # also loads the hypothesis profile

FORMATS = formats.all_formats()


def parse_all(fmt, lines):
    parser = fmt.Parser()
    events = []
    for number, text in enumerate(lines, 1):
        events.extend(parser.feed(text, number))
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
