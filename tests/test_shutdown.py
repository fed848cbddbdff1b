"""Graceful shutdown of the real server process: `python -m service serve`, then SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import psutil
import pytest

from service.embedded import PROJECT_ROOT, free_port

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
START_WITHIN = 30.0  # a cold interpreter, a preflight query and maybe spawned workers
# Settings the service reads; the server under test gets only the ones a test gives.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "DATABASE_PASSWORD_FILE",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "DB_CONNECT_TIMEOUT",
    "DB_ACQUIRE_TIMEOUT",
    "DB_STATEMENT_TIMEOUT",
    "DB_STATEMENT_CACHE_SIZE",
    "SHUTDOWN_TIMEOUT",
    "BODY_TIMEOUT",
    "KEEPALIVE_TIMEOUT",
    "API_TOKENS",
    "API_TOKENS_FILE",
    "REQUIRE_TOKENS",
    "LOG_LEVEL",
    "ACCESS_LOG",
    "PROMETHEUS_MULTIPROC_DIR",
)


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int
    stderr: Path
    database_url: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    async def exited(self, within: float) -> int:
        """The exit status, waiting at most `within` seconds for it."""
        try:
            async with asyncio.timeout(within):
                return await self.process.wait()
        except TimeoutError:
            pytest.fail(f"still running {within:.1f}s later:\n{self.log()}")


async def eventually(probe: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await probe():
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)


async def _kill_tree(process: asyncio.subprocess.Process) -> None:
    """Kill the server and whatever it spawned, if a test left it running."""
    if process.returncode is not None:
        return
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.kill()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    async with asyncio.timeout(10):
        await process.wait()
    await asyncio.to_thread(psutil.wait_procs, children, timeout=10)


@asynccontextmanager
async def serving(
    database_url: str,
    tmp_path: Path,
    *,
    port: int | None = None,
    log: Path | None = None,
    healthy: bool = True,
    **settings: str,
) -> AsyncIterator[Server]:
    """Run `python -m service serve` until /healthz answers; always kill it at the end.

    On `port` (default: a free one), its stderr appended to `log` (default: a
    file of its own under tmp_path), so that a server stopped can come back
    where it was. With healthy=False, as soon as the process is started.
    """
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(
        {
            "DATABASE_URL": database_url,
            "HOST": HOST,
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "SHUTDOWN_TIMEOUT": "5",
            "LOG_LEVEL": "INFO",
            **settings,
        }
    )
    stderr = log or tmp_path / f"server-{port}.log"
    with stderr.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            "serve",
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    server = Server(process, port, stderr, database_url)
    try:
        if healthy:
            await _wait_healthy(server)
        yield server
    finally:
        await _kill_tree(process)


async def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_WITHIN
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            assert server.process.returncode is None, f"the server exited:\n{server.log()}"
            assert time.monotonic() < deadline, f"no /healthz in {START_WITHIN}s:\n{server.log()}"
            try:
                async with session.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)


async def service_sessions(conn: asyncpg.Connection, database_url: str) -> int:
    """How many sessions the service holds on the test's database."""
    database = urlsplit(database_url).path.lstrip("/")
    return await conn.fetchval(
        "select count(*) from pg_stat_activity"
        " where application_name = 'enrollment-service' and datname = $1",
        database,
    )


async def wait_sessions(conn: asyncpg.Connection, database_url: str, count: int) -> None:
    """Until the service holds exactly `count` sessions (a backend ends just after its client)."""

    async def probe() -> bool:
        return await service_sessions(conn, database_url) == count

    await eventually(probe, 10, f"the service holds {count} database sessions")


async def wait_for_lock_waiters(conn: asyncpg.Connection, count: int) -> None:
    async def probe() -> bool:
        waiting = await conn.fetchval(
            "select count(*) from pg_stat_activity"
            " where application_name = 'enrollment-service' and wait_event_type = 'Lock'"
        )
        return waiting >= count

    await eventually(probe, 10, f"{count} request(s) wait on the lock")


async def refuses_new_connections(server: Server) -> bool:
    """True when a new connection is refused or dropped without an answer."""
    try:
        async with asyncio.timeout(3):
            reader, writer = await asyncio.open_connection(HOST, server.port)
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                await writer.drain()
                answer = await reader.read(1024)
            finally:
                writer.close()
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return True
    return answer == b""


