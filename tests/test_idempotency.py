"""Idempotency-Key on POST: a retry gets the first answer again, byte for byte, and changes nothing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict, CIMultiDictProxy

from service import idempotency
from service.app import OPENAPI_DOCUMENT, create_app
from service.config import Token
from service.errors import Problem
from service.keys import POOL
from service.repositories import idempotency as keys
from service.repositories import retry

from .api import create_course, create_student, problem
from .migrating import apply, connected

REGISTRAR = Token(name="registrar", scope="write", secret="registrar-secret-0123456789")
IMPORTER = Token(name="importer", scope="write", secret="importer-secret-0123456789")


def keyed(key: str, token: Token | None = None, **headers: str) -> dict[str, str]:
    headers = {"Idempotency-Key": key, **headers}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.secret}"
    return headers


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes  # exactly as received

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.body)


async def post(client: TestClient, path: str, body: bytes | dict, **headers: str) -> Reply:
    """POST `body` (raw bytes as given, or a dict as JSON)."""
    if isinstance(body, dict):
        response = await client.post(path, json=body, headers=headers)
    else:
        headers.setdefault("Content-Type", "application/json")
        # A large body as a stream: aiohttp warns about large bytes.
        response = await client.post(path, data=io.BytesIO(body), headers=headers)
    return Reply(response.status, response.headers, await response.read())


def problem_of(reply: Reply) -> dict[str, Any]:
    assert reply.content_type == "application/problem+json", reply.content_type
    body = reply.json()
    assert body["status"] == reply.status
    return body


async def counts(db: asyncpg.Connection) -> dict[str, int]:
    row = await db.fetchrow(
        "select (select count(*) from students) as students,"
        " (select count(*) from courses) as courses,"
        " (select count(*) from student_courses) as enrollments,"
        " (select count(*) from course_waitlist) as waiting,"
        " (select count(*) from events) as events,"
        " (select count(*) from idempotency_keys) as keys"
    )
    return dict(row)


def assert_same_answer(first, again) -> None:
    assert again.status == first.status
    assert again.body == first.body
    assert again.headers.get("Content-Type") == first.headers.get("Content-Type")
    assert again.headers.get("Location") == first.headers.get("Location")
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


# --- replays ---------------------------------------------------------------------


async def test_a_retry_gets_the_first_answer_again_and_changes_nothing(client, db):
    body = {"name": "Ada Lovelace", "email": "ada@example.org"}
    first = await post(client, "/students", body, **keyed("create-ada"))
    assert first.status == 201, first.body
    before = await counts(db)

    again = await post(client, "/students", body, **keyed("create-ada"))

    assert_same_answer(first, again)
    assert first.headers["Location"] == f"/students/{first.json()['id']}"
    assert await counts(db) == before
    assert before["students"] == 1 and before["keys"] == 1


async def test_an_enrollment_retried_is_the_201_again_not_a_200(client, db):
    # Without a key a retry answers 200 (already enrolled); with one it is the first answer.
    student, course = await create_student(client), await create_course(client, capacity=5)
    path = f"/students/{student['id']}/courses"
    first = await post(client, path, {"course_id": course["id"]}, **keyed("enroll-1"))
    assert first.status == 201
    before = await counts(db)

    again = await post(client, path, {"course_id": course["id"]}, **keyed("enroll-1"))

    assert_same_answer(first, again)
    assert first.headers["Location"] == f"/students/{student['id']}/courses/{course['id']}"
    assert await counts(db) == before


async def test_a_batch_retried_is_its_first_answer_and_applies_nothing_twice(client, db):
    # Without a key a retried batch answers "unchanged"; with one it is the first answer.
    items = {"items": [{"name": "Ada", "email": "ada@example.org"}, {"name": "Alan", "email": "a"}]}
    first = await post(client, "/students/batch", items, **keyed("nightly-1"))
    assert first.status == 200
    assert [r["outcome"] for r in first.json()["results"]] == ["created", "invalid"]
    before = await counts(db)

    again = await post(client, "/students/batch", items, **keyed("nightly-1"))

    assert_same_answer(first, again)
    assert await counts(db) == before
    assert before["students"] == 1


async def test_a_refusal_of_the_effect_is_kept_too(client, db):
    # 409 course-full is what the request did: a retry gets it again even once a seat is free.
    course = await create_course(client, capacity=1)
    first_student, second = await create_student(client), await create_student(client)
    assert (
        await post(client, f"/students/{first_student['id']}/courses", {"course_id": course["id"]})
    ).status == 201
    path = f"/students/{second['id']}/courses"
    full = await post(client, path, {"course_id": course["id"]}, **keyed("late"))
    assert full.status == 409
    assert problem_of(full)["type"] == "/problems/course-full"
    await client.delete(f"/students/{first_student['id']}/courses/{course['id']}")

    again = await post(client, path, {"course_id": course["id"]}, **keyed("late"))

    assert_same_answer(full, again)
    assert await db.fetchval("select count(*) from student_courses") == 0


async def test_a_failed_statement_leaves_the_transaction_usable(client, db):
    # email-taken is a unique violation inside the request's transaction: the handler's
    # block runs in a savepoint, so the 409 can still be stored with its key.
    await create_student(client, email="ada@example.org")
    body = {"name": "Ada again", "email": "ADA@example.org"}
    taken = await post(client, "/students", body, **keyed("dup"))
    assert taken.status == 409
    assert problem_of(taken)["type"] == "/problems/email-taken"

    again = await post(client, "/students", body, **keyed("dup"))

    assert_same_answer(taken, again)
    assert await db.fetchval("select count(*) from students") == 1


async def test_key_order_and_white_space_are_the_same_request(client, db):
    first = await post(
        client, "/courses", b'{"code":"CS101","title":"Engines","capacity":3}', **keyed("k")
    )
    assert first.status == 201

    again = await post(
        client,
        "/courses",
        b'{\n  "capacity": 3,\n  "title" : "Engines",\t"code": "CS101"\n}',
        **keyed("k"),
    )

    assert_same_answer(first, again)
    assert await db.fetchval("select count(*) from courses") == 1


async def test_quotes_around_the_key_are_not_part_of_it(client):
    body = {"name": "Ada", "email": "ada@example.org"}
    first = await post(client, "/students", body, **keyed('"8e03978e-40d5"'))

    again = await post(client, "/students", body, **keyed("8e03978e-40d5"))

    assert_same_answer(first, again)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # another body on the same path
        ("/students", {"name": "Ada", "email": "ada@other.example.org"}),
        # one field more (refused by the handler, but the key check comes first)
        ("/students", {"name": "Ada", "email": "ada@example.org", "extra": 1}),
        # the same body on another path
        ("/courses", {"name": "Ada", "email": "ada@example.org"}),
    ],
)
async def test_the_key_of_another_request_is_422(client, db, path, body):
    first = await post(
        client, "/students", {"name": "Ada", "email": "ada@example.org"}, **keyed("k1")
    )
    assert first.status == 201
    before = await counts(db)

    reused = await post(client, path, body, **keyed("k1"))

    assert reused.status == 422
    found = problem_of(reused)
    assert found["type"] == "/problems/idempotency-key-reused"
    assert found["errors"] == [
        {"field": "Idempotency-Key", "message": "was used for a different request"}
    ]
    assert "Idempotent-Replayed" not in reused.headers
    assert await counts(db) == before


async def test_numbers_compare_as_json_values(client):
    # 3 and 3.0 are different values (the service refuses 3.0 as an integer).
    course = await create_course(client)
    student = await create_student(client)
    path = f"/students/{student['id']}/courses"
    first = await post(client, path, f'{{"course_id": {course["id"]}}}'.encode(), **keyed("n"))
    assert first.status == 201

    floated = await post(client, path, f'{{"course_id": {course["id"]}.0}}'.encode(), **keyed("n"))

    assert floated.status == 422
    assert problem_of(floated)["type"] == "/problems/idempotency-key-reused"


# --- scope -----------------------------------------------------------------------


@pytest.fixture
async def two_tokens(aiohttp_client, config) -> TestClient:
    return await aiohttp_client(create_app(replace(config, tokens=(REGISTRAR, IMPORTER))))


async def test_keys_of_two_tokens_are_independent(two_tokens, db):
    client = two_tokens
    auth = {"Authorization": f"Bearer {REGISTRAR.secret}"}
    student = await (
        await client.post("/students", json={"name": "A", "email": "a@example.org"}, headers=auth)
    ).json()
    course = await (
        await client.post("/courses", json={"code": "C1", "title": "C"}, headers=auth)
    ).json()
    path = f"/students/{student['id']}/courses"
    first = await post(client, path, {"course_id": course["id"]}, **keyed("shared", REGISTRAR))
    assert first.status == 201

    # The same key from another token, for another request: that token's own key,
    # so the request is processed (with one scope for both it would be 422 reused).
    created = await post(
        client, "/courses", {"code": "C2", "title": "D"}, **keyed("shared", IMPORTER)
    )
    assert created.status == 201
    assert "Idempotent-Replayed" not in created.headers

    # Each token gets its own answer again.
    assert_same_answer(
        created,
        await post(client, "/courses", {"code": "C2", "title": "D"}, **keyed("shared", IMPORTER)),
    )
    again = await post(client, path, {"course_id": course["id"]}, **keyed("shared", REGISTRAR))
    assert_same_answer(first, again)
    rows = await db.fetch("select scope, status, location from idempotency_keys order by scope")
    assert [tuple(row) for row in rows] == [
        ("importer", 201, created.headers["Location"]),
        ("registrar", 201, first.headers["Location"]),
    ]


async def test_without_tokens_the_scope_is_the_instance(client, db):
    await post(client, "/students", {"name": "A", "email": "a@example.org"}, **keyed("one"))

    assert await db.fetchval("select scope from idempotency_keys where key = 'one'") == ""


# --- what is not kept -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"name": "Ada"}', "application/json", 422),  # a missing field
        (b'{"name": "Ada", "email": ', "application/json", 400),  # not JSON
        (b'{"name": "Ada", "email": "ada@example.org"}', "text/plain", 415),  # not sent as JSON
        (b'{"name": "' + b"a" * (1024 * 1024) + b'"}', "application/json", 413),  # too large
    ],
)
async def test_a_malformed_request_is_not_kept_and_its_key_serves_the_fixed_one(
    client, db, body, content_type, status
):
    refused = await post(
        client, "/students", body, **keyed("fix-me", **{"Content-Type": content_type})
    )
    assert refused.status == status
    assert await db.fetchval("select count(*) from idempotency_keys") == 0

    fixed = await post(
        client, "/students", {"name": "Ada", "email": "ada@example.org"}, **keyed("fix-me")
    )

    assert fixed.status == 201
    assert "Idempotent-Replayed" not in fixed.headers
    assert await db.fetchval("select count(*) from students") == 1
    again = await post(
        client, "/students", {"name": "Ada", "email": "ada@example.org"}, **keyed("fix-me")
    )
    assert_same_answer(fixed, again)


@asynccontextmanager
async def course_locked(database_url: str, course_id: int) -> AsyncIterator[asyncpg.Connection]:
    """Hold course `course_id`'s row lock from another session, so an enroll in it waits."""
    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("select 1 from courses where id = $1 for update", course_id)
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def wait_for_lock_waiter(db: asyncpg.Connection) -> None:
    """Until one of the service's sessions waits for a lock in this test's database."""
    deadline = time.perf_counter() + 5
    while not await db.fetchval(
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and application_name = 'enrollment-service' and wait_event_type = 'Lock'"
    ):
        assert time.perf_counter() < deadline, "no request waits on the lock"
        await asyncio.sleep(0.02)


