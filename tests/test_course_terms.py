"""Courses of terms: term_id, credits, meetings and prerequisites on every course path.

Terms are made in the database here (the rows POST /terms writes): what is
tested is the course's side, a term that exists or does not.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from .api import COURSE_BODY, COURSE_FIELDS, create_course, create_student, enroll, problem

MONDAY_NINE = {"days": ["mon"], "starts": "09:00", "ends": "10:30"}


async def term(db: asyncpg.Connection, code: str = "") -> int:
    """A new term's id."""
    n = await db.fetchval("select count(*) + 1 from terms")
    return await db.fetchval(
        "insert into terms (code, title, starts_on, ends_on)"
        " values ($1, 'A term', '2027-01-10', '2027-05-20') returning id",
        code or f"T{n}",
    )


async def post(client: TestClient, **body: Any):
    return await client.post("/courses", json={"code": "MATH101", "title": "Calculus", **body})


async def invalid_fields(response) -> list[str]:
    assert response.status == 422, await response.text()
    return [e["field"] for e in (await problem(response))["errors"]]


async def course_row(db: asyncpg.Connection, course_id: int) -> dict[str, Any]:
    row = await db.fetchrow(
        "select term_id, credits::text, meetings::text, prerequisites from courses where id = $1",
        course_id,
    )
    return dict(row)


async def updated_fields(db: asyncpg.Connection, course_id: int) -> list[list[str]]:
    """The fields of each course.updated event of the course, in order."""
    rows = await db.fetch(
        "select data -> 'fields' as fields from events"
        " where type = 'course.updated' and course_id = $1 order by id",
        course_id,
    )
    return [json.loads(r["fields"]) for r in rows]


# -- the representation -------------------------------------------------------------


async def test_a_course_is_created_with_its_term_credits_meetings_and_prerequisites(client, db):
    spring = await term(db)

    response = await post(
        client,
        term_id=spring,
        credits=4.5,
        meetings=[
            {"days": ["thu", "tue"], "starts": "9:00", "ends": "10:15"},
            {"starts": "14:00", "ends": "15:00", "days": ["fri"]},
        ],
        prerequisites=["MATH100", "phys-1"],
    )

    assert response.status == 201, await response.text()
    body = await response.json()
    assert list(body) == COURSE_BODY
    assert body["term_id"] == spring
    assert body["credits"] == 4.5
    # Stored normalized: days in week order, times zero-padded.
    assert body["meetings"] == [
        {"days": ["tue", "thu"], "starts": "09:00", "ends": "10:15"},
        {"days": ["fri"], "starts": "14:00", "ends": "15:00"},
    ]
    assert body["prerequisites"] == ["MATH100", "phys-1"]
    assert await course_row(db, body["id"]) == {
        "term_id": spring,
        "credits": "4.5",
        "meetings": '[{"days": ["tue", "thu"], "ends": "10:15", "starts": "09:00"},'
        ' {"days": ["fri"], "ends": "15:00", "starts": "14:00"}]',
        "prerequisites": ["MATH100", "phys-1"],
    }
    # GET answers the same.
    assert await (await client.get(f"/courses/{body['id']}")).json() == body


async def test_without_them_a_course_has_no_term_no_credits_no_meetings_no_prerequisites(
    client,
):
    course = await create_course(client)

    assert {k: course[k] for k in ("term_id", "credits", "meetings", "prerequisites")} == {
        "term_id": None,
        "credits": 0,
        "meetings": [],
        "prerequisites": [],
    }


@pytest.mark.parametrize(
    ("sent", "shown", "raw"),
    [
        (3, 3, "3"),  # an integer stays one
        (3.0, 3, "3"),  # a whole number is written without its .0
        (0.1, 0.1, "0.1"),  # not 0.1000000000000000055...
        (99.9, 99.9, "99.9"),  # the largest
        (0, 0, "0"),
    ],
)
async def test_credits_are_a_json_number_with_at_most_one_decimal(client, db, sent, shown, raw):
    response = await post(client, credits=sent)

    assert response.status == 201, await response.text()
    assert f'"credits":{raw},' in await response.text()
    assert (await response.json())["credits"] == shown


