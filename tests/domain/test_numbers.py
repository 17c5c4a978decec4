"""Exact JSON numbers: the cue that sends a text to the slow parse, and the literals it keeps."""

from __future__ import annotations

import pytest

from sharelake.domain import numbers
from sharelake.domain.records import compact_json

KEPT = ["12345678901234567890123", "-18446744073709551617", "0.1000000000000000055511151231257827",
        "1e-400", "2.5E-330", "-0", "123456789.1234567", "1e400"]  # fmt: skip
PLAIN = ["0", "-1", "-10", "7.25", "-0.5", "-0.0", "-0e1", "1.5e10", "922337203685477", "1.7e38", "1e-30"]


@pytest.mark.parametrize("literal", KEPT)
def test_literals_a_double_changes_are_kept(literal: str) -> None:
    text = f'{{"n":{literal},"l":[{literal}]}}'
    assert numbers.needs_exact(text.encode())
    value = numbers.load(text)
    assert compact_json(value) == text
    assert numbers.text(value["n"]) == literal


@pytest.mark.parametrize("literal", PLAIN)
def test_literals_orjson_keeps_take_the_fast_parse(literal: str) -> None:
    text = f'{{"n":{literal},"day":"2026-01-05","zone":"+01:00"}}'
    assert not numbers.needs_exact(text.encode())
    assert numbers.load(text) == numbers.loads(text)


def test_exact_numbers_compute_as_numbers() -> None:
    value = numbers.loads(b'{"a":0.1000000000000000055511151231257827,"b":-0,"c":18446744073709551616}')
    assert value["a"] == 0.1
    assert value["b"] == 0
    assert value["c"] == 2**64