async def test_a_503_is_not_kept(aiohttp_client, config, database_url, db):
    # The database is away for this request (here: busy past lock_timeout, 503).
    client = await aiohttp_client(create_app(replace(config, statement_timeout=0.5)))
    student, course = await create_student(client), await create_course(client)
    path = f"/students/{student['id']}/courses"
    async with course_locked(database_url, course["id"]):
        unavailable = await post(client, path, {"course_id": course["id"]}, **keyed("retry-me"))
        assert unavailable.status == 503
        assert "Retry-After" in unavailable.headers
    assert await db.fetchval("select count(*) from idempotency_keys") == 0

    later = await post(client, path, {"course_id": course["id"]}, **keyed("retry-me"))

    assert later.status == 201
    assert "Idempotent-Replayed" not in later.headers


# --- concurrency and atomicity ----------------------------------------------------


async def test_a_key_in_use_is_409_at_once(client, database_url, db):
    student, course = await create_student(client), await create_course(client)
    path = f"/students/{student['id']}/courses"
    body = {"course_id": course["id"]}
    async with course_locked(database_url, course["id"]):
        first = asyncio.create_task(post(client, path, body, **keyed("busy-key")))
        await wait_for_lock_waiter(db)  # the first request is inside the database, key held

        started = time.perf_counter()
        async with asyncio.timeout(3):  # it must not wait for the first one
            second = await post(client, path, body, **keyed("busy-key"))
        assert time.perf_counter() - started < 1

        assert second.status == 409
        assert problem_of(second)["type"] == "/problems/idempotency-key-in-use"
        assert second.headers["Retry-After"] == "1"
        assert not first.done()
    first_answer = await first

    assert first_answer.status == 201
    assert "Idempotent-Replayed" not in first_answer.headers
    again = await post(client, path, body, **keyed("busy-key"))
    assert_same_answer(first_answer, again)
    assert await db.fetchval("select count(*) from student_courses") == 1


