"""Holds, completions and per-term settings: what a student brings to registration.

Each is a sub-resource of a student, created and read through the API and
checked in the database. What they do to enrollments and waitlists (the
checks, promotions, events) is tested with the rules themselves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from . import registration
from .api import create_student, problem, walk

HOLD_FIELDS = {"id", "reason", "created_at"}
COMPLETION_FIELDS = {"id", "code", "completed_at"}
TERM_FIELDS = {"student_id", "term_id", "registration_opens_at", "max_credits", "credits"}


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- holds -------------------------------------------------------------------------------


async def place(client: TestClient, student_id: int, reason: str = "Unpaid fees"):
    return await client.post(f"/students/{student_id}/holds", json={"reason": reason})


async def test_a_hold_is_placed_read_listed_and_removed(client, db):
    student = await create_student(client)
    sid = student["id"]

    response = await place(client, sid, "\tUnpaid fees \n")

    assert response.status == 201, await response.text()
    hold = await response.json()
    assert hold.keys() == HOLD_FIELDS
    assert hold["reason"] == "Unpaid fees"  # trimmed
    assert response.headers["Location"] == f"/students/{sid}/holds/{hold['id']}"
    assert await (await client.get(response.headers["Location"])).json() == hold
    page = await (await client.get(f"/students/{sid}/holds")).json()
    assert page == {"items": [hold], "next_cursor": None}
    row = await db.fetchrow(
        "select student_id, reason from student_holds where id = $1", hold["id"]
    )
    assert dict(row) == {"student_id": sid, "reason": "Unpaid fees"}

    removed = await client.delete(response.headers["Location"])

    assert removed.status == 204
    assert (await client.get(response.headers["Location"])).status == 404
    assert await (await client.get(f"/students/{sid}/holds")).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert await db.fetchval("select count(*) from student_holds") == 0


async def test_a_students_holds_are_paged_in_id_order(client):
    student, other = await create_student(client), await create_student(client)
    placed = [await (await place(client, student["id"], f"Reason {n}")).json() for n in range(5)]
    await place(client, other["id"])  # not theirs

    listed = await walk(client, f"/students/{student['id']}/holds", 2)

    assert listed == placed


async def test_a_student_without_holds_gets_an_empty_page(client):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id']}/holds")

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["reason"]),  # required
        ({"reason": ""}, ["reason"]),  # empty
        ({"reason": " \t "}, ["reason"]),  # white space only: empty after trimming
        ({"reason": "x" * 201}, ["reason"]),  # one character too many
        ({"reason": None}, ["reason"]),  # null is not a string
        ({"reason": 5}, ["reason"]),  # nor is a number
        ({"reason": "Unpaid\x00fees"}, ["reason"]),  # NUL, which PostgreSQL cannot store
        ({"reason": "Fees", "until": "2027-01-01"}, ["until"]),  # an unknown field
    ],
)
async def test_an_invalid_hold_is_422_naming_the_field(client, db, body, fields):
    student = await create_student(client)

    response = await client.post(f"/students/{student['id']}/holds", json=body)

    assert response.status == 422
    assert fields_of(await problem(response)) == fields
    assert await db.fetchval("select count(*) from student_holds") == 0


async def test_a_reason_of_200_characters_is_kept_whole(client):
    student = await create_student(client)

    response = await place(client, student["id"], "é" * 200)

    assert response.status == 201
    assert (await response.json())["reason"] == "é" * 200


async def test_holds_of_a_student_that_does_not_exist_are_404(client, db):
    for response in (
        await place(client, 999_999),
        await client.get("/students/999999/holds"),
        await client.get("/students/999999/holds/1"),
        await client.delete("/students/999999/holds/1"),
    ):
        assert response.status == 404
        assert (await problem(response))["type"] == "/problems/not-found"
    assert (
        "student 999999 does not exist" in (await problem(await place(client, 999_999)))["detail"]
    )
    assert await db.fetchval("select count(*) from student_holds") == 0


async def test_another_students_hold_is_404_and_stays(client, db):
    student, other = await create_student(client), await create_student(client)
    hold = await (await place(client, other["id"])).json()
    path = f"/students/{student['id']}/holds/{hold['id']}"

    got, deleted = await client.get(path), await client.delete(path)

    assert got.status == deleted.status == 404
    assert (await problem(deleted))["detail"] == f"student {student['id']} has no hold {hold['id']}"
    assert await db.fetchval("select count(*) from student_holds") == 1


async def test_removing_a_hold_twice_is_404_the_second_time(client):
    student = await create_student(client)
    location = (await place(client, student["id"])).headers["Location"]

    first, second = await client.delete(location), await client.delete(location)

    assert (first.status, second.status) == (204, 404)


@pytest.mark.parametrize("hold_id", ["abc", "0", "-1", "99999999999999999999"])  # not an id
async def test_a_hold_id_that_is_not_an_id_names_nothing(client, hold_id):
    student = await create_student(client)

    response = await client.get(f"/students/{student['id']}/holds/{hold_id}")

    assert response.status == 404


async def test_a_students_holds_go_with_the_student(client, db):
    student = await create_student(client)
    await place(client, student["id"])

    assert (await client.delete(f"/students/{student['id']}")).status == 204

    assert await db.fetchval("select count(*) from student_holds") == 0


# -- completions -------------------------------------------------------------------------


async def complete(client: TestClient, student_id: int, **body: Any):
    return await client.post(f"/students/{student_id}/completions", json=body)


async def test_a_completion_is_recorded_read_listed_and_removed(client, db):
    sid = (await create_student(client))["id"]

    response = await complete(
        client, sid, code=" MATH101\t", completed_at="2026-06-30T14:00:00+02:00"
    )

    assert response.status == 201, await response.text()
    completion = await response.json()
    assert completion.keys() == COMPLETION_FIELDS
    assert completion["code"] == "MATH101"
    assert moment(completion["completed_at"]) == datetime(2026, 6, 30, 12, tzinfo=UTC)
    assert response.headers["Location"] == f"/students/{sid}/completions/{completion['id']}"
    assert await (await client.get(response.headers["Location"])).json() == completion
    page = await (await client.get(f"/students/{sid}/completions")).json()
    assert page == {"items": [completion], "next_cursor": None}
    row = await db.fetchrow(
        "select student_id, code, completed_at from student_completions where id = $1",
        completion["id"],
    )
    assert tuple(row) == (sid, "MATH101", datetime(2026, 6, 30, 12, tzinfo=UTC))

    removed = await client.delete(response.headers["Location"])

    assert removed.status == 204
    assert (await client.get(response.headers["Location"])).status == 404
    assert await db.fetchval("select count(*) from student_completions") == 0


async def test_a_completion_without_a_moment_is_completed_now(client):
    sid = (await create_student(client))["id"]
    before = datetime.now(UTC)

    response = await complete(client, sid, code="CS101")

    assert response.status == 201
    assert before <= moment((await response.json())["completed_at"]) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "again",
    [
        "MATH101",  # the same code
        "math101",  # in other letters' case
        " Math101 ",  # with white space that is trimmed
    ],
)
async def test_a_code_the_student_has_already_is_409(client, db, again):
    sid = (await create_student(client))["id"]
    first = await (await complete(client, sid, code="MATH101")).json()

    response = await complete(client, sid, code=again)

    assert response.status == 409
    body = await problem(response)
    assert body["type"] == "/problems/already-completed"
    detail = f"student {sid} already has a completion of {again.strip()} (in any letter case)"
    assert body["detail"] == detail
    rows = await db.fetch("select id, code from student_completions")
    assert [tuple(r) for r in rows] == [(first["id"], "MATH101")]


async def test_each_student_has_a_code_once_of_their_own(client):
    first, second = await create_student(client), await create_student(client)

    assert (await complete(client, first["id"], code="MATH101")).status == 201
    assert (await complete(client, second["id"], code="math101")).status == 201


async def test_a_removed_code_may_be_recorded_again(client):
    sid = (await create_student(client))["id"]
    location = (await complete(client, sid, code="MATH101")).headers["Location"]
    assert (await client.delete(location)).status == 204

    assert (await complete(client, sid, code="math101")).status == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["code"]),  # required
        ({"code": ""}, ["code"]),  # empty
        ({"code": "MATH 101"}, ["code"]),  # white space inside a code
        ({"code": "C" * 33}, ["code"]),  # one character too many
        ({"code": 101}, ["code"]),  # a number is not a code
        ({"code": "M1", "completed_at": None}, ["completed_at"]),  # null: leave it out instead
        ({"code": "M1", "completed_at": "2026-06-30"}, ["completed_at"]),  # a date, no time
        ({"code": "M1", "completed_at": "2026-06-30T12:00:00"}, ["completed_at"]),  # no offset
        ({"code": "M1", "completed_at": "2026-02-30T12:00:00Z"}, ["completed_at"]),  # no such day
        ({"code": "M1", "completed_at": "2026-06-30T24:00:00Z"}, ["completed_at"]),  # hour 24
        ({"code": "M1", "completed_at": "30/06/2026 12:00"}, ["completed_at"]),  # not RFC 3339
        ({"code": "M1", "completed_at": 1782820800}, ["completed_at"]),  # a Unix time
        ({"code": "M1", "completed_at": "0001-01-01T00:00:00+01:00"}, ["completed_at"]),  # year 0
        ({"code": "M1", "grade": "A"}, ["grade"]),  # an unknown field
        ({"completed_at": None}, ["code", "completed_at"]),  # every error at once
    ],
)
async def test_an_invalid_completion_is_422_naming_the_field(client, db, body, fields):
    sid = (await create_student(client))["id"]

    response = await client.post(f"/students/{sid}/completions", json=body)

    assert response.status == 422
    assert fields_of(await problem(response)) == fields
    assert await db.fetchval("select count(*) from student_completions") == 0


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-06-30T12:00:00Z", datetime(2026, 6, 30, 12, tzinfo=UTC)),  # Z
        ("2026-06-30t12:00:00z", datetime(2026, 6, 30, 12, tzinfo=UTC)),  # lower-case t and z
        ("2026-06-30T12:00:00.5-03:30", datetime(2026, 6, 30, 15, 30, 0, 500000, tzinfo=UTC)),
        # digits past the microsecond are cut
        ("2026-06-30T12:00:00.1234567+00:00", datetime(2026, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
async def test_completed_at_takes_any_rfc_3339_timestamp(client, db, sent, stored):
    sid = (await create_student(client))["id"]

    response = await complete(client, sid, code="M1", completed_at=sent)

    assert response.status == 201, await response.text()
    assert await db.fetchval("select completed_at from student_completions") == stored


async def test_completions_of_a_student_that_does_not_exist_are_404(client, db):
    for response in (
        await complete(client, 999_999, code="M1"),
        await client.get("/students/999999/completions"),
        await client.get("/students/999999/completions/1"),
        await client.delete("/students/999999/completions/1"),
    ):
        assert response.status == 404
    assert await db.fetchval("select count(*) from student_completions") == 0


async def test_another_students_completion_is_404_and_stays(client, db):
    student, other = await create_student(client), await create_student(client)
    theirs = await (await complete(client, other["id"], code="M1")).json()
    path = f"/students/{student['id']}/completions/{theirs['id']}"

    got, deleted = await client.get(path), await client.delete(path)

    assert got.status == deleted.status == 404
    assert await db.fetchval("select count(*) from student_completions") == 1


async def test_a_students_completions_are_paged_in_id_order(client):
    sid = (await create_student(client))["id"]
    made = [await (await complete(client, sid, code=f"C{n}")).json() for n in range(5)]

    assert await walk(client, f"/students/{sid}/completions", 2) == made


async def test_a_completion_with_an_idempotency_key_is_recorded_once(client, db):
    sid = (await create_student(client))["id"]
    headers = {"Idempotency-Key": "completion-1"}
    body = {"code": "MATH101", "completed_at": "2026-06-30T12:00:00Z"}

    first = await client.post(f"/students/{sid}/completions", json=body, headers=headers)
    again = await client.post(f"/students/{sid}/completions", json=body, headers=headers)

    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    assert await db.fetchval("select count(*) from student_completions") == 1


async def test_a_repeated_completion_with_an_idempotency_key_is_a_kept_409(client, db):
    # The unique violation inside the request's transaction rolls back its
    # savepoint only: the 409 is stored and replayed like a success.
    sid = (await create_student(client))["id"]
    await complete(client, sid, code="MATH101")
    headers = {"Idempotency-Key": "completion-2"}

    first = await client.post(
        f"/students/{sid}/completions", json={"code": "math101"}, headers=headers
    )
    again = await client.post(
        f"/students/{sid}/completions", json={"code": "math101"}, headers=headers
    )

    assert (first.status, again.status) == (409, 409)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await db.fetchval("select count(*) from student_completions") == 1


# -- per-term settings -------------------------------------------------------------------


async def put_settings(client: TestClient, sid: int, term_id: int, body: dict[str, Any]):
    return await client.put(f"/students/{sid}/terms/{term_id}", json=body)


async def test_without_a_put_the_settings_are_null_and_the_credits_0(client, db):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)

    response = await client.get(f"/students/{sid}/terms/{term_id}")

    assert response.status == 200
    assert await response.json() == {
        "student_id": sid,
        "term_id": term_id,
        "registration_opens_at": None,
        "max_credits": None,
        "credits": 0,
    }
    assert await db.fetchval("select count(*) from student_terms") == 0  # a read writes nothing


async def test_a_put_sets_both_settings(client, db):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)
    body = {"registration_opens_at": "2027-01-04T08:00:00-05:00", "max_credits": 18}

    response = await put_settings(client, sid, term_id, body)

    assert response.status == 200, await response.text()
    settings = await response.json()
    assert settings.keys() == TERM_FIELDS
    assert moment(settings["registration_opens_at"]) == datetime(2027, 1, 4, 13, tzinfo=UTC)
    assert (settings["max_credits"], settings["credits"]) == (18, 0)
    # Numbers as JSON numbers, a whole one without a fraction.
    assert b'"max_credits":18,' in await response.read()
    assert await (await client.get(f"/students/{sid}/terms/{term_id}")).json() == settings
    row = await db.fetchrow(
        "select registration_opens_at, max_credits::text from student_terms"
        " where student_id = $1 and term_id = $2",
        sid,
        term_id,
    )
    assert tuple(row) == (datetime(2027, 1, 4, 13, tzinfo=UTC), "18.0")


async def test_a_put_replaces_both_settings(client, db):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)
    path = f"/students/{sid}/terms/{term_id}"
    both = {"registration_opens_at": "2027-01-04T08:00:00Z", "max_credits": 18}
    assert (await put_settings(client, sid, term_id, both)).status == 200

    only_limit = await (await put_settings(client, sid, term_id, {"max_credits": 12.5})).json()
    assert (only_limit["registration_opens_at"], only_limit["max_credits"]) == (None, 12.5)
    only_ticket = await put_settings(
        client, sid, term_id, {"registration_opens_at": both["registration_opens_at"]}
    )
    assert (await only_ticket.json())["max_credits"] is None
    cleared = await (await put_settings(client, sid, term_id, {})).json()

    assert (cleared["registration_opens_at"], cleared["max_credits"]) == (None, None)
    assert await (await client.get(path)).json() == cleared
    assert await db.fetchval("select count(*) from student_terms") == 1  # one row, upserted


async def test_settings_are_per_student_and_term(client, db):
    sid, other = (await create_student(client))["id"], (await create_student(client))["id"]
    term_id, other_term = await registration.term(db), await registration.term(db)

    await put_settings(client, sid, term_id, {"max_credits": 9})

    for student, term in ((other, term_id), (sid, other_term)):
        got = await (await client.get(f"/students/{student}/terms/{term}")).json()
        assert got["max_credits"] is None


async def test_the_credits_shown_are_those_kept(client, db):
    # credits is kept by the triggers of student_courses; here set by hand, to
    # see it read and written as a number.
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)
    await put_settings(client, sid, term_id, {"max_credits": 20})
    await db.execute("update student_terms set credits = 7.5")

    response = await client.get(f"/students/{sid}/terms/{term_id}")

    assert (await response.json())["credits"] == 7.5
    # A PUT answers with the credits too, and leaves them as they are.
    assert (await (await put_settings(client, sid, term_id, {})).json())["credits"] == 7.5


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        (0, 0),  # no credits at all
        (99.9, 99.9),  # the largest
        (12.5, 12.5),  # one decimal
        (10.0, 10),  # a whole number written with a fraction
        (7, 7),  # an integer
        (None, None),  # no limit of their own
    ],
)
async def test_max_credits_takes_numbers_of_one_decimal(client, db, sent, shown):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)

    response = await put_settings(client, sid, term_id, {"max_credits": sent})

    assert response.status == 200, await response.text()
    assert (await response.json())["max_credits"] == shown


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"max_credits": True}, ["max_credits"]),  # a boolean is not a number
        ({"max_credits": "12"}, ["max_credits"]),  # nor is a string
        ({"max_credits": 100}, ["max_credits"]),  # above 99.9
        ({"max_credits": 99.95}, ["max_credits"]),  # above, and two decimals
        ({"max_credits": -1}, ["max_credits"]),  # below 0
        ({"max_credits": 12.25}, ["max_credits"]),  # two decimals
        ({"max_credits": 0.1 + 0.2}, ["max_credits"]),  # 0.30000000000000004
        ({"max_credits": 10**30}, ["max_credits"]),  # far out of range
        ({"registration_opens_at": "2027-01-04"}, ["registration_opens_at"]),  # a date
        ({"registration_opens_at": "2027-01-04T08:00:00"}, ["registration_opens_at"]),  # no offset
        ({"registration_opens_at": 0}, ["registration_opens_at"]),  # a number
        ({"credits": 3}, ["credits"]),  # read-only: the service keeps it
        ({"term_id": 1}, ["term_id"]),  # the path names the term
        (
            {"max_credits": "x", "registration_opens_at": "y"},
            ["registration_opens_at", "max_credits"],
        ),
    ],
)
async def test_invalid_settings_are_422_naming_the_field(client, db, body, fields):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)

    response = await put_settings(client, sid, term_id, body)

    assert response.status == 422
    assert fields_of(await problem(response)) == fields
    assert await db.fetchval("select count(*) from student_terms") == 0


async def test_credits_is_refused_as_read_only(client, db):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)

    response = await put_settings(client, sid, term_id, {"credits": 0})

    errors = (await problem(response))["errors"]
    assert errors == [{"field": "credits", "message": "is read-only: the service keeps it"}]


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_settings_of_a_student_or_term_that_does_not_exist_are_404_naming_it(
    client, db, method
):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)
    body = {"max_credits": 12} if method == "PUT" else None

    no_student = await client.request(method, f"/students/999999/terms/{term_id}", json=body)
    no_term = await client.request(method, f"/students/{sid}/terms/999999", json=body)
    neither = await client.request(method, "/students/999999/terms/999998", json=body)

    assert no_student.status == no_term.status == neither.status == 404
    assert (await problem(no_student))["detail"] == "student 999999 does not exist"
    assert (await problem(no_term))["detail"] == "term 999999 does not exist"
    assert (await problem(neither))["detail"] == "student 999999 does not exist"
    assert await db.fetchval("select count(*) from student_terms") == 0


async def test_a_students_settings_go_with_the_term(client, db):
    sid = (await create_student(client))["id"]
    term_id = await registration.term(db)
    await put_settings(client, sid, term_id, {"max_credits": 12})

    await db.execute("delete from terms where id = $1", term_id)

    assert (await client.get(f"/students/{sid}/terms/{term_id}")).status == 404
    assert await db.fetchval("select count(*) from student_terms") == 0


async def test_a_put_answers_with_the_credits_of_the_promotion_it_made(client, db):
    # The promotion happens in a trigger after the write: the answer is read
    # again after it, not taken from the write's RETURNING.
    term_id = await registration.term(db)
    course_id = await registration.course(db, term_id, capacity=1, waitlist=5, credits=4)
    seated, sid = (await create_student(client))["id"], (await create_student(client))["id"]
    assert (
        await client.post(f"/students/{seated}/courses", json={"course_id": course_id})
    ).status == 201
    wait = {"course_id": course_id, "waitlist": True}
    assert (await client.post(f"/students/{sid}/courses", json=wait)).status == 202
    assert (await put_settings(client, sid, term_id, {"max_credits": 3})).status == 200
    assert (await client.delete(f"/students/{seated}/courses/{course_id}")).status == 204
    assert (await client.get(f"/students/{sid}/waitlist/{course_id}")).status == 200  # passed over

    response = await put_settings(client, sid, term_id, {"max_credits": 4})

    assert response.status == 200
    assert (await response.json())["credits"] == 4
    assert (await client.get(f"/students/{sid}/courses/{course_id}")).status == 200


# -- the locks first --------------------------------------------------------------------


async def waiting_for_a_lock(db: asyncpg.Connection, text: str) -> None:
    """Until a statement containing `text` waits for a lock."""
    for _ in range(300):
        waiting = await db.fetchval(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and strpos(query, $1) > 0",
            text,
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing like {text!r} waited for a lock")


@pytest.mark.parametrize("change", ["remove a hold", "add a completion", "put settings"])
async def test_a_change_that_may_promote_takes_the_feed_locks_first_in_a_statement_of_its_own(
    client, db, database_url, change
):
    # A student who waits for a full course of a term: whoever holds that
    # course's feed lock (a drop, a promotion) keeps the change waiting in
    # lock_student_waits(), before it has written or locked a row of its own.
    full = await create_course_in_term(client, db)
    sid = (await create_student(client))["id"]
    wait = {"course_id": full["id"], "waitlist": True}
    assert (await client.post(f"/students/{sid}/courses", json=wait)).status == 202
    hold = (await place(client, sid)).headers["Location"]
    requests = {
        "remove a hold": ("DELETE", hold, None, 204),
        "add a completion": ("POST", f"/students/{sid}/completions", {"code": "M1"}, 201),
        "put settings": (
            "PUT",
            f"/students/{sid}/terms/{full['term_id']}",
            {"max_credits": 9},
            200,
        ),
    }
    method, path, body, status = requests[change]
    holder = await asyncpg.connect(database_url)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute(
            "select pg_advisory_xact_lock(($1::bigint >> 32)::integer,"
            " ($1::bigint & 4294967295)::bit(32)::integer)",
            full["id"],
        )
        sent = asyncio.create_task(client.request(method, path, json=body))
        await waiting_for_a_lock(db, "lock_student_waits")
        # A statement of its own (the change's statement is not in it), and the
        # transaction has no id yet: it has written and row-locked nothing.
        waiting = await db.fetchrow(
            "select query, backend_xid from pg_stat_activity"
            " where wait_event_type = 'Lock' and strpos(query, 'lock_student_waits') > 0"
        )
        assert not {"insert", "update", "delete"} & set(waiting["query"].lower().split())
        assert waiting["backend_xid"] is None
        assert not sent.done()
        await holding.rollback()
        response = await sent
    finally:
        await holder.close()

    assert response.status == status, await response.text()


async def create_course_in_term(client: TestClient, db: asyncpg.Connection) -> dict[str, Any]:
    """A full course (one seat, taken; room to wait) of a new term: its id and term_id."""
    term_id = await registration.term(db)
    course_id = await registration.course(db, term_id, capacity=1, waitlist=5)
    seated = (await create_student(client))["id"]
    enrolled = await client.post(f"/students/{seated}/courses", json={"course_id": course_id})
    assert enrolled.status == 201
    return {"id": course_id, "term_id": term_id}


# -- every route -------------------------------------------------------------------------


async def test_head_answers_like_get_on_every_new_route(client, db):
    sid = (await create_student(client))["id"]
    hold = (await place(client, sid)).headers["Location"]
    completion = (await complete(client, sid, code="M1")).headers["Location"]
    term_id = await registration.term(db)
    paths = [
        f"/students/{sid}/holds",
        hold,
        f"/students/{sid}/completions",
        completion,
        f"/students/{sid}/terms/{term_id}",
    ]

    for path in paths:
        got, head = await client.get(path), await client.head(path)
        assert got.status == head.status == 200, path
        assert await head.read() == b""
        assert int(head.headers["Content-Length"]) == len(await got.read())


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/students/1/holds/1", {"GET", "HEAD", "DELETE"}),  # a hold is not changed
        ("PUT", "/students/1/completions", {"GET", "HEAD", "POST"}),
        ("DELETE", "/students/1/terms/1", {"GET", "HEAD", "PUT"}),  # settings are cleared by PUT
        ("POST", "/students/1/terms/1", {"GET", "HEAD", "PUT"}),
    ],
)
async def test_other_methods_are_405_with_allow(client, method, path, allowed):
    response = await client.request(method, path)

    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == allowed
