"""The change feed's background work: waking long polls, and retention.

Long polls (GET /events?wait=) hold no database connection while they wait.
One watcher per process reads, ten times a second and only while someone
waits, the events that became servable since its last look: their ids and
what they are about, never their data. It decides in memory which waiters
those events concern and wakes only them; each then reads its own page. So
a thousand polls filtered on a student who never changes cost the database
one short statement a tick, however many writes happen meanwhile.

Not LISTEN/NOTIFY: an event becomes servable when the feed's horizon passes
it (see sql/events.sql), not when its transaction commits, and NOTIFY
serializes every committing transaction that sends one on a cluster-wide
lock, which the enrollment path would pay for on every request.

The watcher keeps the last RECENT events it read, so that a poll which read
its page just before the watcher's look still learns of what that look
found. It uses the pool like any request, so a database restart costs it
nothing but the ticks it fails; a client that goes away while it waits
leaves a future behind until its wait is over, nothing more.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from .db import TRANSIENT
from .keys import CONFIG, FEED, POOL
from .repositories import events
from .repositories.events import Mark

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between the watcher's looks while someone waits
READ = 1000  # events one look reads at most; it reads again while there are more
RECENT = 10_000  # events kept in memory for the polls that arrive after a look
PURGE_PERIOD = 60.0  # seconds between retention passes
STOP_WITHIN = 5.0  # seconds a background loop may take to stop at shutdown


@dataclass(frozen=True, slots=True)
class Filter:
    """The events a long poll waits for: as GET /events filters them."""

    types: frozenset[str] | None = None
    student_id: int | None = None
    course_id: int | None = None

    def matches(self, mark: Mark) -> bool:
        return (
            (self.types is None or mark.type in self.types)
            and (self.student_id is None or mark.student_id == self.student_id)
            and (self.course_id is None or mark.course_id == self.course_id)
        )


@dataclass(eq=False, slots=True)
class Waiter:
    after: int
    filter: Filter
    future: asyncio.Future[None]

    def wants(self, mark: Mark) -> bool:
        return mark.id > self.after and self.filter.matches(mark)


class FeedWatcher:
    """What the feed served lately, and the long polls waiting for more."""

    def __init__(self) -> None:
        # Every servable event below `seen` has been looked at; `recent` holds
        # the last RECENT of them in id order. None: not looking (no waiter).
        self.seen: int | None = None
        self.recent: list[Mark] = []
        self.complete_from = 0  # `recent` holds every event from this id to `seen`
        # Waiters by what they are filtered on: an event is checked against
        # the waiters of its student and its course, and the unfiltered ones.
        self.by_student: dict[int, set[Waiter]] = {}
        self.by_course: dict[int, set[Waiter]] = {}
        self.others: set[Waiter] = set()
        self.count = 0
        self.someone_waits = asyncio.Event()
        self.stopping = False

    def _bucket(self, waiter: Waiter) -> set[Waiter]:
        if (student := waiter.filter.student_id) is not None:
            return self.by_student.setdefault(student, set())
        if (course := waiter.filter.course_id) is not None:
            return self.by_course.setdefault(course, set())
        return self.others

    def _forget(self, waiter: Waiter) -> None:
        bucket = self._bucket(waiter)
        bucket.discard(waiter)
        self.count -= 1
        if not bucket and bucket is not self.others:
            if waiter.filter.student_id is not None:
                del self.by_student[waiter.filter.student_id]
            else:
                del self.by_course[waiter.filter.course_id]  # type: ignore[arg-type]

    def _seen_already(self, after: int, filter: Filter) -> bool | None:
        """Whether an event past `after` for `filter` was read already (None: cannot tell)."""
        if self.seen is None or after + 1 >= self.seen:
            return False
        if after + 1 < self.complete_from:
            return None
        start = bisect.bisect_right(self.recent, after, key=lambda mark: mark.id)
        return any(filter.matches(mark) for mark in self.recent[start:])

    async def wait(self, after: int, within: float, filter: Filter = Filter()) -> None:
        """Return once an event past `after` for `filter` may be servable, or after `within` s."""
        if self.stopping or self._seen_already(after, filter) is not False:
            return
        waiter = Waiter(after, filter, asyncio.get_running_loop().create_future())
        self._bucket(waiter).add(waiter)
        self.count += 1
        self.someone_waits.set()
        try:
            async with asyncio.timeout(within):
                await waiter.future
        except TimeoutError:
            pass
        finally:
            self._forget(waiter)

    def saw(self, below: int, marks: list[Mark]) -> None:
        """The events of one look, and the horizon they were read under: wake who they concern."""
        for mark in marks:
            candidates = [self.others]
            if mark.student_id is not None and (s := self.by_student.get(mark.student_id)):
                candidates.append(s)
            if mark.course_id is not None and (c := self.by_course.get(mark.course_id)):
                candidates.append(c)
            for waiters in candidates:
                for waiter in waiters:
                    if not waiter.future.done() and waiter.wants(mark):
                        waiter.future.set_result(None)
        self.recent.extend(marks)
        if len(self.recent) > RECENT:
            del self.recent[: len(self.recent) - RECENT]
            self.complete_from = self.recent[0].id
        # Fewer than asked for: everything below the horizon has been read.
        self.seen = marks[-1].id + 1 if len(marks) == READ else max(self.seen or 0, below)

    def stop(self) -> None:
        """Answer every long poll now (the server is shutting down) and end run()."""
        self.stopping = True
        self.someone_waits.set()
        for bucket in (self.others, *self.by_student.values(), *self.by_course.values()):
            for waiter in bucket:
                if not waiter.future.done():
                    waiter.future.set_result(None)

    def _start(self) -> int:
        """Where the next look starts: after `seen`, or after the oldest waiter's page."""
        if self.seen is not None:
            return self.seen
        waiting = (
            w.after
            for b in (self.others, *self.by_student.values(), *self.by_course.values())
            for w in b
        )
        first = min(waiting, default=0) + 1
        self.complete_from = first
        return first

    async def run(self, app: web.Application) -> None:
        while not self.stopping:
            if not self.count:
                # Nobody waits: forget, so that the next waiter's look starts
                # at its own page rather than reading what nobody waited for.
                self.seen, self.recent = None, []
                self.someone_waits.clear()
                await self.someone_waits.wait()
                continue
            await asyncio.sleep(TICK)
            try:
                async with app[POOL].lend() as conn:
                    while not self.stopping:
                        below, marks = await events.since(conn, first=self._start(), limit=READ)
                        self.saw(below, marks)
                        if len(marks) < READ:
                            break
            except TRANSIENT as exc:
                log.debug("feed watcher: database unavailable: %s", exc)
            except Exception:
                log.exception("feed watcher: could not read the feed's newest events")


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
    """Delete events and tombstones older than EVENTS_RETENTION_DAYS, a batch
    of each at a time (unset: keep all)."""
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
                        buried = await events.purge_tombstones(conn, before=before)
                    if deleted or buried:
                        log.info(
                            "retention: deleted %d events and %d tombstones from before %s",
                            deleted,
                            buried,
                            before,
                        )
                    if deleted < events.PURGE_BATCH and buried < events.PURGE_BATCH:
                        break
                    await asyncio.sleep(0.05)  # let requests through between batches
            except TRANSIENT as exc:
                log.warning("retention: database unavailable: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), PURGE_PERIOD)

    task = asyncio.create_task(purge())
    try:
        yield
    finally:
        stopping.set()
        await _stopped(task)