async def test_the_record_and_the_effect_commit_together(client, db):
    # The server dies between the effect and the record (a trigger ends the session on
    # the record's insert): the effect must be gone with it.
    await db.execute(
        "create function die() returns trigger language plpgsql as"
        " $$ begin perform pg_terminate_backend(pg_backend_pid()); return new; end $$;"
        " create trigger die before insert on idempotency_keys"
        " for each row execute function die()"
    )
    student, course = await create_student(client), await create_course(client)
    path = f"/students/{student['id']}/courses"
    before = await counts(db)

    crashed = await post(client, path, {"course_id": course["id"]}, **keyed("atomic"))

    assert crashed.status == 503
    assert await counts(db) == before  # no enrollment, no event, no key
    await db.execute("drop trigger die on idempotency_keys")
    retried = await post(client, path, {"course_id": course["id"]}, **keyed("atomic"))
    assert retried.status == 201  # processed now, once
    assert await db.fetchval("select count(*) from student_courses") == 1


async def test_a_deadlock_runs_the_whole_transaction_again(client, database_url, db):
    # The keyed enroll locks the course, then waits for the student (held by `other`),
    # which then waits for the course: a deadlock. The enroll is made its victim (the
    # other session looks for deadlocks only after 10 s); inside its transaction no
    # statement alone can be retried, so the whole transaction runs again.
    student, course = await create_student(client), await create_course(client)
    path = f"/students/{student['id']}/courses"
    other = await asyncpg.connect(database_url)
    try:
        await other.execute("set deadlock_timeout = '10s'")
        async with other.transaction():
            await other.execute("select 1 from students where id = $1 for update", student["id"])
            enroll = asyncio.create_task(
                post(client, path, {"course_id": course["id"]}, **keyed("dl"))
            )
            await wait_for_lock_waiter(db)
            await other.execute("select 1 from courses where id = $1 for update", course["id"])
        answer = await enroll
    finally:
        await other.close()

    assert answer.status == 201, answer.body
    assert await db.fetchval("select count(*) from student_courses") == 1
    assert await db.fetchval("select status from idempotency_keys where key = 'dl'") == 201


