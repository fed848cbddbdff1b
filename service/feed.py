"""The change feed's background work: waking long polls, and retention.

Long polls (GET /events?wait=) hold no database connection while they wait.
One watcher per process asks the database, ten times a second and only
while someone waits, for the newest event the feed can serve, and wakes the
waiters behind it; each then reads its own page. Not LISTEN/NOTIFY: an
event becomes servable when the feed's horizon passes it (see
sql/events.sql), not when its transaction commits, and NOTIFY serializes
every committing transaction that sends one on a cluster-wide lock, which
the enrollment path would pay for on every request.

The watcher uses the pool like any request, so a database restart costs it
nothing but the ticks it fails; a client that goes away while it waits
leaves a future behind until its wait is over, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from .db import UNAVAILABLE
from .keys import CONFIG, FEED, POOL
from .repositories import events

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between the watcher's looks while someone waits
PURGE_PERIOD = 60.0  # seconds between retention passes
STOP_WITHIN = 5.0  # seconds a background loop may take to stop at shutdown


class FeedWatcher:
    """The newest servable event id, and the long polls waiting past some id."""

    def __init__(self) -> None:
        self.newest = 0
        self.waiters: dict[asyncio.Future[None], int] = {}  # waiter -> the id it waits past
        self.someone_waits = asyncio.Event()
        self.stopping = False

    async def wait(self, after: int, within: float) -> None:
        """Return once an event past `after` may be servable, or after `within` seconds."""
        if self.newest > after or self.stopping:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[waiter] = after
        self.someone_waits.set()
        try:
            async with asyncio.timeout(within):
                await waiter
        except TimeoutError:
            pass
        finally:
            self.waiters.pop(waiter, None)

    def saw(self, newest: int) -> None:
        self.newest = max(self.newest, newest)
        for waiter, after in list(self.waiters.items()):
            if (newest > after or self.stopping) and not waiter.done():
                waiter.set_result(None)

    def stop(self) -> None:
        """Answer every long poll now (the server is shutting down) and end run()."""
        self.stopping = True
        self.someone_waits.set()
        self.saw(self.newest)

    async def run(self, app: web.Application) -> None:
        while not self.stopping:
            if not self.waiters:
                self.someone_waits.clear()
                await self.someone_waits.wait()
                continue
            await asyncio.sleep(TICK)
            try:
                async with app[POOL].lend() as conn:
                    self.saw(await events.newest_served(conn))
            except UNAVAILABLE as exc:
                log.debug("feed watcher: database unavailable: %s", exc)
            except Exception:
                log.exception("feed watcher: could not read the feed's newest event")


async def _stopped(task: asyncio.Task[None]) -> None:
    """Let a background loop finish its statement and end; cancel it if it will not."""
    try:
        await asyncio.wait_for(task, timeout=STOP_WITHIN)
    except TimeoutError:
        log.warning("a background task did not stop in %ss and was cancelled", STOP_WITHIN)


async def answer_long_polls(app: web.Application) -> None:
    """on_shutdown: answer waiting long polls now rather than at the end of their wait.

    aiohttp runs on_shutdown before it waits for the requests in flight, so
    the server stops in the time it takes them to read one more page.
    """
    app[FEED].stop()


async def watcher(app: web.Application) -> AsyncIterator[None]:
    feed = app[FEED] = FeedWatcher()
    # Stopped, not cancelled in the middle of a statement: its connection
    # then goes back to the pool in good order.
    task = asyncio.create_task(feed.run(app))
    try:
        yield
    finally:
        feed.stop()
        await _stopped(task)


async def retention(app: web.Application) -> AsyncIterator[None]:
    """Delete events older than EVENTS_RETENTION_DAYS, a batch at a time (unset: keep all)."""
    days = app[CONFIG].events_retention_days
    if days is None:
        yield
        return
    stopping = asyncio.Event()

    async def purge() -> None:
        while not stopping.is_set():
            before = datetime.now(UTC) - timedelta(days=days)
            try:
                while not stopping.is_set():
                    async with app[POOL].lend() as conn:
                        deleted = await events.purge(conn, before=before)
                    if deleted:
                        log.info("retention: deleted %d events from before %s", deleted, before)
                    if deleted < events.PURGE_BATCH:
                        break
                    await asyncio.sleep(0.05)  # let requests through between batches
            except UNAVAILABLE as exc:
                log.warning("retention: database unavailable: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), PURGE_PERIOD)

    task = asyncio.create_task(purge())
    try:
        yield
    finally:
        stopping.set()
        await _stopped(task)
