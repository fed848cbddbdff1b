"""What one client may hold at once, and what a crowd of waiting long polls costs.

A client is its token (or its address without tokens); beyond its limit of
long polls, searches or batches it gets 429 at once and nothing is done.
A thousand long polls waiting for a student who never changes must cost the
database nothing per write: the watcher reads each new event once and wakes
only the polls it concerns (service/feed.py).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config, Token
from service.keys import FEED

from .api import create_course, create_student, problem

REGISTRAR = Token("registrar", "write", "5b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e")
PORTAL = Token("portal", "write", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")


def auth(token: Token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.secret}"}


async def start(
    aiohttp_client, config: Config, headers: dict[str, str] | None = None, **changes: Any
) -> TestClient:
    return await aiohttp_client(create_app(replace(config, **changes)), headers=headers)


async def assert_too_many(response: aiohttp.ClientResponse, limit: int) -> None:
    assert response.status == 429, await response.text()
    body = await problem(response)
    assert body["type"] == "/problems/too-many-requests"
    assert str(limit) in body["detail"]
    assert response.headers["Retry-After"] == "1"
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == "1"


async def polls_waiting(client: TestClient, count: int, within: float = 5) -> None:
    """Until `count` long polls wait in the app's watcher."""
    feed = client.app[FEED]
    deadline = time.monotonic() + within
    while feed.count < count:
        assert time.monotonic() < deadline, f"{feed.count} of {count} polls wait"
        await asyncio.sleep(0.01)


# -- limits ------------------------------------------------------------------------------


async def test_long_polls_beyond_the_limit_are_429_per_token(aiohttp_client, config):
    client = await start(
        aiohttp_client, config, auth(REGISTRAR), tokens=(REGISTRAR, PORTAL), limit_long_polls=2
    )
    cursor = (await (await client.get("/events", headers=auth(REGISTRAR))).json())["next_cursor"]
    params = {"cursor": cursor, "wait": "5"}
    held = [
        asyncio.create_task(client.get("/events", params=params, headers=auth(REGISTRAR)))
        for _ in range(2)
    ]
    await polls_waiting(client, 2)

    started = time.monotonic()
    third = await client.get("/events", params=params, headers=auth(REGISTRAR))
    await assert_too_many(third, 2)
    assert time.monotonic() - started < 1  # refused at once, not after a wait
    # A read that does not wait is not a long poll; another token has its own places.
    assert (await client.get("/events", headers=auth(REGISTRAR))).status == 200
    other = asyncio.create_task(client.get("/events", params=params, headers=auth(PORTAL)))
    await polls_waiting(client, 3)

    await create_student(client)  # answers all three
    for response in await asyncio.gather(*held, other):
        assert response.status == 200
        assert [e["type"] for e in (await response.json())["items"]] == ["student.created"]
    # The places were given back.
    again = await client.get("/events", params={"cursor": cursor}, headers=auth(REGISTRAR))
    assert again.status == 200


async def test_without_tokens_the_limit_is_per_client_address(aiohttp_client, config):
    client = await start(aiohttp_client, config, limit_long_polls=1)
    cursor = (await (await client.get("/events")).json())["next_cursor"]
    held = asyncio.create_task(client.get("/events", params={"cursor": cursor, "wait": "5"}))
    await polls_waiting(client, 1)

    await assert_too_many(await client.get("/events", params={"cursor": cursor, "wait": "5"}), 1)

    await create_student(client)
    assert (await held).status == 200


