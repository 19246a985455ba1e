"""Size strings: the shared table (tests/data/sizes.json, also run by web/test/sizes.test.js)
against quantann/budget.py, so that a budget admits the same bytes in Python and the browser."""
import json
from pathlib import Path

import pytest

from quantann.budget import format_size, parse_size
from quantann.constants import SIZE_UNITS

TABLE = json.loads((Path(__file__).parent / "data" / "sizes.json").read_text())


@pytest.mark.parametrize("case", TABLE["parse"], ids=lambda c: repr(c["in"]))
def test_parse(case):
    if "error" in case:
        with pytest.raises(ValueError, match=case["error"]):
            parse_size(case["in"])
    else:
        assert parse_size(case["in"]) == case["bytes"]


@pytest.mark.parametrize("n,text", TABLE["format"])
def test_format(n, text):
    assert format_size(n) == text


def test_units_come_from_the_constants():
    assert SIZE_UNITS["MB"] == 10**6 and SIZE_UNITS["MiB"] == 2**20
    for unit, v in SIZE_UNITS.items():
        assert parse_size(f"3{unit}") == parse_size(f"3{unit.lower()}") == 3 * v


def test_ambiguous_unit_suggests_both():
    with pytest.raises(ValueError) as e:
        parse_size("300M")
    assert "300MB" in str(e.value) and "300MiB" in str(e.value)
