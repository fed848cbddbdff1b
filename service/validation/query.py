"""What a URL carries: ids in the path, and query strings (pages, filters, ids, integers)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ..errors import FieldError, invalid, not_found
from .cursors import cursor_scope, decode_cursor, encode_cursor
from .fields import MAX_ID, Bad, printable

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_DIGITS = re.compile(r"[0-9]{1,19}")


def _as_id(raw: str) -> int | None:
    """`raw` as an id 1..MAX_ID in plain ASCII digits, or None."""
    # What _DIGITS matches, without a regex call: ASCII 0-9 only, 1 to 19 of them.
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        value = int(raw)
        if 1 <= value <= MAX_ID:
            return value
    return None


def id_filter(raw: str) -> int:
    """A filter's id (?term_id=), for page_query: 1..MAX_ID in plain ASCII digits."""
    if (value := _as_id(raw)) is not None:
        return value
    raise Bad(f"must be an id from 1 to {MAX_ID}")


def path_id(request: web.Request, name: str, what: str) -> int:
    """An id from the path; anything that is not a valid id names no resource."""
    raw = request.match_info[name]
    if (value := _as_id(raw)) is not None:
        return value
    raise not_found(f"{what} {printable(raw)} does not exist")


@dataclass(frozen=True)
class PageQuery:
    """A list request's page and filters, checked: what its handler answers."""

    after: int
    limit: int
    # The checked value of each filter the list defines; None when not given.
    filters: dict[str, Any]
    path: str
    # The filters as the client sent them: the cursor is bound to these.
    given: tuple[tuple[str, str], ...]

    def cursor(self, last_id: int) -> str:
        return encode_cursor(last_id, cursor_scope(self.path, self.given))


def page_query(
    request: web.Request,
    filters: Mapping[str, Callable[[Any], Any]] | None = None,
    *,
    default: int = DEFAULT_LIMIT,
    maximum: int = MAX_LIMIT,
    v1_cursors_with_filters: bool = False,
) -> PageQuery:
    """?limit=, ?cursor= and the list's filters, each checked by its function.

    One 422 names every bad parameter. A cursor must have been issued for
    this path and these filter values; a v1 cursor is taken when no filter
    is given, or always with `v1_cursors_with_filters` (the feed's).
    """
    query = request.query
    errors = []
    clean: dict[str, Any] = {}
    given = []
    for name, check in (filters or {}).items():
        if name not in query:
            clean[name] = None
            continue
        given.append((name, query[name]))
        try:
            clean[name] = check(query[name])
        except Bad as exc:
            errors.append(FieldError(name, str(exc)))
    limit, after = default, 0
    if "limit" in query:
        raw = query["limit"]
        if _DIGITS.fullmatch(raw) and 1 <= int(raw) <= maximum:
            limit = int(raw)
        else:
            errors.append(FieldError("limit", f"must be an integer from 1 to {maximum}"))
    if "cursor" in query:
        try:
            after, scope = decode_cursor(query["cursor"])
        except Bad as exc:
            errors.append(FieldError("cursor", str(exc)))
        else:
            if scope is None and given and not v1_cursors_with_filters:
                errors.append(FieldError("cursor", "is from before this list had filters"))
            elif scope is not None and scope != cursor_scope(request.path, tuple(given)):
                errors.append(FieldError("cursor", "was issued for another list or other filters"))
    if errors:
        raise invalid(errors)
    return PageQuery(after, limit, clean, request.path, tuple(given))


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
        FieldError(printable(name), "is not a query parameter of this endpoint")
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
