"""/events: the history of every change, as a feed to follow."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..errors import FieldError, Problem, invalid
from ..feed import Filter
from ..keys import FEED, LIMITS, WORK
from ..repositories import events
from ..validation.query import page_query, query_id, query_integer
from . import render

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_WAIT = 30
TYPES = frozenset(
    {
        "student.created",
        "student.updated",
        "student.deleted",
        "course.created",
        "course.updated",
        "course.deleted",
        "enrollment.created",
        "enrollment.deleted",
        "waitlist.joined",
        "waitlist.left",
        "waitlist.passed_over",
        "term.created",
        "term.updated",
        "term.deleted",
        "hold.placed",
        "hold.removed",
        "completion.added",
        "completion.removed",
    }
)
QUERY = frozenset({"cursor", "limit", "student_id", "course_id", "type", "wait"})
# The filters a cursor is bound to, checked below (a follower that changed
# them would skip the events of the new filters it has not read). ?wait=
# may change from one read to the next.
FILTERS = {"student_id": str, "course_id": str, "type": str}


def _types(query) -> list[str] | None:
    if "type" not in query:
        return None
    asked = [t.strip() for t in query["type"].split(",")]
    unknown = [t for t in asked if t not in TYPES]
    if unknown or not asked:
        message = "must be a comma list of event types (EventType in /openapi.json)"
        raise invalid([FieldError("type", message)])
    return sorted(set(asked))


async def list_(request: web.Request) -> web.Response:
    query = request.query
    # Cursors from before they were bound (v1) are taken with any filters:
    # followers keep theirs across upgrades.
    paging = page_query(
        request, FILTERS, default=DEFAULT_LIMIT, maximum=MAX_LIMIT, v1_cursors_with_filters=True
    )
    after, limit = paging.after, paging.limit
    filters = {
        "types": _types(query),
        "student_id": query_id(query, "student_id"),
        "course_id": query_id(query, "course_id"),
    }
    wait = query_integer(query, "wait", 0, MAX_WAIT) or 0
    if not wait:
        page = await _read(request, after, limit, filters)
    else:
        with request.app[LIMITS].long_polls.place(request):
            page = await _poll(request, after, limit, filters, wait)
    # Never null: on the last page, where to poll from next (the horizon is
    # far above 0, so next_after always makes a valid cursor).
    return render.json({"items": page.items, "next_cursor": paging.cursor(page.next_after)})


async def _read(request: web.Request, after: int, limit: int, filters: dict) -> events.FeedPage:
    async with request[WORK].block() as conn:
        page = await events.page(conn, after=after, limit=limit, **filters)
    if "cursor" in request.query and after < page.purged_through:
        raise Problem(
            410,
            "the cursor points before the history kept (EVENTS_RETENTION_DAYS): "
            "start again without a cursor",
            "cursor-expired",
        )
    return page


async def _poll(
    request: web.Request, after: int, limit: int, filters: dict, wait: int
) -> events.FeedPage:
    """The first page past `after` that has events, or the empty one after `wait` seconds."""
    feed = request.app[FEED]
    types = filters["types"]
    waits_for = Filter(
        frozenset(types) if types is not None else None, filters["student_id"], filters["course_id"]
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        page = await _read(request, after, limit, filters)
        remaining = deadline - loop.time()
        if page.items or remaining <= 0 or feed.stopping:
            return page
        # Nothing yet: wait, holding no connection, until the watcher sees an
        # event this poll's filters match past where this page ends.
        after = page.next_after
        await feed.wait(after, remaining, waits_for)