# -- validation ------------------------------------------------------------------------

INVALID = [
    # credits
    pytest.param({"credits": "3"}, ["credits"], id="credits-string"),
    pytest.param({"credits": True}, ["credits"], id="credits-boolean"),
    pytest.param({"credits": None}, ["credits"], id="credits-null"),
    pytest.param({"credits": -0.1}, ["credits"], id="credits-negative"),
    pytest.param({"credits": 100}, ["credits"], id="credits-100"),
    pytest.param({"credits": 4.55}, ["credits"], id="credits-two-decimals"),
    pytest.param({"credits": 99.95}, ["credits"], id="credits-above-99.9"),
    pytest.param({"credits": 10**30}, ["credits"], id="credits-past-64-bits"),
    # term_id
    pytest.param({"term_id": "1"}, ["term_id"], id="term-string"),
    pytest.param({"term_id": 0}, ["term_id"], id="term-zero"),
    pytest.param({"term_id": 1.0}, ["term_id"], id="term-float"),
    # meetings
    pytest.param({"meetings": None}, ["meetings"], id="meetings-null"),
    pytest.param({"meetings": {"days": ["mon"]}}, ["meetings"], id="meetings-not-a-list"),
    pytest.param({"meetings": [MONDAY_NINE] * 11}, ["meetings"], id="meetings-11"),
    pytest.param({"meetings": ["mon 9-10"]}, ["meetings[0]"], id="meeting-not-an-object"),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "room": "B12"}]},
        ["meetings[0].room"],
        id="meeting-unknown-key",
    ),
    pytest.param(
        {"meetings": [MONDAY_NINE, {"days": ["tue"], "starts": "09:00"}]},
        ["meetings[1].ends"],
        id="meeting-without-ends",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "days": []}]}, ["meetings[0].days"], id="days-empty"
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "days": ["mon", "mon"]}]},
        ["meetings[0].days"],
        id="days-repeated",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "days": ["Mon"]}]},
        ["meetings[0].days"],
        id="days-capitalized",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "days": "mon"}]}, ["meetings[0].days"], id="days-string"
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": "24:00", "ends": "24:30"}]},
        ["meetings[0].starts", "meetings[0].ends"],
        id="times-past-23:59",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": "9:5"}]},
        ["meetings[0].starts"],
        id="minutes-of-one-digit",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": "09:00:00"}]},
        ["meetings[0].starts"],
        id="seconds",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": 900}]}, ["meetings[0].starts"], id="time-number"
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": "10:30"}]},
        ["meetings[0].ends"],
        id="starts-equal-to-ends",
    ),
    pytest.param(
        {"meetings": [{**MONDAY_NINE, "starts": "22:00", "ends": "01:00"}]},
        ["meetings[0].ends"],
        id="over-midnight",
    ),
    pytest.param(
        {"meetings": [{"days": ["sun", "sun"], "starts": "x", "ends": "y", "at": 1}]},
        ["meetings[0].at", "meetings[0].days", "meetings[0].starts", "meetings[0].ends"],
        id="every-bad-part-named",
    ),
    # prerequisites
    pytest.param({"prerequisites": "MATH100"}, ["prerequisites"], id="prerequisites-string"),
    pytest.param({"prerequisites": None}, ["prerequisites"], id="prerequisites-null"),
    pytest.param(
        {"prerequisites": [f"C{i}" for i in range(21)]}, ["prerequisites"], id="prerequisites-21"
    ),
    pytest.param(
        {"prerequisites": ["OK", "X" * 33, "A B", 7]},
        ["prerequisites[1]", "prerequisites[2]", "prerequisites[3]"],
        id="bad-codes-named",
    ),
]


@pytest.mark.parametrize(("fields", "named"), INVALID)
async def test_invalid_fields_are_422_naming_them_on_create_and_update(client, db, fields, named):
    course = await create_course(client)

    assert await invalid_fields(await post(client, **fields)) == named
    assert (
        await invalid_fields(await client.patch(f"/courses/{course['id']}", json=fields)) == named
    )
    assert await db.fetchval("select count(*) from courses") == 1
    assert await (await client.get(f"/courses/{course['id']}")).json() == course