def assert_clean_log(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log, log
    assert '"level":"ERROR"' not in log, log


async def students_request(session: aiohttp.ClientSession, server: Server) -> tuple[int, dict]:
    async with session.get(f"{server.url}/students") as response:
        return response.status, await response.json()


@asynccontextmanager
async def request_in_flight(server: Server) -> AsyncIterator[asyncio.Task]:
    """GET /students in the background, never left pending when the block ends."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        task = asyncio.create_task(students_request(session, server))
        try:
            yield task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def students_locked(database_url: str) -> AsyncIterator[asyncpg.transaction.Transaction]:
    """An access exclusive lock on students, held by another session until rolled back."""
    locker = await asyncpg.connect(database_url)
    try:
        locked = locker.transaction()
        await locked.start()
        await locker.execute("lock table students in access exclusive mode")
        yield locked
    finally:
        await locker.close()


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(database_url, tmp_path):
    admin = await asyncpg.connect(database_url)
    try:
        async with serving(database_url, tmp_path) as server:
            await admin.execute(
                "insert into students (name, email) values ('Ada', 'ada@example.org')"
            )
            async with (
                students_locked(database_url) as locked,
                request_in_flight(server) as in_flight,
            ):
                await wait_for_lock_waiters(admin, 1)
                assert await service_sessions(admin, database_url) >= 1
                assert not await refuses_new_connections(server)
                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                # Stopped listening, though still busy with the request.
                assert await refuses_new_connections(server)
                assert server.process.returncode is None
                assert not in_flight.done()
                await asyncio.sleep(max(0.0, signalled + 0.5 - time.monotonic()))
                await locked.rollback()
                status, page = await in_flight
            assert status == 200, page
            assert [s["email"] for s in page["items"]] == ["ada@example.org"]
            assert await server.exited(within=5 + 3 - (time.monotonic() - signalled)) == 0
            assert_clean_log(server)
        # The pool was closed: the service left no session behind.
        await wait_sessions(admin, database_url, 0)
    finally:
        await admin.close()


async def test_a_request_blocked_past_the_shutdown_timeout_does_not_keep_the_process_alive(
    database_url, tmp_path
):
    admin = await asyncpg.connect(database_url)
    try:
        settings = {"SHUTDOWN_TIMEOUT": "2", "DB_STATEMENT_TIMEOUT": "30"}
        async with serving(database_url, tmp_path, **settings) as server:
            async with students_locked(database_url), request_in_flight(server) as in_flight:
                await wait_for_lock_waiters(admin, 1)
                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                # The lock is held all along: the request cannot finish in time.
                # aiohttp waits SHUTDOWN_TIMEOUT (rounded up to a whole second)
                # for the request, then the pool gets as long again to close.
                assert await server.exited(within=2 + 5) == 0
                assert time.monotonic() - signalled >= 2 * 0.9
                # The client is not left hanging: its connection is closed.
                outcome = (await asyncio.gather(in_flight, return_exceptions=True))[0]
                assert isinstance(outcome, aiohttp.ClientError) or outcome[0] != 200, outcome
                assert_clean_log(server)
                # Still under the lock: the abandoned query was cancelled, not
                # left waiting in the database after its process went away.
                await wait_sessions(admin, database_url, 0)
    finally:
        await admin.close()


async def two_workers_up(
    server: Server, admin: asyncpg.Connection
) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The server's child processes and its two workers, once both are up."""
    # Each worker opens its own pool of one connection once it is up.
    await wait_sessions(admin, server.database_url, 2)
    children = psutil.Process(server.process.pid).children(recursive=True)
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2, [c.cmdline() for c in children]
    return children, workers


async def test_sigterm_to_the_parent_stops_every_worker(database_url, tmp_path):
    admin = await asyncpg.connect(database_url)
    try:
        settings = {"WEB_CONCURRENCY": "2", "DB_POOL_MIN_SIZE": "1"}
        async with serving(database_url, tmp_path, **settings) as server:
            children, workers = await two_workers_up(server, admin)

            server.process.send_signal(signal.SIGTERM)
            assert await server.exited(within=5 + 5) == 0
            gone, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=5)
            assert not alive, [c.pid for c in alive]
            assert {w.pid for w in workers} <= {c.pid for c in gone}
            assert_clean_log(server)
        await wait_sessions(admin, database_url, 0)
    finally:
        await admin.close()


@pytest.mark.parametrize(
    ("signum", "status"),
    [
        # A signal to the whole group whose share for the supervisor comes
        # late: the workers stop cleanly, and so does the service.
        (signal.SIGTERM, 0),
        # A worker killed: the rest are stopped, and the status says it failed.
        (signal.SIGKILL, 1),
    ],
)
async def test_a_worker_that_ends_on_its_own_stops_the_rest(database_url, tmp_path, signum, status):
    admin = await asyncpg.connect(database_url)
    try:
        settings = {"WEB_CONCURRENCY": "2", "DB_POOL_MIN_SIZE": "1"}
        async with serving(database_url, tmp_path, **settings) as server:
            _children, workers = await two_workers_up(server, admin)

            for worker in workers[: 2 if signum == signal.SIGTERM else 1]:
                worker.send_signal(signum)
            assert await server.exited(within=5 + 5) == status, server.log()
            _gone, alive = await asyncio.to_thread(psutil.wait_procs, workers, timeout=5)
            assert not alive, [c.pid for c in alive]
            if status == 0:
                assert_clean_log(server)
        await wait_sessions(admin, database_url, 0)
    finally:
        await admin.close()


@pytest.mark.parametrize(
    ("workers", "stop"),
    [
        ("1", signal.SIGINT),  # Ctrl-C in a terminal
        ("2", signal.SIGINT),  # Ctrl-C: every process of the group, the workers first
        ("2", signal.SIGTERM),  # systemd's stop, to every process of the unit
    ],
)
async def test_serving_on_is_said_once_the_port_accepts_and_ctrl_c_ends_with_stopped(
    database_url, tmp_path, workers, stop
):
    settings = {"WEB_CONCURRENCY": workers, "DB_POOL_MIN_SIZE": "1"}
    admin = await asyncpg.connect(database_url)
    async with serving(database_url, tmp_path, healthy=False, **settings) as server:
        deadline = time.monotonic() + START_WITHIN
        while "serving on" not in server.log():
            assert server.process.returncode is None, server.log()
            assert time.monotonic() < deadline, server.log()
            await asyncio.sleep(0.01)
        # Said no earlier than true: a client that read the line gets in.
        _reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.close()
        await writer.wait_closed()
        # Every worker up (each opens a pool of one), so that each has its
        # signal handlers in place.
        await wait_sessions(admin, database_url, int(workers))
        await admin.close()

        # Every process gets the signal, the supervisor last: it then sends
        # its workers SIGTERM while they are already stopping.
        supervisor = psutil.Process(server.process.pid)
        for process in [*supervisor.children(recursive=True), supervisor]:
            process.send_signal(stop)
        assert await server.exited(within=10) == 0, server.log()

    lines = server.log().splitlines()
    assert sum("serving on" in line for line in lines) == 1, lines
    assert "stopped: requests answered, database connections closed" in lines[-1]
    assert_clean_log(server)
