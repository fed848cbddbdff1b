"""Turning what a client sends into checked values, or a 400/415/422.

Rules follow the HTTP contract: unknown fields are rejected, integers are JSON
integers only (not true, "7", 7.0 or null), strings are trimmed and must not
carry control characters (PostgreSQL cannot store NUL, and the others are
never meant in a name).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from .errors import FieldError, Problem, invalid, not_found
from .keys import CONFIG

MAX_ID = 2**63 - 1
MAX_BODY = 1024 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_NOT_SPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,19}")


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


def _check_media_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise Problem(
            415,
            "the request body must be JSON, sent as Content-Type: application/json",
            "unsupported-media-type",
        )
    charset = request.charset
    if charset and charset.lower() not in ("utf-8", "utf8"):
        raise Problem(415, "JSON bodies must be UTF-8", "unsupported-media-type")


async def json_object(request: web.Request) -> dict[str, Any]:
    _check_media_type(request)
    try:
        if request.content.is_eof():
            # Already received in full: nothing to wait for, and read()
            # refuses a body over client_max_size (MAX_BODY) by itself.
            body = await request.read()
        else:
            body = await _read_in_time(request)
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    try:
        document = decode_json(body)
    except ValueError:
        raise Problem(400, "the request body is not valid JSON", "invalid-json") from None
    if not isinstance(document, dict):
        raise Problem(400, "the request body must be a JSON object", "invalid-json")
    return document


async def _read_in_time(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()  # before waiting for a body that will be refused
    try:
        # A client that trickles its body must not hold a handler forever.
        async with asyncio.timeout(request.app[CONFIG].body_timeout):
            return await request.read()
    except TimeoutError:
        raise Problem(408, "the request body did not arrive in time", "request-timeout") from None


def _too_large() -> Problem:
    return Problem(413, "the request body is larger than 1 MiB", "payload-too-large")


# Field checks: each returns the cleaned value or raises _Bad with a message.
class _Bad(Exception):
    pass


def text(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad("must be a string")
        # Tab, CR and LF may surround a value and are trimmed; other control
        # characters are refused wherever they are (str.strip would drop
        # U+001C..U+001F silently).
        if _CONTROL_NOT_SPACE.search(value):
            raise _Bad("must not contain control characters")
        value = value.strip()
        _plain(value)
        if not low <= len(value) <= high:
            raise _Bad(f"must be {low} to {high} characters long")
        return value

    return check


def _plain(value: str) -> None:
    if _CONTROL.search(value):
        raise _Bad("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("must be valid Unicode text") from None


def email(value: Any) -> str:
    value = text(3, 254)(value)
    local, at, domain = value.partition("@")
    if not at or not local or not domain or "@" in domain:
        raise _Bad("must contain exactly one @ with text on both sides")
    if any(ch.isspace() for ch in value):
        raise _Bad("must not contain white space")
    return value


def code(value: Any) -> str:
    value = text(1, 32)(value)
    if any(ch.isspace() for ch in value):
        raise _Bad("must not contain white space")
    return value


def integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # orjson reads integers beyond 64 bits as floats; they are out of range.
        if value is OUT_OF_RANGE or (isinstance(value, float) and abs(value) >= 2**63):
            raise _Bad(f"must be between {low} and {high}")
        if type(value) is not int:
            raise _Bad("must be an integer")
        if not low <= value <= high:
            raise _Bad(f"must be between {low} and {high}")
        return value

    return check


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Bad("must be true or false")
    return value


def one_of(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _Bad(f"must be one of {', '.join(allowed)}")
        return value

    return check


def read_only(value: Any) -> Any:
    raise _Bad("is read-only: the service keeps it")


def nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapped(value: Any) -> Any:
        return None if value is None else check(value)

    return wrapped


def fields(
    document: dict[str, Any],
    checks: dict[str, Callable[[Any], Any]],
    *,
    required: tuple[str, ...] = (),
    at_least_one: bool = False,
) -> dict[str, Any]:
    """Check a JSON object against named field checks; collect every error."""
    # Most bodies are valid: one pass over them, and only a body that fails
    # it pays for collecting every error (about half the cost, by callgrind).
    clean: dict[str, Any] = {}
    try:
        for name, value in document.items():
            clean[name] = checks[name](value)
    except (KeyError, _Bad):
        pass  # an unknown field or a bad value
    else:
        if _complete(clean, required, at_least_one):
            return clean
    raise _every_error(document, checks, required, at_least_one)


def exactly_one(document: dict[str, Any], first: str, second: str) -> list[FieldError]:
    """The errors when `document` has neither or both of two fields that name one thing."""
    if first in document:
        if second not in document:
            return []
        message = f"give only one of {first} and {second}"
        return [FieldError(first, message), FieldError(second, message)]
    if second in document:
        return []
    return [FieldError(first, f"is required, or {second}")]


def batch_items(document: dict[str, Any], maximum: int) -> list[dict[str, Any]]:
    """The items of a batch body, `{"items": [1..maximum objects]}`; else the whole body's 422."""
    errors = [
        FieldError(_printable(name), "is not a known field") for name in document if name != "items"
    ]
    items = document.get("items")
    if "items" not in document:
        errors.append(FieldError("items", "is required"))
    elif not isinstance(items, list) or not 1 <= len(items) <= maximum:
        errors.append(FieldError("items", f"must be a list of 1 to {maximum} objects"))
    else:
        errors += [
            FieldError(f"items[{i}]", "must be an object")
            for i, item in enumerate(items)
            if not isinstance(item, dict)
        ]
    if errors:
        raise invalid(errors)
    return items


