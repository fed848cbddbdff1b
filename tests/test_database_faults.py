"""The database goes away under traffic: the service answers 503 quickly and recovers.

These tests stop and lock a PostgreSQL server, so they run on a private,
durable embedded cluster of their own, never on the shared `pg_server`.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import migrations
from service.app import create_app
from service.config import Config
from service.embedded import EmbeddedPostgres, free_port

from .api import create_course, create_student, problem
from .migrating import connected

pytestmark = pytest.mark.slow

CONNECT_TIMEOUT = 1.0
ACQUIRE_TIMEOUT = 1.0
STATEMENT_TIMEOUT = 2.0
# A request that needs the database answers within the connect and acquire
# timeouts; the rest is slack for a busy two-core machine.
UNAVAILABLE_WITHIN = CONNECT_TIMEOUT + ACQUIRE_TIMEOUT + 1.0
REQUEST_LIMIT = 15.0  # no single request in these tests may take longer


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    """A durable cluster this module may crash: acknowledged commits survive it."""
    datadir = Path(tempfile.mkdtemp(prefix="enrollment-fault-pg-"))
    server = EmbeddedPostgres(datadir=datadir, port=free_port(), durable=True)
    try:
        server.start()
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
async def database_url(cluster: EmbeddedPostgres) -> AsyncIterator[str]:
    """A fresh, migrated database on the private cluster."""
    name = f"enrollment_fault_{uuid.uuid4().hex[:12]}"
    async with connected(cluster.dsn) as admin:
        await admin.execute(f'create database "{name}"')
    url = cluster.dsn_for(name)
    # yoyo is synchronous: keep it off the event loop.
    await asyncio.to_thread(migrations.apply, url)
    try:
        yield url
    finally:
        # A test that crashed the server has started it again in its own finally.
        async with connected(cluster.dsn) as admin:
            await admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def config(database_url: str) -> Config:
    return Config(
        database_url=database_url,
        pool_min_size=2,
        pool_max_size=10,
        connect_timeout=CONNECT_TIMEOUT,
        acquire_timeout=ACQUIRE_TIMEOUT,
        statement_timeout=STATEMENT_TIMEOUT,
        workers=1,
    )


@pytest.fixture
def start_service(aiohttp_client, config: Config) -> Callable[..., Awaitable[TestClient]]:
    """Start the real app against the private cluster, with settings overridden."""

    async def start(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(replace(config, **overrides)))

    return start


@dataclass
class Answer:
    method: str
    path: str
    status: int
    started: float
    elapsed: float
    headers: dict[str, str]
    body: Any


async def call(
    client: TestClient,
    method: str,
    path: str,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request, timed, with its body read; it may never hang."""
    started = time.perf_counter()
    async with asyncio.timeout(REQUEST_LIMIT):
        response = await client.request(method, path, json=json, headers=headers)
        if response.content_type in ("application/json", "application/problem+json"):
            body = await response.json(content_type=None)
            if response.status >= 400:
                await problem(response)
        else:
            body = await response.text()
    return Answer(
        method,
        path,
        response.status,
        started,
        time.perf_counter() - started,
        dict(response.headers),
        body,
    )


def assert_unavailable(answer: Answer) -> None:
    """A 503 that tells the client the database is away and when to retry."""
    assert answer.status == 503, (answer.method, answer.path, answer.status, answer.body)
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["type"] == "/problems/database-unavailable"
    assert answer.body["status"] == 503
    assert int(answer.headers["Retry-After"]) > 0


def assert_busy(answer: Answer) -> None:
    """A 503 that tells the client the database is there but busy, and to retry soon."""
    assert answer.status == 503, (answer.method, answer.path, answer.status, answer.body)
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["type"] == "/problems/busy"
    assert answer.headers["Retry-After"] == "1"


