"""Events: the recorded history of every change, read as a feed."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from ..models import Event, from_row
from ..sql import QUERIES

Q = QUERIES.events


@dataclass
class FeedPage:
    items: list[Event]
    # Where the next page starts: the last event's id, or, when the page
    # holds fewer than were asked for, the feed's horizon (everything below
    # it has been read).
    next_after: int
    # Retention has deleted events up to this id: a cursor below it is expired.
    purged_through: int


async def page(
    conn: asyncpg.Connection,
    *,
    after: int,
    limit: int,
    types: list[str] | None = None,
    student_id: int | None = None,
    course_id: int | None = None,
) -> FeedPage:
    if student_id is not None:
        rows = await conn.fetch(Q.list_student_events, after, types, limit, student_id, course_id)
    elif course_id is not None:
        rows = await conn.fetch(Q.list_course_events, after, types, limit, course_id)
    else:
        rows = await conn.fetch(Q.list_events, after, types, limit)
    items = [
        from_row(Event, r, data=orjson.Fragment(r["data"])) for r in rows if r["id"] is not None
    ]
    below, purged_through = rows[0]["below"], rows[0]["purged_through"]
    if len(items) == limit:
        next_after = items[-1].id
    else:
        next_after = max(after, below - 1, items[-1].id if items else 0)
    return FeedPage(items, next_after, purged_through)


@dataclass(frozen=True, slots=True)
class Mark:
    """What a long poll is woken by: an event's id and what it is about."""

    id: int
    type: str
    student_id: int | None
    course_id: int | None


async def since(conn: asyncpg.Connection, *, first: int, limit: int) -> tuple[int, list[Mark]]:
    """The feed's horizon, and the servable events from id `first` on (`limit` at most)."""
    rows = await conn.fetch(Q.events_since, first, limit)
    marks = [from_row(Mark, r) for r in rows if r["id"]]
    return rows[0]["below"], marks


# The events one purge_events statement looks at, and the tombstones one
# purge_tombstones deletes, at most (their limits).
PURGE_BATCH = 1000


async def purge(conn: asyncpg.Connection, *, before: object) -> int:
    """Delete what is from before `before` among the PURGE_BATCH oldest events; how many went."""
    return await conn.fetchval(Q.purge_events, before)


async def purge_tombstones(conn: asyncpg.Connection, *, before: object) -> int:
    """Delete PURGE_BATCH at most of the tombstones from before `before`, oldest first; how many went.

    The tombstones (a deletion a OneRoster delta sync reads) are kept as
    long as the events, so the retention passes them the same bound.
    """
    return await conn.fetchval(Q.purge_tombstones, before)
