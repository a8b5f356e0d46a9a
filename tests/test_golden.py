"""Every real fixture in tests/data parses to its hand-checked facts."""
import json

import pytest
from golden import REQUIRED, cases, facts

from logreport.errors import UnknownFormat
from logreport.reader import load

CASES = cases()


@pytest.mark.parametrize("path,expected", CASES, ids=[c[0].name for c in CASES])
def test_fixture_parses_to_expected_facts(path, expected):
    want = json.loads(expected.read_text(encoding="utf-8"))
    assert set(REQUIRED) <= set(want), f"{expected.name} must state {REQUIRED}"
    got = facts(load(str(path)))
    assert {k: got.get(k) for k in want} == want


REFUSED = cases(refused=True)


@pytest.mark.parametrize("path,expected", REFUSED, ids=[c[0].name for c in REFUSED])
def test_fixture_no_format_claims_is_refused(path, expected):
    want = json.loads(expected.read_text(encoding="utf-8"))["refused"]
    with pytest.raises(UnknownFormat) as refusal:
        load(str(path))
    assert str(refusal.value).startswith(want)


def test_there_are_cases():
    assert len(CASES) >= 40