async def test_a_race_lost_every_time_is_503_busy_retried_alone_only_without_a_key(client, db):
    # A trigger refuses every seat as a deadlock would; a sequence, which no
    # rollback undoes, counts the tries.
    await db.execute(
        "create sequence tries;"
        " create function lose() returns trigger language plpgsql as"
        " $$ begin perform nextval('tries'); raise exception 'raced' using"
        " errcode = 'deadlock_detected'; end $$;"
        " create trigger lose before insert on student_courses"
        " for each row execute function lose()"
    )
    student, course = await create_student(client), await create_course(client)
    path = f"/students/{student['id']}/courses"

    # Without a key each statement commits alone: the repository runs it again.
    plain = await post(client, path, {"course_id": course["id"]})
    assert plain.status == 503, plain.body
    assert problem_of(plain)["type"] == "/problems/busy"
    assert plain.headers["Retry-After"] == "1"
    assert await db.fetchval("select last_value from tries") == retry.ATTEMPTS

    # With one, the statement may not run again inside the transaction: the
    # whole transaction does, once a try, and nothing is kept.
    keyed_ = await post(client, path, {"course_id": course["id"]}, **keyed("lost"))
    assert keyed_.status == 503, keyed_.body
    assert problem_of(keyed_)["type"] == "/problems/busy"
    assert keyed_.headers["Retry-After"] == "1"
    assert await db.fetchval("select last_value from tries") == 2 * retry.ATTEMPTS
    assert await db.fetchval("select count(*) from idempotency_keys") == 0


# --- how many keys a token may hold ----------------------------------------------


@pytest.fixture
async def three_keys(aiohttp_client, config) -> TestClient:
    """Two tokens, each allowed three live keys, kept ten minutes."""
    limited = replace(
        config, tokens=(REGISTRAR, IMPORTER), limit_idempotency_keys=3, idempotency_ttl=600
    )
    return await aiohttp_client(create_app(limited))


async def create_courses(client: TestClient, token: Token, *keys: str) -> list[Reply]:
    replies = []
    for key in keys:
        body = {"code": f"{token.name}-{key}", "title": key}
        replies.append(reply := await post(client, "/courses", body, **keyed(key, token)))
        assert reply.status == 201, reply.body
    return replies


async def test_a_new_key_beyond_the_limit_is_429_and_nothing_is_done(three_keys, db):
    client = three_keys
    await create_courses(client, REGISTRAR, "k1", "k2", "k3")
    # The oldest key is 500 of its 600 seconds old: one place frees in 100 seconds.
    await db.execute(
        "update idempotency_keys set created_at = now() - interval '500 seconds' where key = 'k1'"
    )
    before = await counts(db)

    refused = await post(
        client, "/courses", {"code": "C4", "title": "Four"}, **keyed("k4", REGISTRAR)
    )

    assert refused.status == 429
    found = problem_of(refused)
    assert found["type"] == "/problems/too-many-requests"
    assert "Idempotency-Key" in found["detail"]
    assert 98 <= int(refused.headers["Retry-After"]) <= 100
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
    assert await counts(db) == before  # no course, no event, no key


