"""The feed scenario: how far behind the enrollments a follower of GET /events is.

While wrk runs the enroll load against the service, a follower in this
process reads the feed from its current end, page after page (limit 1000,
?wait=5, always the page's next_cursor), and notes for every
enrollment.created event how long after the enrollment's commit the event
reached it.

The commit time is not stored. An event's `at` is its transaction's start
(PostgreSQL's now()), and an enrollment is one statement in a transaction
of its own, so `at` precedes the commit by that statement's duration (a few
ms, more while it waits for its course's row lock). The lag measured here,
the page's receipt minus `at`, is therefore over-estimated by the
transaction's duration: it errs on the side that makes the target harder
to meet. Receipt and `at` come from one clock when PostgreSQL runs on this
machine (now() and time.time() both read the system clock); the difference
between the database's clock and this process's is measured anyway, once
per run over the best of a few round trips, and taken out, so a
BENCH_DATABASE_URL on another host is not off by its clock's error.

When the load ends the follower reads on, with ?wait=1, until a page comes
back empty: the last requests wrk sent are still being answered when it
exits. (A page asked for between wrk's last request and its exit still
waits its 5 s: idle time, nothing measured.) Then the events it followed
are checked against those the database recorded after the start: every one
exactly once, in id order.

The follower's page reads queue in the service like the load's requests, so
under full load a read takes about as long as an enrollment does, and the
lag is mostly that: the time since the previous read plus this one's.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import asyncpg
import orjson

from service.validation.cursors import cursor_scope, encode_cursor

from . import wrk

SCENARIO = "feed"
LOAD = "enroll"  # the wrk scenario it runs under
EVENT = "enrollment.created"  # what the enroll load writes, the events timed
LIMIT = 1000
WAIT = 5  # seconds a page may wait for an event under load
DRAIN_WAIT = 1  # the same once the load is over: the first empty page ends the run
DRAIN_WITHIN = 30.0  # seconds the follower may take to catch up after the load
RETRY_AFTER = 0.1  # seconds between a failed page read and the next


@dataclass
class Followed:
    """What the follower saw in one run."""

    lags: list[float] = field(default_factory=list)  # seconds, one per EVENT followed
    pages: int = 0  # pages asked for while the load ran
    seconds: float = 0.0  # how long the load ran
    failed_reads: int = 0  # pages not answered 200 (retried from the same cursor)
    out_of_order: int = 0  # events at or below an id already seen: never, if the feed is right
    recorded: int = 0  # EVENTs the database holds past the start: as many as lags, if it is right
    clock_offset: float = 0.0  # seconds, the database's clock minus this process's
    caught_up: bool = True  # read to an empty page after the load, within DRAIN_WITHIN

    @property
    def pages_per_sec(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.99: p99) of values, sorted or not."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


async def _clock_offset(conn: asyncpg.Connection, tries: int = 5) -> float:
    """The database's clock minus ours, from the round trip that took least time."""
    best = (math.inf, 0.0)
    for _ in range(tries):
        before = time.time()
        theirs = float(await conn.fetchval("select extract(epoch from clock_timestamp())"))
        after = time.time()
        best = min(best, (after - before, theirs - (before + after) / 2))
    return best[1]


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    start: int,
    followed: Followed,
    load_over: asyncio.Event,
) -> None:
    params = {"limit": str(LIMIT)}
    if start:
        # The feed's own cursor for that event, as if a page had ended there.
        params["cursor"] = encode_cursor(start, cursor_scope("/events", ()))
    last_id = start
    drain_until = math.inf
    while time.monotonic() < drain_until:
        draining = load_over.is_set()
        if draining and drain_until == math.inf:
            drain_until = time.monotonic() + DRAIN_WITHIN
        params["wait"] = str(DRAIN_WAIT if draining else WAIT)
        try:
            async with session.get(f"{url}/events", params=params) as response:
                body = await response.read()
                # When the page, and so each event on it, reached the follower.
                received = time.time()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if not ok:
            followed.failed_reads += 1
            await asyncio.sleep(RETRY_AFTER)
            continue
        if not draining:
            followed.pages += 1
        page = orjson.loads(body)
        for event in page["items"]:
            if event["id"] <= last_id:
                followed.out_of_order += 1
            last_id = max(last_id, event["id"])
            if event["type"] == EVENT:
                at = datetime.fromisoformat(event["at"]).timestamp() - followed.clock_offset
                followed.lags.append(received - at)
        params["cursor"] = page["next_cursor"]
        if draining and not page["items"]:
            return
    followed.caught_up = False


async def _measure(
    url: str, token: str, database_url: str, load: Callable[[], wrk.Result]
) -> tuple[wrk.Result, Followed]:
    followed = Followed()
    conn = await asyncpg.connect(database_url)
    try:
        # The current end of the feed, from the database rather than by
        # paging through what the runs before wrote (millions of events
        # after a full bench): nothing writes between runs, so the load's
        # events all come after the newest one there is now. A cursor is an
        # event id, coded as the service codes it.
        start = await conn.fetchval("select coalesce(max(id), 0) from events")
        followed.clock_offset = await _clock_offset(conn)
        load_over = asyncio.Event()
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=WAIT + 30),
        ) as session:
            follower = asyncio.create_task(_follow(session, url, start, followed, load_over))
            started = time.monotonic()
            try:
                result = await asyncio.to_thread(load)
            finally:
                load_over.set()
            followed.seconds = time.monotonic() - started
            await follower
        followed.recorded = await conn.fetchval(
            "select count(*) from events where id > $1 and type = $2", start, EVENT
        )
    finally:
        await conn.close()
    return result, followed


def measure(
    url: str, token: str, database_url: str, load: Callable[[], wrk.Result]
) -> tuple[wrk.Result, Followed]:
    """Run `load` (a wrk run of the enroll scenario) with a follower on the service at `url`."""
    return asyncio.run(_measure(url, token, database_url, load))
