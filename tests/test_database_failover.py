"""The leader goes away: what the service does while Patroni fails over.

The errors a failover throws at asyncpg are made here for real where one
PostgreSQL can make them: a session that is read-only as on a standby
(25006), a connection lost after the COMMIT went out (a proxy that drops
the answer), a COMMIT waiting for a synchronous standby that is not there
(synchronous_standby_names naming nobody, as synchronous_mode_strict does
with no standby left), a refused connection. These tests change settings
of the whole server, so they run on the private cluster of
test_database_faults, never on the shared `pg_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import db
from service.embedded import EmbeddedPostgres
from service.endpoint import database_problem

from . import test_database_faults as faults
from .api import create_course, create_student
from .migrating import connected
from .test_database_faults import assert_unavailable, call
from .test_shutdown import assert_clean_log, serving

pytestmark = pytest.mark.slow

# test_database_faults' fixtures: a private durable cluster (one for this
# module), a fresh migrated database on it, the real app started against it.
cluster = faults.cluster
database_url = faults.database_url
config = faults.config
start_service = faults.start_service

SERVICE = "enrollment-service"  # the application_name of the service's sessions
# The server's answer that it is ready for the next query: ReadyForQuery, length 5.
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def eventually(probe: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)


async def service_pids(admin: asyncpg.Connection, database: str) -> set[int]:
    rows = await admin.fetch(
        "select pid from pg_stat_activity where application_name = $1 and datname = $2",
        SERVICE,
        database,
    )
    return {row["pid"] for row in rows}


async def sync_rep_waiters(admin: asyncpg.Connection, database: str) -> set[int]:
    """The service's sessions whose COMMIT waits for a synchronous standby."""
    rows = await admin.fetch(
        "select pid from pg_stat_activity"
        " where application_name = $1 and datname = $2 and wait_event = 'SyncRep'",
        SERVICE,
        database,
    )
    return {row["pid"] for row in rows}


async def students_named(url: str, email: str) -> int:
    """How many students another session sees with `email` (read committed)."""
    async with connected(url) as conn:
        return await conn.fetchval("select count(*) from students where email = $1", email)


@contextlib.asynccontextmanager
async def read_only(cluster: EmbeddedPostgres, database: str) -> AsyncIterator[None]:
    """New sessions of `database` are read-only, as every session on a standby is.

    A write then fails with SQLSTATE 25006, as it does on a standby or on a
    demoted leader HAProxy still routes to. Sessions already open keep what
    they had; the block's end makes new sessions read-write again.
    """
    async with connected(cluster.dsn) as admin:
        await admin.execute(f'alter database "{database}" set default_transaction_read_only = on')
        try:
            yield
        finally:
            await admin.execute(f'alter database "{database}" reset default_transaction_read_only')


async def replace_sessions(admin: asyncpg.Connection, client, database: str) -> set[int]:
    """End the service's sessions (as a failover does) and wait until it has new ones."""
    old = await service_pids(admin, database)
    await admin.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where application_name = $1 and datname = $2",
        SERVICE,
        database,
    )
    # The first request after may still meet a closed connection (503).
    deadline = time.monotonic() + 10
    while (await call(client, "GET", "/readyz")).status != 200:
        assert time.monotonic() < deadline, "the service did not reconnect"
        await asyncio.sleep(0.05)
    pids = await service_pids(admin, database)
    assert pids and not pids & old, (old, pids)
    return pids


@pytest.mark.parametrize(
    "key",
    [
        None,  # the autocommit path: the enroll statement meets the read-only session
        "read-only-1",  # the idempotency transaction: its savepoint does
    ],
)
async def test_a_connection_to_a_read_only_node_is_closed_and_the_next_write_reaches_the_leader(
    start_service, cluster: EmbeddedPostgres, database_url: str, key: str | None
):
    database = database_of(database_url)
    # One connection: the write cannot but use the read-only one.
    client = await start_service(pool_min_size=1, pool_max_size=1)
    student = await create_student(client)
    course = await create_course(client)
    path = f"/students/{student['id']}/courses"
    headers = {"Idempotency-Key": key} if key else None

    async with connected(cluster.dsn) as admin:
        async with read_only(cluster, database):
            # The failover: the old sessions end, the new one lands on a standby.
            (standby_session,) = await replace_sessions(admin, client, database)
            refused = await call(client, "POST", path, {"course_id": course["id"]}, headers)
            assert_unavailable(refused)
            # The pool closed that connection instead of lending it again.
            await eventually(
                lambda: _gone(admin, database, standby_session), "the read-only session closed"
            )
        # The new leader is up: new sessions are read-write. The same app,
        # not restarted, writes again.
        enrolled = await call(client, "POST", path, {"course_id": course["id"]}, headers)
        assert enrolled.status == 201, enrolled.body
        assert standby_session not in await service_pids(admin, database)
    async with connected(database_url) as conn:
        assert await conn.fetchval("select count(*) from student_courses") == 1


