"""A term's setting-up for the tests of the rules of registration.

Terms, courses of a term, holds, completions and per-term settings are
written with SQL on the test's own connection, as a student information
system's nightly load would; the tests then enroll and drop through the API.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

_serial = itertools.count(1)

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)


def meeting(days: str, starts: str, ends: str) -> dict[str, Any]:
    """meeting("mon wed", "09:00", "10:00")"""
    return {"days": days.split(), "starts": starts, "ends": ends}


async def term(
    db: asyncpg.Connection,
    *,
    registration_opens_at: datetime | None = None,
    registration_closes_at: datetime | None = None,
    drop_deadline: datetime | None = None,
    max_credits: float | None = None,
) -> int:
    n = next(_serial)
    return await db.fetchval(
        "insert into terms (code, title, starts_on, ends_on, registration_opens_at,"
        " registration_closes_at, drop_deadline, max_credits)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
        f"T{n}",
        f"Term {n}",
        NOW.date(),
        NOW.date() + timedelta(days=120),
        registration_opens_at,
        registration_closes_at,
        drop_deadline,
        max_credits,
    )


async def course(
    db: asyncpg.Connection,
    term_id: int | None,
    *,
    code: str | None = None,
    capacity: int | None = None,
    waitlist: int = 0,
    credits: float = 0,
    meetings: list[dict[str, Any]] | tuple = (),
    prerequisites: list[str] | tuple = (),
) -> int:
    n = next(_serial)
    return await db.fetchval(
        "insert into courses (code, title, term_id, capacity, waitlist_capacity, credits,"
        " meetings, prerequisites) values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) returning id",
        code or f"R{n}",
        f"Course {n}",
        term_id,
        capacity,
        waitlist,
        credits,
        json.dumps(list(meetings)),
        list(prerequisites),
    )


async def hold(client: TestClient, student_id: int) -> int:
    response = await client.post(f"/students/{student_id}/holds", json={"reason": "library fine"})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def hold_in(conn: asyncpg.Connection, student_id: int) -> int:
    """A hold placed with SQL on `conn`, inside whatever transaction it has open."""
    return await conn.fetchval(
        "insert into student_holds (student_id, reason) values ($1, 'library fine') returning id",
        student_id,
    )


async def remove_hold(client: TestClient, student_id: int, hold_id: int) -> None:
    response = await client.delete(f"/students/{student_id}/holds/{hold_id}")
    assert response.status == 204, await response.text()


async def complete(client: TestClient, student_id: int, code: str) -> None:
    response = await client.post(f"/students/{student_id}/completions", json={"code": code})
    assert response.status == 201, await response.text()


async def settings(
    client: TestClient,
    student_id: int,
    term_id: int,
    *,
    opens: datetime | None = None,
    max_credits: float | None = None,
) -> dict[str, Any]:
    body = {
        "registration_opens_at": opens.isoformat() if opens else None,
        "max_credits": max_credits,
    }
    response = await client.put(f"/students/{student_id}/terms/{term_id}", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def events(
    db: asyncpg.Connection,
    type_: str,
    *,
    student_id: int | None = None,
    course_id: int | None = None,
) -> list[dict[str, Any]]:
    """The events of `type_` (about a student, a course), in feed order."""
    rows = await db.fetch(
        "select student_id, course_id, data from events where type = $1"
        " and ($2::bigint is null or student_id = $2) and ($3::bigint is null or course_id = $3)"
        " order by id",
        type_,
        student_id,
        course_id,
    )
    return [{**dict(row), "data": json.loads(row["data"])} for row in rows]
