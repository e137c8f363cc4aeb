"""RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form of a JSON value that is signed and hashed.

- object members sorted by their names' UTF-16 code units; no whitespace;
- strings as ECMAScript's ``JSON.stringify`` writes them: ``\\"``, ``\\\\``, ``\\b``, ``\\f``, ``\\n``,
  ``\\r``, ``\\t``, other control characters and lone surrogates as lowercase ``\\u00xx``, everything
  else as itself, in UTF-8;
- numbers as ECMAScript's ``Number.prototype.toString`` writes IEEE 754 doubles: the shortest digits that
  read back to the same double, plain notation from 1e-6 up to (not including) 1e21, exponent notation
  (``1e-7``, ``1e+21``) outside it, no ``-0``. Integers must be exact as doubles (|n| <= 2**53);
  NaN and infinities are not JSON.

Any RFC 8785 implementation produces the same bytes (the standalone verifier in docs/ carries its own,
with nothing but Python's standard library).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

__all__ = ["canonical", "canonical_text", "es_number"]

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_EXACT = 2**53


def canonical(value: Any) -> bytes:
    """The JCS bytes of ``value`` (dicts, lists/tuples, str, int, float, bool, None)."""
    return canonical_text(value).encode("utf-8", "surrogatepass")


def canonical_text(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) <= _EXACT:
            return str(value)
        text = es_number(float(value))  # JSON numbers are IEEE 754 doubles: the nearest one's text
        if text != str(value) and int(float(value)) != value:  # reading it back would give another number
            raise ValueError(f"JCS: the integer {value} is not exact as an IEEE 754 double")
        return text
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_text(v) for v in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("JCS: object member names must be strings")
        members = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(_string(k) + ":" + canonical_text(v) for k, v in members) + "}"
    raise TypeError(f"JCS: cannot encode {type(value).__name__}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(text: str) -> str:
    if text.isascii() or not _SURROGATE.search(text):
        return str(encode_basestring(text))  # the same escapes as JCS, in C
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def es_number(x: float) -> str:
    """ECMAScript's Number::toString for a finite double."""
    if not math.isfinite(x):
        raise ValueError("JCS: NaN and infinities are not JSON numbers")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    _, digit_tuple, exponent = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), int(exponent) + len(digits)  # x = 0.d1..dk * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