async def _gone(admin: asyncpg.Connection, database: str, pid: int) -> bool:
    return pid not in await service_pids(admin, database)


async def test_no_primary_among_the_hosts_answers_503_and_the_service_recovers(
    start_service, cluster: EmbeddedPostgres, database_url: str
):
    # asyncpg's multi-host connect with target_session_attrs=read-write finds
    # only a read-only server: TargetServerAttributeNotMatched, an
    # InternalClientError, not a PostgresError.
    url = f"{database_url}?target_session_attrs=read-write"
    client = await start_service(database_url=url, pool_min_size=1, pool_max_size=1)
    student = await create_student(client)
    database = database_of(database_url)
    async with connected(cluster.dsn) as admin:
        async with read_only(cluster, database):
            await admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = $1 and datname = $2",
                SERVICE,
                database,
            )
            await eventually(lambda: _none_left(admin, database), "the sessions ended")
            for _ in range(2):  # a closed connection first, then the connect that finds no primary
                answer = await call(client, "GET", f"/students/{student['id']}")
                assert_unavailable(answer)
    answer = await call(client, "GET", f"/students/{student['id']}")
    assert answer.status == 200, answer.body


async def _none_left(admin: asyncpg.Connection, database: str) -> bool:
    return not await service_pids(admin, database)


class CommitCutter:
    """A TCP proxy between the app and PostgreSQL that can lose the answer to a commit.

    It forwards both ways. Once armed with a needle, the first client
    message batch that holds it (b"COMMIT;", the simple query asyncpg's
    transaction.commit() sends, or a value bound to an autocommitted
    statement) is forwarded; the server's answer is read up to its
    ReadyForQuery, sent only once the transaction has committed, and
    dropped; then both sides are closed. To the app, the connection died
    with its COMMIT in flight: a commit in doubt.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.needle: bytes | None = None
        self.cut = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Refuse new connections and drop those open."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}
        cutting = asyncio.Event()

        async def upstream() -> None:
            while data := await reader.read(65536):
                if self.needle is not None and self.needle in data:
                    self.needle = None
                    cutting.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            dropped = b""
            while data := await up_reader.read(65536):
                if not cutting.is_set():
                    writer.write(data)
                    await writer.drain()
                    continue
                dropped += data
                if READY_FOR_QUERY in dropped:
                    writer.transport.abort()
                    up_writer.close()
                    self.cut.set()
                    return
            writer.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            for end in (writer, up_writer):
                end.transport.abort()
                self.writers.discard(end)


@pytest.fixture
async def cutter(cluster: EmbeddedPostgres) -> AsyncIterator[CommitCutter]:
    proxy = CommitCutter(cluster.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def through(proxy_port: int, database_url: str) -> str:
    """`database_url` through the proxy, without TLS (the proxy reads the messages)."""
    parts = urlsplit(database_url)
    return f"{parts.scheme}://{parts.username}@127.0.0.1:{proxy_port}{parts.path}?sslmode=disable"


async def enrollment_events(database_url: str) -> int:
    async with connected(database_url) as conn:
        return await conn.fetchval("select count(*) from events where type = 'enrollment.created'")


async def enrolling_through(
    start_service, cutter: CommitCutter, database_url: str
) -> tuple[TestClient, str, dict]:
    """A service connected through `cutter`, a student's enroll path and a course."""
    port = cutter.server.sockets[0].getsockname()[1]
    client = await start_service(database_url=through(port, database_url))
    student = await create_student(client)
    course = await create_course(client)
    return client, f"/students/{student['id']}/courses", course


