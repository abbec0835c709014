"""Canonical JSON bytes: one byte sequence per value, so a signature and a hash mean something.

The rules (a subset of RFC 8785, the JSON Canonicalization Scheme, identical to it for
every value planb produces):

- Values: ``None``, ``bool``, ``int``, ``float``, ``str``, a ``Mapping`` with ``str``
  keys, a ``list`` or ``tuple``. Anything else (``datetime``, ``Path``, a dataclass,
  ``bytes``) is refused with the path of the offending value: convert it first.
- Objects: members sorted by key, compared as UTF-16 code units (RFC 8785 §3.2.3).
- No insignificant whitespace: ``,`` and ``:`` with nothing around them.
- Strings: UTF-8, not ASCII-escaped; only ``"``, ``\\`` and control characters below
  U+0020 are escaped (``\\b \\t \\n \\f \\r``, else ``\\u00xx`` in lower-case hex).
  Strings that are not valid Unicode (lone surrogates) are refused.
- Integers: plain decimal; refused outside ±(2**53 - 1) (I-JSON), where readers in
  other languages would silently lose precision.
- Floats: NaN and ±Infinity are refused. Finite floats are written as ECMAScript's
  ``Number.prototype.toString`` writes them (RFC 8785 §3.2.2.3): shortest digits that
  read back to the same float, ``1.0`` as ``1``, ``1e21`` as ``1e+21``, ``1e-7`` as
  ``1e-7``, ``-0.0`` as ``0``.
- The top level may be any value; journals are always objects.

A consequence worth knowing: bytes produced here, parsed back with :func:`json.loads`
and canonicalised again, give the same bytes. :func:`is_canonical` relies on that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonicalError(ValueError):
    """A value cannot be written as canonical JSON; ``where`` is its path (``$.a[2]``)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON encoding of ``value`` as UTF-8 bytes (rules in the module doc)."""
    parts: list[str] = []
    _encode(value, "$", parts)
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # pragma: no cover - strings are checked in _encode
        raise NotCanonicalError("$", f"not valid Unicode: {exc.reason}") from None


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is exactly the canonical encoding of the JSON it contains."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        return canonical_bytes(value) == data
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _encode(value: Any, where: str, out: list[str]) -> None:
    # bool before int: bool is a subclass of int.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonicalError(where, f"integer {value} is outside ±(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_number(value, where))
    elif isinstance(value, str):
        out.append(_string(value, where))
    elif isinstance(value, Mapping):
        _encode_object(value, where, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, f"{where}[{index}]", out)
        out.append("]")
    else:
        raise NotCanonicalError(
            where, f"{type(value).__name__} is not a JSON value; convert it first"
        )


def _encode_object(value: Mapping[Any, Any], where: str, out: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise NotCanonicalError(where, f"object key {key!r} is not a string")
    out.append("{")
    for index, key in enumerate(sorted(value, key=_utf16_order)):
        if index:
            out.append(",")
        child = f"{where}.{key}"
        out.append(_string(key, child))
        out.append(":")
        _encode(value[key], child, out)
    out.append("}")


def _utf16_order(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare in the same order as their code units.
    return key.encode("utf-16-be", errors="surrogatepass")


def _string(value: str, where: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCanonicalError(where, "string is not valid Unicode (lone surrogate)") from None
    # json.dumps escapes exactly ", \ and C0 controls (lower-case \u00xx) when
    # ensure_ascii is off: the RFC 8785 string rules.
    return json.dumps(value, ensure_ascii=False)


def _number(value: float, where: str) -> str:
    """A finite float the way ECMAScript's Number.prototype.toString writes it."""
    if not math.isfinite(value):
        raise NotCanonicalError(where, f"{value} is not allowed in JSON")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digit string that reads back to the same float.
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = digits_tuple.exponent
    assert isinstance(exponent, int)
    k = len(digits)
    n = exponent + k  # the value is 0.digits × 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text
