"""The service through a real PgBouncer in transaction pooling mode.

PgBouncer hands each transaction to whichever server connection is free, so
session state does not follow the client: named prepared statements (asyncpg's
statement cache) and start-up parameters are the traps. The service runs here
with DB_STATEMENT_CACHE_SIZE=0 and DB_SESSION_SETTINGS=false, as the README
tells operators to. Skipped when pgbouncer is not installed (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.app import create_app
from service.embedded import SYSTEM_USER, free_port
from tests.api import create_course, create_student, enroll, problem

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed")


@pytest.fixture
def pgbouncer_url(database_url: str) -> Iterator[str]:
    target = urlsplit(database_url)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="enrollment-pgbouncer-"))
    (workdir / "users.txt").write_text(f'"{target.username}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
{target.path.lstrip("/")} = host={target.hostname} port={target.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "users.txt"}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
logfile = {workdir / "pgbouncer.log"}
"""
    )
    kwargs = {}
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root.
        shutil.chown(workdir, user=SYSTEM_USER)
        for path in workdir.iterdir():
            shutil.chown(path, user=SYSTEM_USER)
        kwargs["user"] = SYSTEM_USER
    process = subprocess.Popen(
        [PGBOUNCER, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **kwargs,
    )
    try:
        _wait_for_port(port, process, workdir / "pgbouncer.log")
        yield f"postgresql://{target.username}@127.0.0.1:{port}{target.path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen, logfile: Path) -> None:
    import socket
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = logfile.read_text() if logfile.exists() else ""
            raise RuntimeError(f"pgbouncer exited: {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("pgbouncer did not start listening")


async def test_enrollment_scenario_through_pgbouncer(pgbouncer_url, aiohttp_client, config, db):
    config = replace(
        config,
        database_url=pgbouncer_url,
        statement_cache_size=0,
        session_settings=False,
        pool_max_size=20,
    )
    client = await aiohttp_client(create_app(config))
    course = await create_course(client, capacity=3)
    students = [await create_student(client) for _ in range(8)]

    # Many overlapping requests: with 4 server connections behind 20 client
    # connections, statements from different clients share server sessions.
    responses = await asyncio.gather(*(enroll(client, s["id"], course["id"]) for s in students))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 3 + [409] * 5
    for response in responses:
        if response.status == 409:
            assert (await problem(response))["type"] == "/problems/course-full"

    enrolled = [s for s, r in zip(students, responses, strict=True) if r.status == 201]
    again = await enroll(client, enrolled[0]["id"], course["id"])
    assert again.status == 200

    pages = await asyncio.gather(
        *(client.get(f"/students/{s['id']}/courses") for s in students for _ in range(3))
    )
    assert all(p.status == 200 for p in pages)
    listing = await client.get(f"/courses/{course['id']}/students")
    ids = [item["id"] for item in (await listing.json())["items"]]
    assert ids == sorted(s["id"] for s in enrolled)
    assert (
        await db.fetchval("select count(*) from student_courses where course_id = $1", course["id"])
        == 3
    )


async def test_keyed_requests_through_pgbouncer(pgbouncer_url, aiohttp_client, config, db):
    # A keyed request is one transaction (advisory lock, savepoints, the stored
    # answer): transaction pooling keeps each on one server connection.
    config = replace(
        config,
        database_url=pgbouncer_url,
        statement_cache_size=0,
        session_settings=False,
        pool_max_size=20,
    )
    client = await aiohttp_client(create_app(config))
    course = await create_course(client, capacity=3)
    students = [await create_student(client) for _ in range(8)]

    async def keyed_enroll(student_id: int) -> tuple[int, bytes]:
        response = await client.post(
            f"/students/{student_id}/courses",
            json={"course_id": course["id"]},
            headers={"Idempotency-Key": f"enroll-{student_id}"},
        )
        return response.status, await response.read()

    first = await asyncio.gather(*(keyed_enroll(s["id"]) for s in students))
    again = await asyncio.gather(*(keyed_enroll(s["id"]) for s in students))

    assert sorted(status for status, _ in first) == [201] * 3 + [409] * 5
    assert again == first  # every answer replayed, byte for byte, the 409s too
    assert await db.fetchval("select count(*) from idempotency_keys") == 8
    assert (
        await db.fetchval("select count(*) from student_courses where course_id = $1", course["id"])
        == 3
    )