async def test_a_commit_in_doubt_is_503_and_the_retry_with_the_same_key_replays_it(
    start_service, cutter: CommitCutter, database_url: str
):
    client, path, course = await enrolling_through(start_service, cutter, database_url)
    body = {"course_id": course["id"]}
    key = {"Idempotency-Key": "in-doubt-1"}

    cutter.needle = b"COMMIT;"
    lost = await call(client, "POST", path, body, key)
    assert cutter.cut.is_set()
    assert_unavailable(lost)
    assert "may or may not have been made" in lost.body["detail"], lost.body
    assert "Idempotency-Key" in lost.body["detail"]
    # It was committed: the client could not know.
    assert await enrollment_events(database_url) == 1

    replayed = await call(client, "POST", path, body, key)
    assert replayed.status == 201, replayed.body
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.body["id"] == course["id"]
    assert replayed.headers["Location"]
    # Without a key the same enroll is "already enrolled": nothing more happens.
    again = await call(client, "POST", path, body)
    assert again.status == 200, again.body
    async with connected(database_url) as conn:
        assert await conn.fetchval("select count(*) from student_courses") == 1
    assert await enrollment_events(database_url) == 1


async def test_an_autocommitted_enroll_in_doubt_is_503_and_its_retry_answers_200(
    start_service, cutter: CommitCutter, database_url: str
):
    client, path, course = await enrolling_through(start_service, cutter, database_url)
    # The sourced_id travels in the enroll statement's Bind message: the
    # answer cut is that of the statement, committed alone.
    body = {"course_id": course["id"], "sourced_id": "in-doubt-enrollment-7"}

    cutter.needle = b"in-doubt-enrollment-7"
    lost = await call(client, "POST", path, body)
    assert cutter.cut.is_set()
    assert_unavailable(lost)
    assert "may or may not have been made" in lost.body["detail"], lost.body
    assert await enrollment_events(database_url) == 1

    again = await call(client, "POST", path, body)
    assert again.status == 200, again.body
    async with connected(database_url) as conn:
        assert await conn.fetchval("select count(*) from student_courses") == 1
    assert await enrollment_events(database_url) == 1


@contextlib.asynccontextmanager
async def no_synchronous_standby(cluster: EmbeddedPostgres) -> AsyncIterator[asyncpg.Connection]:
    """Every commit that wrote waits for a synchronous standby that never comes.

    As with synchronous_mode_strict and no standby left (wait_event SyncRep).
    The checkpointer applies the setting a moment after the reload: a probe
    transaction shows when it does (and is then cancelled: it keeps nothing).
    Reset at the end, which lets every waiting commit finish.
    """
    async with connected(cluster.dsn) as admin:
        await admin.execute("alter system set synchronous_standby_names = 'nobody_here'")
        await admin.execute("select pg_reload_conf()")
        try:
            async with connected(cluster.dsn) as probe:
                pid = probe.get_server_pid()
                # It writes WAL (the catalog), so its commit waits; it leaves nothing.
                waiting = asyncio.create_task(
                    probe.execute("create temp table sync_probe () on commit drop")
                )

                async def probe_waits() -> bool:
                    return await admin.fetchval(
                        "select wait_event = 'SyncRep' from pg_stat_activity where pid = $1", pid
                    )

                await eventually(probe_waits, "a commit waits for the synchronous standby")
                await admin.execute("select pg_cancel_backend($1)", pid)
                await waiting
            yield admin
        finally:
            await admin.execute("alter system reset synchronous_standby_names")
            await admin.execute("select pg_reload_conf()")


async def post_student(url: str, email: str, headers: dict[str, str]) -> int | BaseException:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            body = {"name": "Sync", "email": email}
            async with session.post(f"{url}/students", json=body, headers=headers) as response:
                return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return exc


@pytest.mark.parametrize(
    "headers",
    [
        {},  # the autocommitted insert waits in its own commit
        {"Idempotency-Key": "sync-1"},  # idempotency.answer's COMMIT waits
    ],
)
async def test_shutdown_does_not_cancel_a_commit_waiting_for_the_synchronous_standby(
    cluster: EmbeddedPostgres, database_url: str, tmp_path, headers: dict[str, str]
):
    database = database_of(database_url)
    email = "sync@example.org"
    settings = {"SHUTDOWN_TIMEOUT": "1", "DB_STATEMENT_TIMEOUT": "30"}
    async with serving(database_url, tmp_path, **settings) as server:
        async with no_synchronous_standby(cluster) as admin:
            request = asyncio.create_task(post_student(server.url, email, headers))
            await eventually(
                lambda: _waiting(admin, database), "the service's commit waits on SyncRep"
            )
            (waiter,) = await sync_rep_waiters(admin, database)
            # run_app waits SHUTDOWN_TIMEOUT for the request, cancels its
            # handler, waits as long again, and closes the pool.
            server.process.send_signal(signal.SIGTERM)
            assert await server.exited(within=1 + 1 + 1 + 5) == 0, server.log()
            outcome = await request
            assert outcome != 201, outcome

            # Gone is the service, not its commit: still waiting for the
            # standby, and seen by nobody. A cancelled wait would have ended
            # with a WARNING and the row visible to all at once, unreplicated.
            assert await students_named(database_url, email) == 0
            assert waiter in await sync_rep_waiters(admin, database)
            assert_clean_log(server)
        # A standby is back (here: none is required): the commit completes.
        await eventually(
            lambda: _visible(database_url, email), "the commit completes once the standby is back"
        )


