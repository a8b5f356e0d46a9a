"""Every format's own sample lines give exactly their events, and no other format claims them."""
import copy

import pytest

from logreport import formats

SAMPLES = [(fmt, i, text, events) for fmt in formats.all_formats()
           for i, (text, events) in enumerate(fmt.SAMPLES)]


def parse(fmt, text):
    parser = fmt.Parser()
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        out.extend(parser.feed(line, number) or [])
    return out + parser.finish()


def comparable(event, expected):
    """Time is only compared when the sample fixes it (ppdet stamps have no year)."""
    if type(event) is type(expected) and getattr(expected, "time", 0) is None:
        event = copy.copy(event)
        event.time = None
    return event


@pytest.mark.parametrize("fmt,i,text,expected", SAMPLES,
                         ids=[f"{s[0].NAME}-{s[1]}" for s in SAMPLES])
def test_sample_gives_its_events(fmt, i, text, expected):
    got = parse(fmt, text)
    assert len(got) == len(expected)
    for event, want in zip(got, expected):
        assert repr(comparable(event, want)) == repr(want)


@pytest.mark.parametrize("fmt,i,text,expected", SAMPLES,
                         ids=[f"{s[0].NAME}-{s[1]}" for s in SAMPLES])
def test_no_other_format_claims_the_sample(fmt, i, text, expected):
    lines = text.split("\n")
    assert formats.detect(lines) is fmt
    for other in formats.all_formats():
        if other is not fmt:
            assert other.sniff(lines) < formats.THRESHOLD, other.NAME


def test_every_format_has_samples():
    for fmt in formats.all_formats():
        assert fmt.SAMPLES, fmt.NAME
