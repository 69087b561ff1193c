"""JSON from outside, read strictly: the one decoder of REST bodies and WebSocket frames.

RFC 8259 JSON has no ``NaN`` or ``Infinity``; Python's decoder accepts them (and turns ``1e400``
into ``inf``), and its encoder writes them back as bare ``NaN``, which no browser parses, when a
value is echoed in an answer. Nesting deeper than the interpreter's recursion limit raises
``RecursionError``, not ``ValueError``. Here all of these are ``ValueError``: a bad request.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The number {text[:40]} is out of range.")
    return value


# One decoder for every call: ``json.loads`` with options builds a decoder (and its scanner)
# per call, which costs as much as decoding a small frame.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def json_loads(raw: str | bytes) -> Any:
    """``json.loads`` for untrusted input; ValueError (or UnicodeDecodeError) when refused."""
    # What ``json.loads`` does before decoding.
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
    else:
        raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
    try:
        return _DECODER.decode(raw)
    except RecursionError:
        raise ValueError("The JSON is nested too deeply.") from None
