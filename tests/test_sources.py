"""LineSplitter: complete lines only, \r ends a line, decoding never fails."""
from logreport.sources import LineSplitter, decode


def test_partial_line_waits_for_its_end():
    s = LineSplitter()
    assert s.feed(b"Epoch: [0] [ 0/12] learning") == []
    assert s.feed(b"_rate: 0.1\nnext") == [(1, "Epoch: [0] [ 0/12] learning_rate: 0.1")]
    assert s.flush() == [(2, "next")]


def test_carriage_return_frames_share_the_line_number():
    s = LineSplitter()
    out = s.feed(b" 10%|#  | 1/10\r 20%|## | 2/10\r{'loss': 1.0}\n")
    assert out == [(1, " 10%|#  | 1/10"), (1, " 20%|## | 2/10"), (1, "{'loss': 1.0}")]


def test_crlf_split_across_chunks_is_one_line_end():
    s = LineSplitter()
    assert s.feed(b"a\r") == [(1, "a")]          # (its frame is complete either way)
    assert s.feed(b"\nb\r\n") == [(2, "b")]


def test_frames_before_the_last_carriage_return_are_complete():
    s = LineSplitter()
    assert s.feed(b" 1/10\r 2/10\r 3/1") == [(1, " 1/10"), (1, " 2/10")]


def test_decoding_gbk_ansi_and_invalid_bytes():
    assert decode("训练开始".encode("gbk")) == "训练开始"
    assert decode(b"\x1b[93mWarning\x1b[0m") == "Warning"
    assert decode(b"ok \xff\xfe\xfa end") .startswith("ok ")


def test_blank_lines_are_counted_but_not_returned():
    s = LineSplitter()
    assert s.feed(b"a\n\n  \nb\n") == [(1, "a"), (4, "b")]


def test_a_line_of_frames_decodes_as_each_frame_alone():
    """frames() decodes a UTF-8 line at once, then splits it at \\r: the frames are those of
    decoding each piece alone (ANSI codes, NULs, GBK and invalid bytes among them)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.sources.text import frames

    pieces = st.sampled_from([b"  2%|\xe2\x96\x8f  | 1/60 [00:00<00:28,  2.04it/s]", b"   ", b"",
                              b"\x1b[A", b"{'loss': '7.622'}", b"\xd1\xb5\xc1\xb7 loss: 1.0",
                              b"\xff\xfe bad", b"a\x00b", b"\x1b[31mred\x1b[0m", b"\xe2\x96"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(pieces, max_size=6))
    def check(parts):
        raw = b"\r".join(parts)
        out: list = []
        frames(raw, 7, out)
        alone = [decode(p) for p in (raw.split(b"\r") if b"\r" in raw else [raw])]
        assert out == [(7, text) for text in alone if text]

    check()


def test_lf_ends_gives_each_line_end_of_the_text_it_returns():
    """A block's `\\r\\n` ends read as `\\n`, and the offsets of the line ends in what is
    returned (the fast paths take them instead of scanning again): a real console whose bars
    end some lines with `\\r\\n`, whole, from a line end, and from a `\\r\\n`'s `\\n`."""
    from pathlib import Path

    import numpy as np

    from logreport.sources import lf_ends

    data = (Path(__file__).parent / "data" / "events" / "hf_tensorboard" / "console.log").read_bytes()
    crlf = data.index(b"\r\n")
    for block in (data, data[data.index(b"\n") + 1:], data[crlf + 1:], b"\n" + data, b""):
        text, ends = lf_ends(block)
        assert text == block.replace(b"\r\n", b"\n")
        assert ends.tolist() == np.flatnonzero(np.frombuffer(text, np.uint8) == 10).tolist()
    assert data.count(b"\r\n") == 4