async def test_at_the_limit_replays_requests_without_a_key_and_other_tokens_still_work(
    three_keys, db
):
    client = three_keys
    first, *_ = await create_courses(client, REGISTRAR, "k1", "k2", "k3")

    again = await post(
        client, "/courses", {"code": "registrar-k1", "title": "k1"}, **keyed("k1", REGISTRAR)
    )
    unkeyed = await post(
        client,
        "/courses",
        {"code": "C9", "title": "Nine"},
        Authorization=f"Bearer {REGISTRAR.secret}",
    )
    other = await create_courses(client, IMPORTER, "k1", "k2", "k3")

    assert_same_answer(first, again)
    assert unkeyed.status == 201
    assert [reply.status for reply in other] == [201, 201, 201]
    assert await db.fetchval("select count(*) from idempotency_keys") == 6


async def test_an_expired_key_no_longer_counts(three_keys, db):
    client = three_keys
    await create_courses(client, REGISTRAR, "k1", "k2", "k3")
    # Expired, not yet deleted by the background pass.
    await db.execute(
        "update idempotency_keys set created_at = now() - interval '601 seconds' where key = 'k1'"
    )

    created = await create_courses(client, REGISTRAR, "k4")

    assert created[0].status == 201


async def kept_and_real_counts(db: asyncpg.Connection) -> tuple[dict, dict]:
    """Each scope's count as the triggers keep it, and as counted in the table."""
    kept = await db.fetch(
        "select scope, sum(stored)::bigint from idempotency_scope_counts"
        " group by scope having sum(stored) <> 0"
    )
    real = await db.fetch("select scope, count(*) from idempotency_keys group by scope")
    return dict(kept), dict(real)


async def test_the_kept_count_of_keys_is_the_real_one(aiohttp_client, config, db):
    client = await aiohttp_client(
        create_app(
            replace(
                config,
                tokens=(REGISTRAR, IMPORTER),
                idempotency_ttl=600,
                pool_min_size=40,
                pool_max_size=40,
            )
        )
    )

    async def create(token: Token, n: int) -> Reply:
        body = {"name": f"S{n}", "email": f"{token.name}-{n}@example.org"}
        return await post(client, "/students", body, **keyed(f"k{n}", token))

    # Concurrent keyed requests of one token (and a few of another): each
    # shard counted by every request whose key hashes to it.
    created = await asyncio.gather(
        *(create(REGISTRAR, n) for n in range(60)), *(create(IMPORTER, n) for n in range(5))
    )
    assert {reply.status for reply in created} == {201}
    # Replays and an answer not kept add nothing.
    assert (await create(REGISTRAR, 0)).headers["Idempotent-Replayed"] == "true"
    assert (await post(client, "/students", b"{", **keyed("bad", REGISTRAR))).status == 400
    assert await kept_and_real_counts(db) == ({"registrar": 60, "importer": 5},) * 2

    # An expired key used again replaces its row: still one key.
    await db.execute(
        "update idempotency_keys set created_at = now() - interval '601 seconds'"
        " where scope = 'registrar' and key = 'k1'"
    )
    again = await post(
        client, "/students", {"name": "T", "email": "t@example.org"}, **keyed("k1", REGISTRAR)
    )
    assert again.status == 201
    assert await kept_and_real_counts(db) == ({"registrar": 60, "importer": 5},) * 2

    # The expiry deletes 5,000 keys a statement, of any scopes: here the two
    # oldest, of the token, and 4,998 of the instance's.
    await db.execute(
        "update idempotency_keys set created_at = now() - interval '800 seconds'"
        " where scope = 'registrar' and key in ('k2', 'k3')"
    )
    await insert_keys(db, 12_000, timedelta(seconds=700), "old-")
    assert await kept_and_real_counts(db) == ({"registrar": 60, "importer": 5, "": 12_000},) * 2
    ttl = timedelta(seconds=600)
    assert await keys.expire(db, ttl=ttl) == keys.EXPIRE_BATCH
    assert await kept_and_real_counts(db) == ({"registrar": 58, "importer": 5, "": 7_002},) * 2
    assert await idempotency.expire_all(client.app, ttl) == 7_002
    assert await kept_and_real_counts(db) == ({"registrar": 58, "importer": 5},) * 2

    # A student's deletion redacts the answer that created them, and keeps it.
    student = created[10].json()["id"]
    auth = {"Authorization": f"Bearer {REGISTRAR.secret}"}
    assert (await client.delete(f"/students/{student}", headers=auth)).status == 204
    assert await db.fetchval("select body from idempotency_keys where key = 'k10'") is None
    assert await kept_and_real_counts(db) == ({"registrar": 58, "importer": 5},) * 2


