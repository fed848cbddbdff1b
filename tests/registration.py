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

_serial = itertools.count(1)

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)


def meeting(days: str, starts: str, ends: str) -> dict[str, Any]:
    """meeting("mon wed", "09:00", "10:00")"""
    return {"days": days.split(), "starts": starts, "ends": ends}


async def term(db: asyncpg.Connection, **fields: Any) -> int:
    n = next(_serial)
    values = {
        "code": f"T{n}",
        "title": f"Term {n}",
        "starts_on": NOW.date(),
        "ends_on": NOW.date() + timedelta(days=120),
        **fields,
    }
    columns = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    return await db.fetchval(
        f"insert into terms ({columns}) values ({marks}) returning id", *values.values()
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


async def hold(db: asyncpg.Connection, student_id: int) -> int:
    return await db.fetchval(
        "insert into student_holds (student_id, reason) values ($1, 'library fine') returning id",
        student_id,
    )


async def remove_hold(db: asyncpg.Connection, hold_id: int) -> None:
    student_id = await db.fetchval("select student_id from student_holds where id = $1", hold_id)
    async with db.transaction():
        await db.execute("select lock_student_waits($1, null)", student_id)
        await db.execute("delete from student_holds where id = $1", hold_id)


async def complete(db: asyncpg.Connection, student_id: int, code: str) -> None:
    async with db.transaction():
        await db.execute("select lock_student_waits($1, null)", student_id)
        await db.execute(
            "insert into student_completions (student_id, code) values ($1, $2)", student_id, code
        )


async def settings(
    db: asyncpg.Connection,
    student_id: int,
    term_id: int,
    *,
    opens: datetime | None = None,
    max_credits: float | None = None,
) -> None:
    async with db.transaction():
        await db.execute("select lock_student_waits($1, $2)", student_id, term_id)
        await db.execute(
            "insert into student_terms (student_id, term_id, registration_opens_at, max_credits)"
            " values ($1, $2, $3, $4) on conflict (student_id, term_id) do update"
            " set registration_opens_at = excluded.registration_opens_at,"
            " max_credits = excluded.max_credits",
            student_id,
            term_id,
            opens,
            max_credits,
        )


async def events(db: asyncpg.Connection, type_: str, **about: int) -> list[dict[str, Any]]:
    """The events of `type_` (about a student_id / course_id), in feed order."""
    where = "".join(f" and {column} = ${i}" for i, column in enumerate(about, 2))
    rows = await db.fetch(
        f"select student_id, course_id, data from events where type = $1{where} order by id",
        type_,
        *about.values(),
    )
    return [{**dict(row), "data": json.loads(row["data"])} for row in rows]
