"""JSON documents decoded, integers beyond 64 bits included.

orjson refuses integer literals past 64 bits, which are valid JSON: the
standard parser reads those documents instead, with each such literal as
OUT_OF_RANGE, so a field check answers 422 (out of range) rather than 400.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class _OutOfRange:
    """Stands in for an integer literal too long to be any valid value."""


OUT_OF_RANGE = _OutOfRange()


def _parse_int(text: str) -> int | _OutOfRange:
    # Beyond 20 digits no field can accept it; skip int() on huge literals.
    return int(text) if len(text) <= 20 else OUT_OF_RANGE


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes) -> Any:
    """Parse a JSON document; raise ValueError when it is not one."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits, which are valid JSON: let the
    # standard parser tell those apart from garbage, so they become 422.
    try:
        return json.loads(
            body.decode("utf-8"), parse_int=_parse_int, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