async def test_a_key_does_not_move_and_truncate_empties_the_counts(client, db):
    await insert_keys(db, 3, timedelta(0), "k")

    with pytest.raises(asyncpg.CheckViolationError, match="does not move"):
        await db.execute("update idempotency_keys set key = 'moved' where key = 'k1'")
    await db.execute("truncate idempotency_keys")

    assert await kept_and_real_counts(db) == ({}, {})


# --- how large a stored answer may be ----------------------------------------------


def invalid_students(count: int, fields_each: int, unique: bool) -> bytes:
    """A students batch whose items are all refused, each naming its unknown fields."""
    items = []
    for n in range(count):
        names = (
            f"{n:04x}{os.urandom(6).hex()}" if unique else f"f{i:03d}" for i in range(fields_each)
        )
        items.append({"name": "x", "email": "not-an-email", **dict.fromkeys(names, 1)})
    return json.dumps({"items": items}).encode()


async def test_a_batch_answer_is_stored_compressed_and_replayed_byte_for_byte(client, db):
    request = invalid_students(1000, 20, unique=False)
    first = await post(client, "/students/batch", request, **keyed("big"))
    assert first.status == 200
    assert len(first.body) > 1_000_000

    stored = await db.fetchrow(
        "select compressed, octet_length(body) as size, pg_column_size(body) as on_disk"
        " from idempotency_keys"
    )
    again = await post(client, "/students/batch", request, **keyed("big"))

    assert stored["compressed"]
    assert stored["on_disk"] <= stored["size"] < len(first.body) // 20
    assert_same_answer(first, again)


async def test_an_answer_too_large_to_keep_keeps_its_status_only(client, db):
    # Unique unknown field names, each named twice in the answer: over a MiB that
    # no compression brings under MAX_STORED_BODY.
    request = invalid_students(1000, 40, unique=True)
    first = await post(client, "/students/batch", request, **keyed("huge"))
    assert first.status == 200

    stored = await db.fetchrow("select status, body, content_type from idempotency_keys")
    again = await post(client, "/students/batch", request, **keyed("huge"))
    other = await post(client, "/students/batch", invalid_students(1, 1, False), **keyed("huge"))

    assert (stored["status"], stored["body"]) == (200, None)
    assert stored["content_type"] == "application/json"
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body == b""
    assert "Content-Type" not in again.headers
    # The request's fingerprint is kept: another request with the key is still refused.
    assert other.status == 422
    assert problem_of(other)["type"] == "/problems/idempotency-key-reused"


# --- personal data -----------------------------------------------------------------


async def raw_keys(db: asyncpg.Connection) -> list[bytes]:
    """Every stored column of every key, as bytes, the body decompressed."""
    rows = await db.fetch("select * from idempotency_keys")
    found = []
    for row in rows:
        body = row["body"] or b""
        if row["compressed"]:
            body = zlib.decompress(body)
        found.append(repr(dict(row)).encode() + body)
    return found


def assert_nowhere(stored: list[bytes], *texts: str) -> None:
    for text in texts:
        for value in stored:
            assert text.encode() not in value, f"{text!r} is still stored"
            assert text.encode().hex().encode() not in value, f"{text!r} is still stored"


async def test_deleting_a_student_drops_the_stored_answer_that_created_them(client, db):
    body = {"name": "Ada Lovelace", "email": "ada@example.org"}
    created = await post(client, "/students", body, **keyed("create-ada"))
    assert created.status == 201
    assert b"ada@example.org" in b"".join(await raw_keys(db))

    deleted = await client.delete(created.headers["Location"])
    assert deleted.status == 204
    again = await post(client, "/students", body, **keyed("create-ada"))

    assert again.status == 201
    assert again.headers["Location"] == created.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.body == b""
    assert_nowhere(await raw_keys(db), "Ada Lovelace", "ada@example.org")


async def test_deleting_a_student_drops_the_stored_answer_about_their_hold(client, db):
    ada = await create_student(client, name="Ada Lovelace", email="ada@example.org")
    path = f"/students/{ada['id']}/holds"
    placed = await post(client, path, {"reason": "unpaid library fine"}, **keyed("hold"))
    assert placed.status == 201
    assert b"unpaid library fine" in b"".join(await raw_keys(db))

    assert (await client.delete(f"/students/{ada['id']}")).status == 204

    assert_nowhere(await raw_keys(db), "unpaid library fine")


async def test_deleting_a_student_drops_a_batch_answer_that_names_them(client, db):
    items = {
        "items": [
            {"name": "Ada Lovelace", "email": "ada@example.org"},
            {"name": "Alan Turing", "email": "alan@example.org"},
        ]
    }
    first = await post(client, "/students/batch", items, **keyed("nightly"))
    assert [r["outcome"] for r in first.json()["results"]] == ["created", "created"]
    ada = first.json()["results"][0]["body"]["id"]

    assert (await client.delete(f"/students/{ada}")).status == 204
    again = await post(client, "/students/batch", items, **keyed("nightly"))

    assert (again.status, again.body) == (200, b"")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_nowhere(await raw_keys(db), "Ada Lovelace", "ada@example.org")