def _complete(clean: dict[str, Any], required: tuple[str, ...], at_least_one: bool) -> bool:
    for name in required:
        if name not in clean:
            return False
    return bool(clean) or not at_least_one


def _every_error(
    document: dict[str, Any],
    checks: dict[str, Callable[[Any], Any]],
    required: tuple[str, ...],
    at_least_one: bool,
) -> Problem:
    """The 422 naming every field that is missing, unknown or invalid."""
    errors = [FieldError(name, "is required") for name in required if name not in document]
    errors += [
        FieldError(_printable(name), "is not a known field")
        for name in document
        if name not in checks
    ]
    for name, check in checks.items():
        if name in document:
            try:
                check(document[name])
            except _Bad as exc:
                errors.append(FieldError(name, str(exc)))
    if at_least_one and not document:
        writable = ", ".join(name for name, check in checks.items() if check is not read_only)
        errors.append(FieldError("body", f"give at least one of {writable}"))
    return invalid(errors)


def _printable(name: str) -> str:
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = _CONTROL.sub("?", name)
    return name if len(name) <= 64 else name[:61] + "..."


def _as_id(raw: str) -> int | None:
    """`raw` as an id 1..MAX_ID in plain ASCII digits, or None."""
    # What _DIGITS matches, without a regex call: ASCII 0-9 only, 1 to 19 of them.
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        value = int(raw)
        if 1 <= value <= MAX_ID:
            return value
    return None


def path_id(request: web.Request, name: str, what: str) -> int:
    """An id from the path; anything that is not a valid id names no resource."""
    raw = request.match_info[name]
    if (value := _as_id(raw)) is not None:
        return value
    raise not_found(f"{what} {_printable(raw)} does not exist")


# Pagination: the cursor is the last id of the previous page, base64url-coded
# with a version prefix so clients treat it as opaque and we may change it.
_CURSOR_PREFIX = "v1:"


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> int:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text_ = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise _Bad("is not a cursor from this API") from None
    digits = text_.removeprefix(_CURSOR_PREFIX)
    if digits == text_ or not _DIGITS.fullmatch(digits) or not 0 < int(digits) <= MAX_ID:
        raise _Bad("is not a cursor from this API")
    return int(digits)


def page_params(
    request: web.Request, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT
) -> tuple[int, int]:
    """(after_id, limit) from ?cursor= and ?limit=."""
    return parse_page_query(request.query, default=default, maximum=maximum)


def query_id(query: Mapping[str, str], name: str) -> int | None:
    """An optional id from the query string; 422 naming it when it is not one."""
    if name not in query:
        return None
    if (value := _as_id(query[name])) is not None:
        return value
    raise invalid([FieldError(name, f"must be an id from 1 to {MAX_ID}")])


def query_integer(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    if name not in query:
        return None
    raw = query[name]
    if _DIGITS.fullmatch(raw) and low <= int(raw) <= high:
        return int(raw)
    raise invalid([FieldError(name, f"must be an integer from {low} to {high}")])


def check_query(query: MultiMapping[str], allowed: frozenset[str]) -> None:
    """422 naming every query parameter the endpoint does not define, or gives twice.

    A typo such as ?limt=5 or ?emial= must not pass silently as "no filter".
    """
    errors = [
        FieldError(_printable(name), "is not a query parameter of this endpoint")
        for name in dict.fromkeys(query)
        if name not in allowed
    ]
    errors += [
        FieldError(name, "is given more than once")
        for name in dict.fromkeys(query)
        if name in allowed and len(query.getall(name)) > 1
    ]
    if errors:
        raise invalid(errors)


def parse_page_query(
    query: Mapping[str, str], *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT
) -> tuple[int, int]:
    """(after_id, limit) from a parsed query; 422 naming limit or cursor."""
    errors = []
    limit, after = default, 0
    if "limit" in query:
        raw = query["limit"]
        if _DIGITS.fullmatch(raw) and 1 <= int(raw) <= maximum:
            limit = int(raw)
        else:
            errors.append(FieldError("limit", f"must be an integer from 1 to {maximum}"))
    if "cursor" in query:
        try:
            after = _decode_cursor(query["cursor"])
        except _Bad as exc:
            errors.append(FieldError("cursor", str(exc)))
    if errors:
        raise invalid(errors)
    return after, limit
