"""Canonical JSON bytes: the exact bytes that are hashed and signed."""

from __future__ import annotations

import json
import math

import pytest

from planb.reports.canonical import NotCanonicalError, canonical_bytes, is_canonical


def test_keys_sorted_no_whitespace_utf8_not_escaped() -> None:
    data = {"b": 1, "a": [True, False, None], "é": "Lyon – Métropole"}
    assert canonical_bytes(data) == (
        '{"a":[true,false,null],"b":1,"é":"Lyon – Métropole"}'.encode()
    )


def test_same_value_same_bytes_whatever_the_insertion_order() -> None:
    assert canonical_bytes({"x": 1, "y": {"b": 2, "a": 3}}) == canonical_bytes(
        {"y": {"a": 3, "b": 2}, "x": 1})


def test_only_quote_backslash_and_control_characters_are_escaped() -> None:
    assert canonical_bytes('a"b\\c\n\t\x01\u2028/') == '"a\\"b\\\\c\\n\\t\\u0001\u2028/"'.encode()


def test_keys_sorted_by_utf16_code_units_like_rfc8785() -> None:
    # U+1F600 is a surrogate pair in UTF-16 (0xD83D...), which sorts before U+FB01;
    # sorting by code point would put it after.
    data = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonical_bytes(data) == '{"a":3,"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (-0.0, "0"), (0.5, "0.5"), (41.25, "41.25"), (1e21, "1e+21"),
    (1e20, "100000000000000000000"), (1e-7, "1e-7"), (0.000001, "0.000001"),
    (123456789.125, "123456789.125"), (-2.5e-10, "-2.5e-10"), (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_floats_written_as_ecmascript_does(value: float, text: str) -> None:
    assert canonical_bytes(value) == text.encode()
    assert json.loads(text) == value


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_refused_with_their_path(bad: float) -> None:
    with pytest.raises(NotCanonicalError) as caught:
        canonical_bytes({"steps": [{"duration": bad}]})
    assert caught.value.where == "$.steps[0].duration"


@pytest.mark.parametrize("bad", [object(), b"bytes", {1, 2}])
def test_non_json_values_refused(bad: object) -> None:
    with pytest.raises(NotCanonicalError, match=r"\$\.x: .* is not a JSON value"):
        canonical_bytes({"x": bad})


def test_non_string_keys_and_huge_integers_refused() -> None:
    with pytest.raises(NotCanonicalError, match="not a string"):
        canonical_bytes({1: "a"})
    with pytest.raises(NotCanonicalError, match="outside"):
        canonical_bytes({"n": 2**53})
    assert canonical_bytes(2**53 - 1) == b"9007199254740991"


def test_lone_surrogate_refused() -> None:
    with pytest.raises(NotCanonicalError, match="lone surrogate"):
        canonical_bytes({"s": "\ud800"})


def test_round_trip_is_stable_and_detected() -> None:
    data = canonical_bytes({"rto": 42.0, "list": [1, 2.5, "x"], "nested": {"z": None}})
    assert is_canonical(data)
    assert canonical_bytes(json.loads(data)) == data
    assert not is_canonical(b'{"b":1, "a":2}')
    assert not is_canonical(b'{"a":NaN}')
    assert not is_canonical(b"\xff")
