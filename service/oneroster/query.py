"""What a request to the provider asks: the page, the sort, the filter, the fields.

The binding's parameters (limit, offset, sort, orderBy, filter, fields),
checked; a value the binding does not allow is 400 in its form, naming the
parameter: invalid_filter_field for a filter (filters.py),
invalid_sort_field for a field `sort=` cannot name, invalid_selection_field
for one `fields=` cannot name, invaliddata for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from ..validation.fields import printable
from .errors import INVALID_DATA, INVALID_SELECTION_FIELD, INVALID_SORT_FIELD, bad_request
from .filters import NONE, Filter, parse
from .records import RecordType

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The binding's int32.
MAX_OFFSET = 2**31 - 1

_INTEGER = re.compile(r"[0-9]{1,10}")

# The query parameters of a collection and of a single record.
COLLECTION = frozenset({"limit", "offset", "sort", "orderBy", "filter", "fields"})
SINGLE = frozenset({"fields"})


@dataclass(frozen=True)
class Query:
    filter: Filter = NONE
    # A field of the record (None: the collection's own order).
    sort: str | None = None
    descending: bool = False
    # The fields each record keeps (None: all).
    fields: tuple[str, ...] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _integer(query, name: str, default: int, low: int, high: int) -> int:
    if name not in query:
        return default
    raw = query[name]
    if _INTEGER.fullmatch(raw) and low <= int(raw) <= high:
        return int(raw)
    raise bad_request(f"{name} must be an integer from {low} to {high}", INVALID_DATA)


def fields(request: web.Request, record: RecordType) -> tuple[str, ...] | None:
    """`fields=`: a comma-separated list of the record's fields."""
    if "fields" not in request.query:
        return None
    names = tuple(request.query["fields"].split(","))
    if len(set(names)) < len(names):
        raise bad_request("fields: a field is named twice", INVALID_SELECTION_FIELD)
    unknown = [name for name in names if name not in record.fields]
    if unknown:
        shown = ", ".join(repr(printable(name)) for name in unknown[:5])
        raise bad_request(
            f"fields: {shown} is not a field of a {record.single}", INVALID_SELECTION_FIELD
        )
    return names


def collection(request: web.Request, record: RecordType) -> Query:
    """The checked parameters of a request for a collection of `record`s."""
    query = request.query
    limit = _integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _integer(query, "offset", 0, 0, MAX_OFFSET)
    order = query.get("orderBy", "asc")
    if order not in ("asc", "desc"):
        raise bad_request("orderBy must be asc or desc", INVALID_DATA)
    sort = query.get("sort")
    if sort is not None and sort not in record.scalars:
        raise bad_request(
            f"sort: {printable(sort)!r} is not a field a {record.single} can be sorted on",
            INVALID_SORT_FIELD,
        )
    found = parse(query["filter"], record.scalars) if "filter" in query else NONE
    return Query(found, sort, order == "desc", fields(request, record), limit, offset)