async def test_the_limits_themselves_are_accepted(client):
    meetings = [
        {
            "days": ["sun", "sat", "fri", "thu", "wed", "tue", "mon"],
            "starts": "00:00",
            "ends": "23:59",
        }
    ] * 10
    prerequisites = ["X" * 32] + [f"C{i}" for i in range(19)]

    response = await post(client, credits=99.9, meetings=meetings, prerequisites=prerequisites)

    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["meetings"][0]["days"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert len(body["meetings"]) == 10 and body["prerequisites"] == prerequisites


async def test_an_unknown_term_is_422_naming_term_id(client, db):
    course = await create_course(client)
    missing = await term(db) + 1

    response = await post(client, term_id=missing)
    assert await invalid_fields(response) == ["term_id"]
    assert f"term {missing}" in (await problem(response))["errors"][0]["message"]

    response = await client.patch(f"/courses/{course['id']}", json={"term_id": missing})
    assert await invalid_fields(response) == ["term_id"]
    assert await db.fetchval("select count(*) from courses") == 1
    assert await db.fetchval("select term_id from courses") is None


# -- PATCH ------------------------------------------------------------------------------


async def test_patch_changes_each_field_and_records_which(client, db):
    spring, fall = await term(db), await term(db)
    course = await create_course(client, term_id=spring)
    path = f"/courses/{course['id']}"
    etag = (await client.get(path)).headers["ETag"]

    changes = [
        ({"credits": 3}, {"credits": 3}),
        ({"meetings": [{"days": ["wed", "mon"], "starts": "8:00", "ends": "09:00"}]}, None),
        ({"prerequisites": ["CS-1"]}, {"prerequisites": ["CS-1"]}),
        ({"term_id": fall}, {"term_id": fall}),
        ({"term_id": None}, {"term_id": None}),
        ({"credits": 3.0, "title": "Same credits"}, {"credits": 3, "title": "Same credits"}),
    ]
    for sent, shown in changes:
        response = await client.patch(path, json=sent)
        assert response.status == 200, await response.text()
        body = await response.json()
        for key, value in (shown or {}).items():
            assert body[key] == value
        assert response.headers["ETag"] != etag
        etag = response.headers["ETag"]
        assert await (await client.get(path)).json() == body

    assert body["meetings"] == [{"days": ["mon", "wed"], "starts": "08:00", "ends": "09:00"}]
    # Only what changed: credits stayed 3 in the last one.
    assert await updated_fields(db, course["id"]) == [
        ["credits"],
        ["meetings"],
        ["prerequisites"],
        ["term_id"],
        ["term_id"],
        ["title"],
    ]


async def test_the_same_meetings_in_another_spelling_change_nothing(client, db):
    course = await create_course(
        client, meetings=[{"days": ["mon", "wed"], "starts": "09:00", "ends": "10:00"}]
    )

    response = await client.patch(
        f"/courses/{course['id']}",
        json={"meetings": [{"ends": "10:00", "starts": "9:00", "days": ["wed", "mon"]}]},
    )

    assert response.status == 200, await response.text()
    assert await updated_fields(db, course["id"]) == []


async def test_a_course_with_students_keeps_its_term(client, db):
    spring, fall = await term(db), await term(db)
    course = await create_course(client, term_id=spring, capacity=1, waitlist_capacity=1)
    empty = await create_course(client, term_id=spring)
    path = f"/courses/{course['id']}"
    assert (await enroll(client, (await create_student(client))["id"], course["id"])).status == 201

    for term_id in (fall, None):
        response = await client.patch(path, json={"term_id": term_id})
        assert response.status == 409, await response.text()
        assert (await problem(response))["type"] == "/problems/course-not-empty"
    # Its other fields may change; a course without students may move.
    assert (await client.patch(path, json={"term_id": spring, "credits": 2})).status == 200
    assert (await client.patch(f"/courses/{empty['id']}", json={"term_id": fall})).status == 200
    assert await db.fetchval("select term_id from courses where id = $1", course["id"]) == spring


# -- a code per term ---------------------------------------------------------------------


async def test_a_code_is_unique_per_term_in_any_letter_case(client, db):
    spring, fall = await term(db), await term(db)

    assert (await post(client, code="MATH101", term_id=spring)).status == 201
    assert (await post(client, code="math101", term_id=fall)).status == 201
    assert (await post(client, code="Math101")).status == 201  # no term: a group of its own

    for term_id in (spring, fall, None):
        response = await post(client, code="mAtH101", term_id=term_id)
        assert response.status == 409, await response.text()
        assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select count(*) from courses") == 3


async def test_moving_a_course_to_a_term_where_its_code_is_taken_is_409(client, db):
    spring = await term(db)
    taken = await create_course(client, code="CS-1", term_id=spring)
    loose = await create_course(client, code="cs-1")

    response = await client.patch(f"/courses/{loose['id']}", json={"term_id": spring})
    assert response.status == 409, await response.text()
    assert (await problem(response))["type"] == "/problems/code-taken"
    # And the one in the term may not leave it for the group that has its code.
    response = await client.patch(f"/courses/{taken['id']}", json={"term_id": None})
    assert response.status == 409, await response.text()


# -- lookups -----------------------------------------------------------------------------


async def ids(client: TestClient, **params: Any) -> list[int]:
    response = await client.get("/courses", params=params)
    assert response.status == 200, await response.text()
    return [c["id"] for c in (await response.json())["items"]]


async def test_code_finds_the_course_of_every_term_and_term_id_narrows(client, db):
    spring, fall = await term(db), await term(db)
    a = await create_course(client, code="MATH101", term_id=spring)
    b = await create_course(client, code="math101", term_id=fall)
    c = await create_course(client, code="Math101")
    other = await create_course(client, code="MATH102", term_id=spring)

    assert await ids(client, code="MATH101") == [a["id"], b["id"], c["id"]]
    assert await ids(client, code="MATH101", term_id=fall) == [b["id"]]
    assert await ids(client, code="MATH101", term_id=fall + 1) == []
    assert await ids(client, term_id=spring) == [a["id"], other["id"]]
    assert await ids(client, q="math", term_id=spring) == [a["id"], other["id"]]
    assert await ids(client, q="h101", term_id=spring) == [a["id"]]
    assert await ids(client, code="math101", q="math", term_id=spring) == [a["id"]]


async def test_term_id_pages_walk_every_course_of_the_term_once(client, db):
    spring, fall = await term(db), await term(db)
    expected = []
    for _ in range(7):
        expected.append((await create_course(client, term_id=spring))["id"])
        await create_course(client, term_id=fall)
        await create_course(client)

    for filters in ({"term_id": spring}, {"term_id": spring, "q": "course"}):
        seen, params = [], {**filters, "limit": 3}
        while True:
            response = await client.get("/courses", params=params)
            assert response.status == 200, await response.text()
            page = await response.json()
            seen += [c["id"] for c in page["items"]]
            if page["next_cursor"] is None:
                break
            assert f"term_id={spring}" in response.headers["Link"]
            params = {**filters, "limit": 3, "cursor": page["next_cursor"]}
        assert seen == expected, filters

    # A cursor is bound to the term it was issued for.
    cursor = (await (await client.get("/courses", params={"term_id": spring, "limit": 1})).json())[
        "next_cursor"
    ]
    for params in ({"term_id": fall}, {}):
        response = await client.get("/courses", params={**params, "cursor": cursor})
        assert await invalid_fields(response) == ["cursor"]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.0", "9223372036854775808", ""])
async def test_a_term_id_filter_that_is_not_an_id_is_422(client, value):
    response = await client.get("/courses", params={"term_id": value})
    assert await invalid_fields(response) == ["term_id"]


# -- batches -----------------------------------------------------------------------------


async def batch(client: TestClient, items: list[dict]) -> list[dict]:
    response = await client.post("/courses/batch", json={"items": items})
    assert response.status == 200, await response.text()
    return (await response.json())["results"]


async def test_a_batch_creates_or_updates_the_course_with_that_code_in_that_term(client, db):
    spring, fall = await term(db), await term(db)
    missing = fall + 1
    meetings = [{"days": ["fri", "mon"], "starts": "9:00", "ends": "10:00"}]

    results = await batch(
        client,
        [
            {"code": "MATH101", "title": "Spring", "term_id": spring, "credits": 4},
            {"code": "math101", "title": "Fall", "term_id": fall, "meetings": meetings},
            {"code": "Math101", "title": "No term", "prerequisites": ["M0"]},
            # the spring one, in another letter case: its fields given are changed,
            # the others kept
            {"code": "MATH101", "title": "Spring", "term_id": spring, "credits": 4.5},
            {"code": "MATH101", "title": "Spring", "term_id": spring},
            {"code": "MATH101", "title": "Unknown", "term_id": missing},
            {"code": "MATH101", "title": "No term", "term_id": None, "prerequisites": ["M0"]},
            {"code": "MATH101", "title": "Bad", "term_id": spring, "meetings": [{}]},
        ],
    )

    outcomes = [(r["status"], r["outcome"]) for r in results]
    assert outcomes == [
        (201, "created"),
        (201, "created"),
        (201, "created"),
        (200, "updated"),
        (200, "unchanged"),
        (422, "unknown-term"),
        (200, "unchanged"),
        (422, "invalid"),
    ]
    spring_course, fall_course, loose = (r["body"] for r in results[:3])
    assert (spring_course["term_id"], fall_course["term_id"], loose["term_id"]) == (
        spring,
        fall,
        None,
    )
    assert fall_course["meetings"] == [{"days": ["mon", "fri"], "starts": "09:00", "ends": "10:00"}]
    assert loose["prerequisites"] == ["M0"] and loose["credits"] == 0
    assert results[3]["body"] == {**spring_course, "credits": 4.5}
    assert results[4]["body"] == results[3]["body"]
    assert list(results[3]["body"]) == COURSE_BODY
    # The unknown term's answer is the single request's.
    single = await post(client, title="Unknown", term_id=missing)
    assert results[5]["body"] == await problem(single)
    assert [e["field"] for e in results[7]["body"]["errors"]] == [
        "meetings[0].days",
        "meetings[0].starts",
        "meetings[0].ends",
    ]
    assert await db.fetchval("select count(*) from courses") == 3
    assert await updated_fields(db, spring_course["id"]) == [["credits"]]


async def test_a_batch_update_answers_what_patch_does(client, db):
    spring = await term(db)
    course = await create_course(
        client, code="BIO-2", term_id=spring, capacity=5, meetings=[MONDAY_NINE]
    )
    change = {"title": "Biology", "credits": 2.5, "prerequisites": ["BIO-1"], "capacity": 6}

    [result] = await batch(client, [{"code": "bio-2", "term_id": spring, **change}])
    patched = await (await client.get(f"/courses/{course['id']}")).json()

    assert result["status"] == 200 and result["outcome"] == "updated"
    assert result["body"] == patched
    assert patched["meetings"] == course["meetings"] and patched["credits"] == 2.5
    assert await updated_fields(db, course["id"]) == [
        ["title", "capacity", "credits", "prerequisites"]
    ]


# -- the previous release's calls -----------------------------------------------------------


async def test_the_previous_signatures_still_answer_among_courses_without_a_term(client, db):
    # During a rolling deploy, instances of the release before terms call these
    # (docs/development.md, "Functions and triggers").
    spring = await term(db)
    in_term = await create_course(client, code="CS-1", term_id=spring, title="Course in term")

    rows = await db.fetch(
        "select item, outcome, id, code, title, capacity, waitlist_capacity, enrolled,"
        " waitlisted, created_at"
        " from batch_courses($1::text[], $2::text[], $3::boolean[], $4::integer[],"
        " $5::integer[], $6) order by item",
        ["cs-1", "CS-1"],
        ["Loose", "Loose again"],
        [False, True],
        [None, 9],
        [None, None],
        "old-release",
    )
    found = await db.fetch(
        "select id, code, title, capacity, waitlist_capacity, enrolled, waitlisted, created_at"
        " from search_course_page(0, 'cs-1', 51, 200, '{}', 100000)"
    )

    assert [(r["item"], r["outcome"]) for r in rows] == [(1, "created"), (2, "updated")]
    loose = await (await client.get(f"/courses/{rows[0]['id']}")).json()
    assert (loose["term_id"], loose["title"], loose["capacity"]) == (None, "Loose again", 9)
    assert rows[0]["id"] != in_term["id"]
    assert await (await client.get(f"/courses/{in_term['id']}")).json() == in_term
    assert [r["id"] for r in found] == [in_term["id"], loose["id"]]


# -- locks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "waits"),
    [
        ({"credits": 2}, True),  # may promote: lock_course_rules()
        ({"meetings": [MONDAY_NINE]}, True),
        ({"prerequisites": ["X-1"]}, True),
        ({"title": "Renamed"}, False),  # the course's own feed lock only
    ],
)
@pytest.mark.parametrize("how", ["patch", "batch"])
async def test_a_change_of_the_rules_first_takes_the_feed_locks_of_the_queues_it_may_move(
    client, db, database_url, change, waits, how
):
    # A student enrolled in `course` waits for `other`, of the same term: a change
    # of the course's rules may promote them there, so the change must hold
    # `other`'s feed lock (lock_courses(), sql/functions/events.sql) before it
    # has a transaction id, or the promotion's events could come first in the feed.
    spring = await term(db)
    course = await create_course(client, code="A-1", term_id=spring)
    other = await create_course(client, term_id=spring, capacity=1, waitlist_capacity=1)
    student, seated = await create_student(client), await create_student(client)
    assert (await enroll(client, student["id"], course["id"])).status == 201
    assert (await enroll(client, seated["id"], other["id"])).status == 201
    response = await client.post(
        f"/students/{student['id']}/courses", json={"course_id": other["id"], "waitlist": True}
    )
    assert response.status == 202, await response.text()

    holder = await asyncpg.connect(database_url)
    try:
        # The two-key form lock_courses() takes, held by another session.
        await holder.execute("select pg_advisory_lock(0, $1::integer)", other["id"])
        if how == "patch":
            request = client.patch(f"/courses/{course['id']}", json=change)
        else:
            item = {"code": "A-1", "title": "Course", "term_id": spring, **change}
            request = client.post("/courses/batch", json={"items": [item]})
        sent = asyncio.ensure_future(request)
        done, _ = await asyncio.wait([sent], timeout=1.0)
        assert bool(done) is not waits
        await holder.execute("select pg_advisory_unlock(0, $1::integer)", other["id"])
        response = await sent
    finally:
        await holder.close()
    assert response.status == 200, await response.text()