async def test_deleting_a_student_drops_a_refusal_that_gave_their_email(client, db):
    ada = await create_student(client, name="Ada Lovelace", email="ada@example.org")
    taken = await post(
        client, "/students", {"name": "Someone", "email": "ADA@example.org"}, **keyed("dup")
    )
    assert taken.status == 409
    # The email as sent, in another letter case: still Ada's.
    assert "ADA@example.org" in problem_of(taken)["detail"]

    assert (await client.delete(f"/students/{ada['id']}")).status == 204
    again = await post(
        client, "/students", {"name": "Someone", "email": "ADA@example.org"}, **keyed("dup")
    )

    assert (again.status, again.body) == (409, b"")
    assert_nowhere(await raw_keys(db), "ada@example.org", "ADA@example.org")


async def test_answers_that_do_not_carry_the_student_keep_their_body(client, db):
    ada = await create_student(client, email="ada@example.org")
    alan = await post(
        client, "/students", {"name": "Alan", "email": "alan@example.org"}, **keyed("alan")
    )
    course = await create_course(client)
    path = f"/students/{ada['id']}/courses"
    enrolled = await post(client, path, {"course_id": course["id"]}, **keyed("enroll"))
    assert enrolled.status == 201  # the course, not the student

    assert (await client.delete(f"/students/{ada['id']}")).status == 204

    assert_same_answer(
        alan,
        await post(
            client, "/students", {"name": "Alan", "email": "alan@example.org"}, **keyed("alan")
        ),
    )
    assert_same_answer(
        enrolled, await post(client, path, {"course_id": course["id"]}, **keyed("enroll"))
    )


async def test_migration_0014_links_and_counts_the_answers_stored_before_it(empty_database):
    dsn = empty_database
    await apply(dsn, target="0013_search_bound")
    async with connected(dsn) as conn:
        ada = await conn.fetchval(
            "insert into students (name, email) values ('Ada', 'ada@example.org') returning id"
        )
        alan = await conn.fetchval(
            "insert into students (name, email) values ('Alan', 'alan@example.org') returning id"
        )
        answers = {
            "created": {"id": ada, "name": "Ada", "email": "ada@example.org"},
            "taken": {
                "type": "/problems/email-taken",
                "detail": "a student with email ADA@example.org already exists",
            },
            "batch": {
                "results": [
                    {"body": {"id": ada, "email": "ada@example.org"}},
                    {"body": {"id": alan, "email": "alan@example.org"}},
                ]
            },
            "course": {"id": 1, "code": "C@1"},
        }
        for key, body in answers.items():
            await conn.execute(
                "insert into idempotency_keys (scope, key, fingerprint, status, content_type, body)"
                " values ('', $1, '\\x00', 200, 'application/json', $2)",
                key,
                json.dumps(body).encode(),
            )

        assert await apply(dsn, target="0014_idempotency_bounds") == ["0014_idempotency_bounds"]

        assert await kept_and_real_counts(conn) == ({"": 4}, {"": 4})
        linked = dict(await conn.fetch("select key, student_ids from idempotency_keys"))
        assert linked == {"created": [ada], "taken": [ada], "batch": [ada, alan], "course": None}
        await conn.execute("delete from students where id = $1", ada)
        kept = dict(await conn.fetch("select key, body is not null from idempotency_keys"))
        assert kept == {"created": False, "taken": False, "batch": False, "course": True}


# --- malformed keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",  # empty
        '""',  # empty between the quotes
        "a" * 256,  # too long
        '"' + "a" * 256 + '"',  # too long between the quotes
        "a b",  # a space is not visible
        "a\tb",  # nor a tab
        "caf\u00e9",  # not ASCII
    ],
    ids=["empty", "empty-quoted", "256", "256-quoted", "space", "tab", "non-ascii"],
)
async def test_a_malformed_key_is_400_naming_the_header(client, db, value):
    response = await client.post(
        "/students",
        json={"name": "Ada", "email": "ada@example.org"},
        headers={"Idempotency-Key": value},
    )

    assert response.status == 400
    found = await problem(response)
    assert found["type"] == "/problems/invalid-idempotency-key"
    assert "Idempotency-Key" in found["detail"]
    assert await db.fetchval("select count(*) from students") == 0