async def test_batches_beyond_the_limit_are_429_and_change_nothing(
    aiohttp_client, config, database_url, db
):
    client = await start(
        aiohttp_client, config, auth(REGISTRAR), tokens=(REGISTRAR, PORTAL), limit_batches=1
    )
    course = await create_course(client, capacity=10)
    students = [await create_student(client) for _ in range(3)]
    items = [{"student_id": s["id"], "course_id": course["id"]} for s in students]

    # Another session holds the course's row: the first batch waits for it.
    holder = await asyncpg.connect(database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("select 1 from courses where id = $1 for update", course["id"])
        first = asyncio.create_task(
            client.post("/enrollments/batch", json={"items": items[:1]}, headers=auth(REGISTRAR))
        )
        deadline = time.monotonic() + 5
        while not await holder.fetchval(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
        ):
            assert time.monotonic() < deadline, "the first batch never waited for the row"
            await asyncio.sleep(0.02)

        second = await client.post(
            "/enrollments/batch",
            json={"items": items[1:2]},
            headers={**auth(REGISTRAR), "Idempotency-Key": "second-batch"},
        )
        await assert_too_many(second, 1)
        refused_students = await client.post(
            "/students/batch",
            json={"items": [{"name": "Nobody", "email": "nobody@example.org"}]},
            headers=auth(REGISTRAR),
        )
        await assert_too_many(refused_students, 1)
        # The other token is not held back by the registrar's batch (it waits
        # for the same row, so it is only started here).
        third = asyncio.create_task(
            client.post("/enrollments/batch", json={"items": items[2:]}, headers=auth(PORTAL))
        )
        await asyncio.sleep(0.2)
        assert not third.done()
        await tx.rollback()
    finally:
        await holder.close()

    assert (await first).status == 200
    assert (await third).status == 200
    enrolled = await db.fetch("select student_id from student_courses order by student_id")
    assert [r["student_id"] for r in enrolled] == [students[0]["id"], students[2]["id"]]
    assert not await db.fetchval("select count(*) from students where email = 'nobody@example.org'")
    # The refusal was not kept: the same key, sent again, does the work.
    retried = await client.post(
        "/enrollments/batch",
        json={"items": items[1:2]},
        headers={**auth(REGISTRAR), "Idempotency-Key": "second-batch"},
    )
    assert retried.status == 200
    assert (await retried.json())["results"][0]["status"] == 201


# -- what waiting long polls cost ---------------------------------------------------------

POLLS = 1000
POLL_WAIT = 12  # seconds: past the writes with polls, measured in about five
WRITES = 100


async def commits(db: asyncpg.Connection) -> int:
    return await db.fetchval(
        "select xact_commit from pg_stat_database where datname = current_database()"
    )


async def settled_commits(client: TestClient, db: asyncpg.Connection) -> int:
    """xact_commit once the app's one connection has reported what it did.

    A backend sends its counts at the end of a transaction at most once a
    second: wait past that, then one request makes it send them.
    """
    await asyncio.sleep(1.1)
    assert (await client.get("/readyz")).status == 200
    return await commits(db)


async def writes(client: TestClient) -> list[float]:
    """WRITES changes one after another; the seconds each took."""
    took = []
    for _ in range(WRITES):
        started = time.perf_counter()
        await create_student(client)
        took.append(time.perf_counter() - started)
    return took


async def test_a_thousand_waiting_filtered_polls_cost_the_database_nothing_per_write(
    aiohttp_client, config, db
):
    # One pooled connection: everything the app asks of the database goes
    # through one backend, whose counts settled_commits() can make it report.
    client = await start(
        aiohttp_client, config, pool_min_size=1, pool_max_size=1, limit_long_polls=POLLS
    )
    nobody = "424242"  # polls filtered on a student who never changes
    first = await client.get("/events", params={"student_id": nobody})
    cursor = (await first.json())["next_cursor"]

    before = await settled_commits(client, db)
    alone = await writes(client)
    alone_commits = await settled_commits(client, db) - before

    # A connector without aiohttp's 100-connection default: every poll open at once.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        url = client.make_url("/events")
        params = {"cursor": cursor, "student_id": nobody, "wait": str(POLL_WAIT)}
        polls = [asyncio.create_task(session.get(url, params=params)) for _ in range(POLLS)]
        try:
            await polls_waiting(client, POLLS, within=POLL_WAIT / 2)
            started = time.monotonic()
            before = await settled_commits(client, db)
            crowded = await writes(client)
            crowded_commits = await settled_commits(client, db) - before
            watched = time.monotonic() - started
            assert not any(p.done() for p in polls), "a poll that matches nothing was answered"
            # Every poll ends empty when its wait is over.
            for response in await asyncio.gather(*polls):
                assert response.status == 200
                assert (await response.json())["items"] == []
        finally:
            for poll in polls:
                poll.cancel()
    assert client.app[FEED].count == 0
    after = await writes(client)

    # The watcher's looks (ten a second while anyone waits) are the only
    # extra work: one per tick, however many polls wait and writes happen.
    looks = watched / 0.1 + 5
    extra_per_write = (crowded_commits - alone_commits - looks) / WRITES
    assert extra_per_write < 1, (alone_commits, crowded_commits, looks)
    # Against the writes without polls on either side of them: a machine
    # whose load drifts meanwhile is not blamed on the polls.
    alone_p50 = max(statistics.median(alone), statistics.median(after))
    crowded_p50 = statistics.median(crowded)
    assert crowded_p50 < 1.5 * alone_p50, (alone_p50, crowded_p50)


async def test_a_filtered_poll_wakes_for_its_own_student_only(client):
    watched, other = await create_student(client), await create_student(client)
    first = await client.get("/events", params={"student_id": watched["id"]})
    cursor = (await first.json())["next_cursor"]
    poll = asyncio.create_task(
        client.get("/events", params={"cursor": cursor, "student_id": watched["id"], "wait": "10"})
    )
    await polls_waiting(client, 1)

    for name in ("B1", "B2", "B3"):
        changed = await client.patch(f"/students/{other['id']}", json={"name": name})
        assert changed.status == 200
    await asyncio.sleep(0.5)  # several of the watcher's looks
    assert not poll.done()
    assert client.app[FEED].count == 1  # still waiting: it never read again

    await client.patch(f"/students/{watched['id']}", json={"name": "Seen"})
    response = await asyncio.wait_for(poll, 3)
    items = (await response.json())["items"]
    assert [(e["type"], e["student_id"]) for e in items] == [("student.updated", watched["id"])]