# -- enrollments and waitlist entries -------------------------------------------------------


async def test_enrollments_and_waitlist_entries_carry_the_courses_fields(client, db):
    spring = await term(db)
    course = await create_course(
        client,
        term_id=spring,
        capacity=1,
        waitlist_capacity=1,
        credits=3.5,
        meetings=[MONDAY_NINE],
        prerequisites=[],
    )
    first, second = await create_student(client), await create_student(client)
    fields = {k: course[k] for k in ("term_id", "credits", "meetings", "prerequisites")}

    enrolled = await (await enroll(client, first["id"], course["id"])).json()
    response = await client.post(
        f"/students/{second['id']}/courses", json={"course_id": course["id"], "waitlist": True}
    )
    waiting = await response.json()
    reads = [
        enrolled,
        await (await client.get(f"/students/{first['id']}/courses/{course['id']}")).json(),
        (await (await client.get(f"/students/{first['id']}/courses")).json())["items"][0],
        waiting,
        await (await client.get(f"/students/{second['id']}/waitlist/{course['id']}")).json(),
        (await (await client.get(f"/students/{second['id']}/waitlist")).json())["items"][0],
    ]

    assert fields == {
        "term_id": spring,
        "credits": 3.5,
        "meetings": [MONDAY_NINE],
        "prerequisites": [],
    }
    for body in reads:
        assert {k: body[k] for k in fields} == fields
        assert list(body)[: len(COURSE_FIELDS)] == COURSE_FIELDS