async def _waiting(admin: asyncpg.Connection, database: str) -> bool:
    return bool(await sync_rep_waiters(admin, database))


async def _visible(database_url: str, email: str) -> bool:
    return await students_named(database_url, email) == 1


async def test_the_watchdog_ends_a_request_whose_commit_waits_without_cancelling_the_commit(
    start_service, cluster: EmbeddedPostgres, database_url: str
):
    database = database_of(database_url)
    email = "watchdog@example.org"
    client = await start_service(statement_timeout=1.0)
    async with no_synchronous_standby(cluster) as admin:
        answer = await call(client, "POST", "/students", {"name": "Wait", "email": email})
        # The watchdog closed the connection at DB_STATEMENT_TIMEOUT + 1 s: the
        # request learns nothing about its commit.
        assert_unavailable(answer)
        assert "may or may not have been made" in answer.body["detail"], answer.body
        # Not before (statement_timeout did not end it); the upper bound is
        # slack for a busy machine, far below the wait's endless length.
        assert 1 + 1 <= answer.elapsed < 1 + 1 + 8, answer.elapsed
        # statement_timeout (1 s) did not end the wait, nor did the closed
        # socket: the backend waits on, the row unseen.
        assert await sync_rep_waiters(admin, database)
        assert await students_named(database_url, email) == 0
    await eventually(lambda: _visible(database_url, email), "the commit completes")


async def test_a_refused_connection_answers_503_database_unavailable(
    start_service, cutter: CommitCutter, database_url: str
):
    port = cutter.server.sockets[0].getsockname()[1]
    client = await start_service(database_url=through(port, database_url))
    student = await create_student(client)
    # The proxy stops listening and drops every connection: the pool's are
    # closed, and a new one is refused (ConnectionRefusedError).
    await cutter.close()
    for method, path, body in [
        ("GET", f"/students/{student['id']}", None),
        ("POST", "/students", {"name": "Refused", "email": "refused@example.org"}),
    ]:
        answer = await call(client, method, path, body)
        assert_unavailable(answer)
        assert "may or may not" not in answer.body["detail"], answer.body


@pytest.mark.parametrize(
    ("error", "doubtful"),
    [
        # The connection dropped mid-statement: a write's COMMIT may have happened.
        (
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
            True,
        ),
        # asyncpg's protocol lost its state (not a PostgresError), mid-statement too.
        (
            asyncpg.exceptions.InternalClientError("cannot switch to state 13; another operation"),
            True,
        ),
        # The builtin error asyncpg raises when the server hangs up.
        (ConnectionError("unexpected connection_lost() call"), True),
        # Nothing was sent: no connection, or the server said no.
        (ConnectionRefusedError(111, "Connect call failed"), False),
        # 57P03: the server is starting up or shutting down.
        (asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"), False),
        # 25006: a standby's answer to a write.
        (
            asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only"),
            False,
        ),
        # Multi-host connect, target_session_attrs=read-write, no primary found.
        (asyncpg.exceptions.TargetServerAttributeNotMatched("None of the hosts match"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
@pytest.mark.parametrize("write", [False, True])
def test_each_failover_error_is_503_database_unavailable(
    error: Exception, doubtful: bool, write: bool
):
    problem = database_problem(error, retry_after=2, write=write)
    assert problem is not None
    assert (problem.status, problem.slug) == (503, "database-unavailable")
    assert problem.headers == {"Retry-After": "2"}
    # Only a write can be in doubt, and only when something may have reached the server.
    assert ("may or may not have been made" in problem.detail) == (write and doubtful)
    # The background loops (feed watcher, retention, key expiry) shrug it off.
    assert isinstance(error, db.TRANSIENT)


def test_an_unexpected_error_is_left_to_the_500():
    assert database_problem(RuntimeError("a bug"), retry_after=2, write=True) is None