async def enrollments_in(database_url: str) -> set[tuple[int, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("select student_id, course_id from student_courses")
    finally:
        await conn.close()
    return {(r["student_id"], r["course_id"]) for r in rows}


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold an access exclusive lock on `table` from another session until the block ends."""
    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        # The name is one of ours, never input: a lock statement takes no parameters.
        await conn.execute(f"lock table {table} in access exclusive mode")
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection) -> int:
    """How many of the service's sessions wait for a lock right now."""
    return await conn.fetchval(
        "select count(*) from pg_stat_activity"
        " where application_name = 'enrollment-service' and wait_event_type = 'Lock'"
    )


async def wait_for_lock_waiters(conn: asyncpg.Connection, count: int) -> None:
    deadline = time.perf_counter() + 5
    while await waiting_on_locks(conn) < count:
        assert time.perf_counter() < deadline, f"fewer than {count} requests wait on the lock"
        await asyncio.sleep(0.02)


async def test_database_crash_under_traffic_answers_503_then_recovers(
    start_service, cluster: EmbeddedPostgres, database_url: str
):
    client = await start_service()
    students = [await create_student(client) for _ in range(30)]
    courses = [await create_course(client) for _ in range(5)]
    pairs = [(s["id"], c["id"]) for s in students for c in courses]
    acknowledged: set[tuple[int, int]] = set()

    # A first batch, all acknowledged while the database is up.
    for student_id, course_id in pairs[:20]:
        answer = await call(
            client, "POST", f"/students/{student_id}/courses", {"course_id": course_id}
        )
        assert answer.status == 201, answer.body
        acknowledged.add((student_id, course_id))

    # Traffic: enroll the remaining pairs (then retry them, which answers 200)
    # and read them back, until told to stop; bounded in count and time.
    answers: list[Answer] = []
    stop = asyncio.Event()

    async def traffic(offset: int) -> None:
        todo = itertools.cycle(pairs[20 + offset :: 2])
        deadline = time.perf_counter() + 20
        for _ in range(2000):
            if stop.is_set() or time.perf_counter() > deadline:
                return
            student_id, course_id = next(todo)
            path = f"/students/{student_id}/courses"
            answer = await call(client, "POST", path, {"course_id": course_id})
            answers.append(answer)
            if answer.status in (200, 201):
                acknowledged.add((student_id, course_id))
            answers.append(await call(client, "GET", path))
            await asyncio.sleep(0.005)

    senders = [asyncio.create_task(traffic(offset)) for offset in (0, 1)]
    crash_began = crash_done = 0.0
    try:
        await asyncio.sleep(0.5)
        crash_began = time.perf_counter()
        # pg_ctl blocks: run it in a thread so the app keeps serving meanwhile.
        await asyncio.to_thread(cluster.stop, "immediate")
        crash_done = time.perf_counter()
        await asyncio.sleep(1.5)

        # While the database is away: not ready, but alive.
        ready = await call(client, "GET", "/readyz")
        assert_unavailable(ready)
        assert ready.elapsed < UNAVAILABLE_WITHIN
        alive = await call(client, "GET", "/healthz")
        assert (alive.status, alive.body) == (200, {"status": "ok"})
    finally:
        stop.set()
        await asyncio.gather(*senders)
        if not cluster.is_running():
            await asyncio.to_thread(cluster.start)

    assert answers, "the traffic loop sent nothing"
    before = [a for a in answers if a.started + a.elapsed < crash_began]
    after = [a for a in answers if a.started > crash_done]
    assert before and after, (len(before), len(after))
    # Before the crash everything worked; after it, everything needing the
    # database was refused with a 503; in between either may happen.
    for answer in before:
        assert answer.status in (200, 201), (answer.path, answer.status, answer.body)
    for answer in after:
        assert_unavailable(answer)
    for answer in answers:
        assert answer.status in (200, 201, 503), (answer.path, answer.status, answer.body)
        if answer.status == 503:
            assert_unavailable(answer)
        assert answer.elapsed < UNAVAILABLE_WITHIN, (answer.path, answer.status, answer.elapsed)

    # The database is back: the same app (no restart) becomes ready again.
    deadline = time.perf_counter() + 15
    while (await call(client, "GET", "/readyz")).status != 200:
        assert time.perf_counter() < deadline, "not ready 15 s after the database came back"
        await asyncio.sleep(0.2)
    newcomer = await create_student(client)
    enrolled = await call(
        client, "POST", f"/students/{newcomer['id']}/courses", {"course_id": courses[0]["id"]}
    )
    assert enrolled.status == 201, enrolled.body
    acknowledged.add((newcomer["id"], courses[0]["id"]))
    listed = await call(client, "GET", f"/students/{newcomer['id']}/courses")
    assert [item["id"] for item in listed.body["items"]] == [courses[0]["id"]]

    # Every enrollment the service acknowledged survived the crash. (One that
    # answered 503 may or may not have been committed: nothing is said about it.)
    stored = await enrollments_in(database_url)
    assert acknowledged <= stored, sorted(acknowledged - stored)


async def test_statement_over_the_timeout_answers_503_busy_and_the_service_carries_on(
    start_service, database_url: str
):
    client = await start_service()
    course = await create_course(client)

    async with table_locked(database_url, "courses"):
        # GET /courses waits for the lock until the statement timeout cancels it.
        answer = await call(client, "GET", "/courses")
    assert_busy(answer)
    assert STATEMENT_TIMEOUT * 0.9 <= answer.elapsed < STATEMENT_TIMEOUT + 1.5, answer.elapsed

    # The connection that was cancelled is usable again, and so is the service.
    for _ in range(3):
        listed = await call(client, "GET", "/courses")
        assert listed.status == 200, listed.body
        assert [item["id"] for item in listed.body["items"]] == [course["id"]]
    assert (await call(client, "GET", "/readyz")).status == 200


async def test_a_database_that_never_answers_is_cut_off_by_the_watchdog(
    start_service, database_url: str
):
    # Without session settings (as behind PgBouncer) PostgreSQL has no
    # statement_timeout for us: a statement stuck behind a lock waits for
    # ever, exactly like one sent to a server that stopped answering. The
    # loan is ended at DB_STATEMENT_TIMEOUT + 1 s.
    client = await start_service(session_settings=False)
    course = await create_course(client)

    async with table_locked(database_url, "courses"):
        answer = await call(client, "GET", "/courses")
    assert_unavailable(answer)
    assert STATEMENT_TIMEOUT + 1 <= answer.elapsed < STATEMENT_TIMEOUT + 2.5, answer.elapsed

    # The pool replaced the connection it closed; the service carries on.
    for _ in range(3):
        listed = await call(client, "GET", "/courses")
        assert listed.status == 200, listed.body
        assert [item["id"] for item in listed.body["items"]] == [course["id"]]
    assert (await call(client, "GET", "/readyz")).status == 200


async def test_exhausted_pool_answers_503_busy_after_the_acquire_timeout(
    start_service, database_url: str
):
    client = await start_service(pool_min_size=2, pool_max_size=2)
    course = await create_course(client)

    async with table_locked(database_url, "courses") as locker:
        # Two requests take both pooled connections and wait on the lock.
        blocked = [asyncio.create_task(call(client, "GET", "/courses")) for _ in range(2)]
        await wait_for_lock_waiters(locker, 2)
        # A third needs no locked table, only a connection: none is free.
        # Had it waited for one, it would get it when the statement timeout
        # frees the others and answer 200; it must give up first, with a 503.
        third = await call(client, "GET", "/readyz")
        assert_busy(third)
        assert ACQUIRE_TIMEOUT * 0.9 <= third.elapsed < STATEMENT_TIMEOUT, third.elapsed
        for answer in await asyncio.gather(*blocked):
            assert_busy(answer)

    # With the lock gone both connections serve again.
    assert (await call(client, "GET", "/readyz")).status == 200
    both = await asyncio.gather(*(call(client, "GET", "/courses") for _ in range(2)))
    for listed in both:
        assert listed.status == 200, listed.body
        assert [item["id"] for item in listed.body["items"]] == [course["id"]]


async def test_a_long_poll_outlives_a_database_restart(start_service, cluster, database_url):
    """The feed's watcher borrows from the pool each tick: a restart costs it ticks, no more."""
    client = await start_service()
    cursor = (await (await client.get("/events")).json())["next_cursor"]
    # A poll waiting through the outage, and one started after it.
    during = asyncio.create_task(client.get("/events", params={"cursor": cursor, "wait": 20}))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(cluster.stop, "immediate")
    try:
        await asyncio.sleep(1.0)  # the watcher ticks against a dead server
    finally:
        await asyncio.to_thread(cluster.start)

    created = None
    for _ in range(40):  # the pool reconnects on the first requests after the restart
        answer = await call(client, "POST", "/students", {"name": "Back", "email": "back@x.org"})
        if answer.status == 201:
            created = answer.body
            break
        await asyncio.sleep(0.25)
    assert created is not None, "the service did not come back"
    response = await asyncio.wait_for(during, 20)
    after = await client.get("/events", params={"cursor": cursor, "wait": 5})

    # The poll that waited through the outage held no connection, and woke on
    # the first event after it; the feed read again has it too.
    assert response.status == 200
    for page in (await response.json(), await after.json()):
        created_ids = [e["student_id"] for e in page["items"] if e["type"] == "student.created"]
        assert created_ids == [created["id"]]