async def test_a_key_sent_twice_is_400(client, db):
    headers = CIMultiDict([("Idempotency-Key", "a"), ("Idempotency-Key", "a")])

    response = await client.post(
        "/students", json={"name": "Ada", "email": "ada@example.org"}, headers=headers
    )

    assert response.status == 400
    assert "once" in (await problem(response))["detail"]
    assert await db.fetchval("select count(*) from students") == 0


@pytest.mark.parametrize(
    "value",
    ["a" * 255, '"' + "~" * 255 + '"', "!", '"', '"a', "a,b", '"a"b"'],
    ids=["255", "255-quoted", "one-char", "one-quote", "leading-quote", "comma", "inner-quote"],
)
async def test_the_longest_and_oddest_keys_are_accepted(client, value):
    body = {"name": "Ada", "email": "ada@example.org"}
    first = await post(client, "/students", body, **keyed(value))
    assert first.status == 201

    assert_same_answer(first, await post(client, "/students", body, **keyed(value)))


def test_the_documented_pattern_accepts_exactly_the_keys_the_server_accepts():
    pattern = OPENAPI_DOCUMENT["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    samples = [
        "",
        '"',
        '""',
        '"""',
        "a",
        '"a"',
        "a" * 255,
        "a" * 256,
        '"' + "a" * 255 + '"',
        '"' + "a" * 256 + '"',
        '"' + "a" * 254,
        "a b",
        "a\n",
        "\u00e9",
        "a\x7f",
        "~!",
    ]
    for value in samples:
        try:
            idempotency.parse_key([value])
            accepted = True
        except Problem:
            accepted = False
        assert (re.search(pattern, value) is not None) is accepted, repr(value)


async def test_get_and_other_methods_ignore_the_header(client):
    # Only POST is keyed; a GET with a malformed key is answered as usual.
    response = await client.get("/students", headers={"Idempotency-Key": ""})

    assert response.status == 200
    assert "Idempotent-Replayed" not in response.headers


# --- expiry -----------------------------------------------------------------------


async def insert_keys(db: asyncpg.Connection, count: int, age: timedelta, prefix: str) -> None:
    await db.execute(
        "insert into idempotency_keys (scope, key, fingerprint, status, body, created_at)"
        " select '', $1 || n, '\\x00', 201, '{}', now() - $2::interval"
        " from generate_series(1, $3) n",
        prefix,
        age,
        count,
    )


async def test_expiry_deletes_expired_keys_in_batches_and_only_them(client, db):
    day = timedelta(hours=24)
    await insert_keys(db, 12_000, day + timedelta(minutes=1), "old-")
    await insert_keys(db, 10, day - timedelta(minutes=1), "live-")

    # One statement deletes one batch at most.
    assert await keys.expire(db, ttl=day) == keys.EXPIRE_BATCH
    # The pass goes on while there is more.
    assert await idempotency.expire_all(client.app, day) == 12_000 - keys.EXPIRE_BATCH
    assert await db.fetchval("select count(*) from idempotency_keys where key like 'old-%'") == 0
    assert await db.fetchval("select count(*) from idempotency_keys where key like 'live-%'") == 10


async def test_the_service_expires_keys_in_the_background(aiohttp_client, config, db):
    await insert_keys(db, 30, timedelta(seconds=120), "old-")
    await insert_keys(db, 3, timedelta(seconds=10), "live-")

    await aiohttp_client(create_app(replace(config, idempotency_ttl=60)))

    deadline = time.perf_counter() + 5
    while await db.fetchval("select count(*) from idempotency_keys where key like 'old-%'"):
        assert time.perf_counter() < deadline, "the expired keys were not deleted"
        await asyncio.sleep(0.05)
    assert await db.fetchval("select count(*) from idempotency_keys") == 3


async def test_an_expired_key_serves_a_new_request(aiohttp_client, config, db):
    client = await aiohttp_client(create_app(replace(config, idempotency_ttl=60)))
    first = await post(client, "/students", {"name": "A", "email": "a@example.org"}, **keyed("old"))
    assert first.status == 201
    # Older than the TTL, not yet deleted: as if it never was.
    await db.execute("update idempotency_keys set created_at = now() - interval '61 seconds'")

    other = await post(client, "/students", {"name": "B", "email": "b@example.org"}, **keyed("old"))

    assert other.status == 201
    assert "Idempotent-Replayed" not in other.headers
    assert await db.fetchval("select count(*) from idempotency_keys") == 1
    again = await post(client, "/students", {"name": "B", "email": "b@example.org"}, **keyed("old"))
    assert_same_answer(other, again)


async def test_pool_connection_is_returned_after_a_keyed_request(client):
    await post(client, "/students", {"name": "A", "email": "a@example.org"}, **keyed("p"))

    pool = client.app[POOL]
    assert not pool.loans
    assert all(not conn.is_in_transaction() for conn in pool.free)
