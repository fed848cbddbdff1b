"""/terms: create, read, list, update, delete and batch, checked against the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from . import registration
from .api import TERM_FIELDS, create_course, create_student, create_term, enroll, problem, walk

SPRING = {
    "code": "2027-SPRING",
    "title": "  Spring 2027 ",
    "starts_on": "2027-01-11",
    "ends_on": "2027-05-07",
    "registration_opens_at": "2026-11-02T09:00:00+01:00",
    "registration_closes_at": "2027-01-22T17:00:00Z",
    "drop_deadline": "2027-03-19T23:59:59.5-05:00",
    "max_credits": 18.5,
}
ROW = (
    "select code, title, starts_on, ends_on, registration_opens_at, registration_closes_at,"
    " drop_deadline, max_credits from terms where id = $1"
)


def instant(value: str) -> datetime:
    """An RFC 3339 timestamp the service wrote: in UTC, with its offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None and not parsed.utcoffset(), value
    return parsed


# POST /terms


async def test_create_answers_201_with_the_term_and_its_location(client, db):
    response = await client.post("/terms", json=SPRING)

    assert response.status == 201, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert list(body) == TERM_FIELDS
    assert response.headers["Location"] == f"/terms/{body['id']}"
    assert body["code"] == "2027-SPRING"
    assert body["title"] == "Spring 2027"
    assert (body["starts_on"], body["ends_on"]) == ("2027-01-11", "2027-05-07")
    # The instants sent, answered in UTC.
    assert instant(body["registration_opens_at"]) == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert instant(body["registration_closes_at"]) == datetime(2027, 1, 22, 17, tzinfo=UTC)
    assert instant(body["drop_deadline"]) == datetime(2027, 3, 20, 4, 59, 59, 500000, tzinfo=UTC)
    assert body["max_credits"] == 18.5
    assert instant(body["created_at"])

    row = await db.fetchrow(ROW, body["id"])
    assert row["title"] == "Spring 2027"
    assert (row["starts_on"], row["ends_on"]) == (date(2027, 1, 11), date(2027, 5, 7))
    assert row["registration_opens_at"] == instant(body["registration_opens_at"])
    assert row["drop_deadline"] == instant(body["drop_deadline"])
    assert row["max_credits"] == Decimal("18.5")


async def test_only_code_title_and_dates_are_required_the_rest_default_to_null(client):
    body = await create_term(client)

    assert body["registration_opens_at"] is None
    assert body["registration_closes_at"] is None
    assert body["drop_deadline"] is None
    assert body["max_credits"] is None


@pytest.mark.parametrize(
    ("sent", "answered"),
    [
        (18, 18),  # a JSON integer
        (18.0, 18),  # the same number written as a float
        (12.5, 12.5),  # one decimal
        (0, 0),  # the lowest limit
        (99.9, 99.9),  # the highest
    ],
)
async def test_max_credits_is_answered_as_the_json_number_sent(client, sent, answered):
    body = await create_term(client, max_credits=sent)

    assert body["max_credits"] == answered
    assert isinstance(body["max_credits"], int | float)


async def test_a_term_of_one_day_is_accepted(client):
    body = await create_term(client, starts_on="2027-06-01", ends_on="2027-06-01")

    assert body["starts_on"] == body["ends_on"] == "2027-06-01"


# Each bad value, and the field its 422 names.
INVALID = [
    ({"code": ""}, "code"),  # empty
    ({"code": "C" * 33}, "code"),  # 33 characters
    ({"code": "2027 SPRING"}, "code"),  # white space inside
    ({"code": 2027}, "code"),  # not a string
    ({"title": "   "}, "title"),  # empty after trimming
    ({"title": "T" * 201}, "title"),  # 201 characters
    ({"starts_on": "2027-02-30"}, "starts_on"),  # no such day
    ({"starts_on": "2027-1-11"}, "starts_on"),  # not YYYY-MM-DD
    ({"starts_on": "20270111"}, "starts_on"),  # ISO 8601's basic form, not RFC 3339's
    ({"starts_on": "2027-01-11T00:00:00Z"}, "starts_on"),  # a timestamp, not a date
    ({"starts_on": None}, "starts_on"),  # required, not nullable
    ({"ends_on": "0000-12-31"}, "ends_on"),  # year 0
    ({"ends_on": "2027-01-10"}, "ends_on"),  # before starts_on
    ({"registration_opens_at": "2026-11-02T09:00:00"}, "registration_opens_at"),  # no offset
    ({"registration_opens_at": "2026-11-02"}, "registration_opens_at"),  # a date
    ({"registration_opens_at": "2026-11-02 09:00:00Z"}, "registration_opens_at"),  # no T
    ({"registration_opens_at": "2026-11-02T09:00:00+24:00"}, "registration_opens_at"),  # offset
    ({"registration_opens_at": "0001-01-01T00:00:00+01:00"}, "registration_opens_at"),  # year 0 UTC
    ({"registration_opens_at": 1793523600}, "registration_opens_at"),  # epoch seconds
    ({"registration_closes_at": "2026-11-02T08:00:00Z"}, "registration_closes_at"),  # = opens
    ({"registration_closes_at": "2026-11-01T12:00:00Z"}, "registration_closes_at"),  # < opens
    ({"drop_deadline": "next friday"}, "drop_deadline"),
    ({"drop_deadline": "2027-03-19T23:59:60Z"}, "drop_deadline"),  # a leap second
    ({"max_credits": 12.25}, "max_credits"),  # two decimals
    ({"max_credits": 0.30000000000000004}, "max_credits"),  # not exactly one decimal
    ({"max_credits": 100}, "max_credits"),  # above 99.9
    ({"max_credits": -0.5}, "max_credits"),  # negative
    ({"max_credits": "18"}, "max_credits"),  # a string
    ({"max_credits": True}, "max_credits"),  # a boolean
    ({"max_credits": 10**30}, "max_credits"),  # beyond 64 bits
    ({"credits": 18}, "credits"),  # unknown field
    ({"id": 7}, "id"),  # the server's
]


@pytest.mark.parametrize(("change", "field"), INVALID)
async def test_an_invalid_field_is_422_naming_it_and_nothing_is_stored(client, db, change, field):
    response = await client.post("/terms", json={**SPRING, **change})

    assert response.status == 422, await response.text()
    found = await problem(response)
    assert [e["field"] for e in found["errors"]] == [field]
    assert await db.fetchval("select count(*) from terms") == 0


@pytest.mark.parametrize("missing", ["code", "title", "starts_on", "ends_on"])
async def test_each_required_field_missing_is_422_naming_it(client, missing):
    body = {k: v for k, v in SPRING.items() if k != missing}

    response = await client.post("/terms", json=body)

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == [missing]


async def test_one_422_names_every_bad_field_an_order_among_them(client):
    body = {**SPRING, "title": "", "ends_on": "2027-01-01", "max_credits": 12.25}

    response = await client.post("/terms", json=body)

    assert response.status == 422
    errors = {e["field"]: e["message"] for e in (await problem(response))["errors"]}
    assert errors.keys() == {"title", "ends_on", "max_credits"}
    assert errors["ends_on"] == "must be on or after starts_on"


@pytest.mark.parametrize(
    "change",
    [
        {"registration_opens_at": None},  # a closing without an opening
        {"registration_closes_at": None},  # an opening without a closing
        {"drop_deadline": "2026-01-01T00:00:00Z"},  # the deadline is ordered against nothing
        {"registration_opens_at": "2026-11-02t09:00:00z"},  # t and z, as RFC 3339 allows
        {"drop_deadline": "2027-03-19T23:59:59.1234567Z"},  # beyond microseconds, cut
    ],
)
async def test_values_the_rules_leave_free_are_accepted(client, change):
    response = await client.post("/terms", json={**SPRING, **change})

    assert response.status == 201, await response.text()


async def test_a_code_taken_in_any_letter_case_is_409(client, db):
    await create_term(client, code="Été-2027")

    response = await client.post("/terms", json={**SPRING, "code": "ÉTÉ-2027"})

    assert response.status == 409
    found = await problem(response)
    assert found["type"] == "/problems/code-taken"
    assert "ÉTÉ-2027" in found["detail"]
    assert await db.fetchval("select count(*) from terms") == 1


# GET /terms/{term_id}, GET /terms


async def test_get_answers_the_term_as_created_with_an_etag(client):
    created = await (await client.post("/terms", json=SPRING)).json()

    response = await client.get(f"/terms/{created['id']}")

    assert response.status == 200
    assert await response.json() == created
    assert response.headers["ETag"].startswith('"')


@pytest.mark.parametrize("raw", ["999999", "abc", "0", "9223372036854775808"])
async def test_get_of_no_term_is_404(client, raw):
    response = await client.get(f"/terms/{raw}")

    assert response.status == 404
    assert (await problem(response))["detail"] == f"term {raw} does not exist"


async def test_head_answers_like_get_without_a_body(client):
    term = await create_term(client)
    for path in (f"/terms/{term['id']}", "/terms"):
        got, head = await client.get(path), await client.head(path)

        assert head.status == got.status == 200
        assert await head.read() == b""
        assert head.headers["Content-Length"] == str(len(await got.read()))
        assert head.headers.get("ETag") == got.headers.get("ETag")


async def test_the_list_walks_every_term_once_in_id_order(client):
    made = [await create_term(client) for _ in range(5)]

    assert await walk(client, "/terms", limit=2) == made


async def test_code_finds_the_term_in_any_letter_case(client):
    await create_term(client)
    wanted = await create_term(client, code="Été-2027")

    response = await client.get("/terms", params={"code": "ÉTÉ-2027"})

    assert response.status == 200
    assert await response.json() == {"items": [wanted], "next_cursor": None}
    nothing = await client.get("/terms", params={"code": "Été-2028"})
    assert (await nothing.json())["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"code": "a b"}, "code"),  # not a code
        ({"limit": "0"}, "limit"),
        ({"cursor": "nonsense"}, "cursor"),
        ({"q": "spring"}, "q"),  # no search on terms
    ],
)
async def test_a_bad_query_is_422_naming_it(client, query, field):
    response = await client.get("/terms", params=query)

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == [field]


async def test_a_cursor_of_the_course_list_is_refused(client):
    for _ in range(2):
        await create_course(client)
    cursor = (await (await client.get("/courses", params={"limit": 1})).json())["next_cursor"]

    response = await client.get("/terms", params={"cursor": cursor})

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == ["cursor"]


# PATCH /terms/{term_id}


async def test_patch_changes_the_given_fields_and_keeps_the_others(client, db):
    term = await (await client.post("/terms", json=SPRING)).json()
    change = {
        "title": "Spring term 2027",
        "ends_on": "2027-05-14",
        "registration_closes_at": None,
        "max_credits": 21,
    }

    response = await client.patch(f"/terms/{term['id']}", json=change)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {**term, **change}
    assert response.headers["ETag"] == (await client.get(f"/terms/{term['id']}")).headers["ETag"]
    row = await db.fetchrow(ROW, term["id"])
    assert row["registration_closes_at"] is None
    assert row["max_credits"] == Decimal("21.0")
    assert row["registration_opens_at"] == instant(term["registration_opens_at"])


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        # The body alone is in order; with the stored dates it is not.
        ({"starts_on": "2027-06-01"}, "starts_on", "must be on or before ends_on"),
        ({"ends_on": "2027-01-10"}, "ends_on", "must be on or after starts_on"),
        (
            {"registration_opens_at": "2027-01-22T17:00:00Z"},
            "registration_opens_at",
            "must be before registration_closes_at",
        ),
        (
            {"registration_closes_at": "2026-11-02T08:00:00Z"},
            "registration_closes_at",
            "must be after registration_opens_at",
        ),
    ],
)
async def test_patch_that_puts_the_stored_term_out_of_order_is_422_naming_the_field(
    client, db, change, field, message
):
    term = await (await client.post("/terms", json=SPRING)).json()
    before = await db.fetchrow(ROW, term["id"])

    response = await client.patch(f"/terms/{term['id']}", json=change)

    assert response.status == 422
    found = await problem(response)
    assert found["errors"] == [{"field": field, "message": message}]
    assert await db.fetchrow(ROW, term["id"]) == before


async def test_patch_moving_both_dates_together_is_checked_on_the_result(client):
    term = await create_term(client, starts_on="2027-01-11", ends_on="2027-05-07")

    response = await client.patch(
        f"/terms/{term['id']}", json={"starts_on": "2027-08-30", "ends_on": "2027-12-17"}
    )

    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "body",
    [
        {},  # nothing to change
        {"code": None},  # code is not nullable
        {"starts_on": None},  # nor are the dates
        {"max_credits": 12.25},
        {"created_at": "2027-01-01T00:00:00Z"},  # the server's
    ],
)
async def test_patch_with_a_bad_body_is_422(client, body):
    term = await create_term(client)

    response = await client.patch(f"/terms/{term['id']}", json=body)

    assert response.status == 422


async def test_patch_to_a_code_taken_in_any_letter_case_is_409(client, db):
    await create_term(client, code="2027-FALL")
    term = await create_term(client)

    response = await client.patch(f"/terms/{term['id']}", json={"code": "2027-fall"})

    assert response.status == 409
    assert (await problem(response))["type"] == "/problems/code-taken"
    assert await db.fetchval("select code from terms where id = $1", term["id"]) == term["code"]


async def test_patch_of_no_term_is_404(client):
    response = await client.patch("/terms/999999", json={"title": "Nothing"})

    assert response.status == 404


async def passed_over_for_credits(client, db, term_id: int) -> tuple[int, int]:
    """A student waiting for a course whose freed seat they were passed over for: the term's limit.

    The term allows 6 credits; the student holds two courses of 3 and waits
    for a third. Returns the student's and the course's ids.
    """
    algebra, geometry = [await registration.course(db, term_id, credits=3) for _ in range(2)]
    full = await registration.course(db, term_id, capacity=1, waitlist=1, credits=3)
    ada, bo = await create_student(client), await create_student(client)
    assert (await enroll(client, bo["id"], full)).status == 201
    assert (await enroll(client, ada["id"], algebra)).status == 201
    waiting = await client.post(
        f"/students/{ada['id']}/courses", json={"course_id": full, "waitlist": True}
    )
    assert waiting.status == 202
    assert (await enroll(client, ada["id"], geometry)).status == 201  # a place does not count
    assert (await client.delete(f"/students/{bo['id']}/courses/{full}")).status == 204
    assert await db.fetchval("select enrolled from courses where id = $1", full) == 0
    return ada["id"], full


async def seated(db, student_id: int, course_id: int) -> bool:
    return await db.fetchval(
        "select exists (select 1 from student_courses where student_id = $1 and course_id = $2)",
        student_id,
        course_id,
    )


async def test_raising_max_credits_promotes_a_student_passed_over_for_it(client, db):
    term = await create_term(client, max_credits=6)
    student_id, course_id = await passed_over_for_credits(client, db, term["id"])

    response = await client.patch(f"/terms/{term['id']}", json={"max_credits": 9})

    assert response.status == 200, await response.text()
    assert await seated(db, student_id, course_id)


async def test_a_batch_raising_max_credits_promotes_as_the_patch_does(client, db):
    term = await create_term(client, max_credits=6)
    student_id, course_id = await passed_over_for_credits(client, db, term["id"])
    item = {k: term[k] for k in ("code", "title", "starts_on", "ends_on")}

    [result] = await batch(client, [{**item, "max_credits": None}])

    assert result["outcome"] == "updated", result
    assert await seated(db, student_id, course_id)


async def waiting_for_a_lock(db, text: str) -> None:
    """Until a statement containing `text` waits for a lock."""
    for _ in range(500):
        waiting = await db.fetchval(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and strpos(query, $1) > 0",
            text,
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing like {text!r} waited for a lock")


@pytest.mark.parametrize("via", ["patch", "batch"])
async def test_a_new_max_credits_waits_for_the_feed_lock_of_a_course_with_a_queue(
    client, db, database_url, via
):
    # The promotion it may make is recorded after whatever holds that course:
    # lock_term_waits() before the write (the feed's causal order, events.sql).
    term = await create_term(client, max_credits=6)
    student_id, course_id = await passed_over_for_credits(client, db, term["id"])
    item = {k: term[k] for k in ("code", "title", "starts_on", "ends_on")}
    holder = await asyncpg.connect(database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("select lock_courses(array[$1::bigint])", course_id)
        if via == "patch":
            change = client.patch(f"/terms/{term['id']}", json={"max_credits": 9})
        else:
            change = client.post("/terms/batch", json={"items": [{**item, "max_credits": 9}]})
        sent = asyncio.ensure_future(change)
        await waiting_for_a_lock(db, "lock_term_waits" if via == "patch" else "batch_terms")
        assert not sent.done()
        assert not await seated(db, student_id, course_id)
        await tx.rollback()
    finally:
        await holder.close()

    assert (await sent).status == 200
    assert await seated(db, student_id, course_id)


# Conditional requests


async def test_if_none_match_with_the_current_etag_is_304(client):
    term = await create_term(client)
    etag = (await client.get(f"/terms/{term['id']}")).headers["ETag"]

    response = await client.get(f"/terms/{term['id']}", headers={"If-None-Match": etag})

    assert response.status == 304
    assert response.headers["ETag"] == etag
    assert await response.read() == b""


async def test_a_patch_changes_the_etag_and_a_stale_if_match_is_412(client, db):
    term = await create_term(client)
    path = f"/terms/{term['id']}"
    first = (await client.get(path)).headers["ETag"]
    changed = await client.patch(path, json={"title": "Renamed"}, headers={"If-Match": first})
    assert changed.status == 200
    second = changed.headers["ETag"]
    assert second != first

    stale = await client.patch(path, json={"title": "Again"}, headers={"If-Match": first})
    assert stale.status == 412
    assert (await problem(stale))["type"] == "/problems/precondition-failed"
    refused = await client.delete(path, headers={"If-Match": first})
    assert refused.status == 412
    assert await db.fetchval("select title from terms where id = $1", term["id"]) == "Renamed"

    deleted = await client.delete(path, headers={"If-Match": second})
    assert deleted.status == 204


# DELETE /terms/{term_id}


async def test_delete_answers_204_and_the_term_is_gone(client, db):
    term = await create_term(client)

    response = await client.delete(f"/terms/{term['id']}")

    assert response.status == 204
    assert await db.fetchval("select count(*) from terms") == 0
    assert (await client.get(f"/terms/{term['id']}")).status == 404
    assert (await client.delete(f"/terms/{term['id']}")).status == 404


async def test_delete_while_a_course_belongs_to_the_term_is_409_term_not_empty(client, db):
    term = await create_term(client)
    course_id = await db.fetchval(
        "insert into courses (code, title, term_id) values ('MATH101', 'Calculus', $1)"
        " returning id",
        term["id"],
    )

    response = await client.delete(f"/terms/{term['id']}")

    assert response.status == 409
    found = await problem(response)
    assert found["type"] == "/problems/term-not-empty"
    assert await db.fetchval("select count(*) from terms") == 1
    await db.execute("delete from courses where id = $1", course_id)
    assert (await client.delete(f"/terms/{term['id']}")).status == 204


# POST /terms/batch


async def batch(client, items: list[dict]) -> list[dict]:
    response = await client.post("/terms/batch", json={"items": items})
    assert response.status == 200, await response.text()
    return (await response.json())["results"]


async def test_a_batch_creates_updates_by_code_in_any_letter_case_and_reports_each(client, db):
    stored = await create_term(client, code="2027-Fall", max_credits=18)
    fall = {"code": "2027-FALL", "title": stored["title"], "starts_on": stored["starts_on"]}
    fall["ends_on"] = stored["ends_on"]

    results = await batch(
        client,
        [
            {**SPRING},  # new
            {**fall},  # the same values: unchanged
            {**fall, "title": "Fall 2027"},  # updated, max_credits kept
            {**fall, "max_credits": None},  # updated: the title always, null given
            {**SPRING, "max_credits": 12.25},  # invalid: its own 422
        ],
    )

    assert [(r["status"], r["outcome"]) for r in results] == [
        (201, "created"),
        (200, "unchanged"),
        (200, "updated"),
        (200, "updated"),
        (422, "invalid"),
    ]
    created = results[0]["body"]
    assert created == await (await client.get(f"/terms/{created['id']}")).json()
    assert results[1]["body"] == stored
    assert results[2]["body"] == {**stored, "title": "Fall 2027"}
    assert results[3]["body"] == {**stored, "max_credits": None}
    assert [e["field"] for e in results[4]["body"]["errors"]] == ["max_credits"]
    # The stored code is kept.
    assert await db.fetchval("select code from terms where id = $1", stored["id"]) == "2027-Fall"
    assert await db.fetchval("select count(*) from terms") == 2


@pytest.mark.parametrize(
    "item",
    [
        {**SPRING, "ends_on": "2026-01-01"},  # out of order
        {"code": "X"},  # title and dates missing
        {**SPRING, "max_credits": "18", "title": ""},  # two bad fields
    ],
)
async def test_an_invalid_batch_item_answers_the_single_posts_422(client, db, item):
    [result] = await batch(client, [item])
    single = await client.post("/terms", json=item)

    assert (result["status"], result["outcome"]) == (single.status, "invalid") == (422, "invalid")
    assert result["body"] == await problem(single)
    assert await db.fetchval("select count(*) from terms") == 0


async def test_a_batch_update_out_of_order_with_the_stored_term_is_its_own_422(client, db):
    stored = await (await client.post("/terms", json=SPRING)).json()
    dates = {k: SPRING[k] for k in ("code", "title", "starts_on", "ends_on")}

    results = await batch(
        client,
        [
            {**dates, "registration_closes_at": "2026-10-01T00:00:00Z"},  # before the opening
            {**dates, "title": "Spring"},  # the next item still applies
        ],
    )

    assert (results[0]["status"], results[0]["outcome"]) == (422, "invalid")
    assert results[0]["body"]["errors"] == [
        {"field": "registration_closes_at", "message": "must be after registration_opens_at"}
    ]
    assert results[1]["outcome"] == "updated"
    row = await db.fetchrow(ROW, stored["id"])
    assert row["registration_closes_at"] == instant(stored["registration_closes_at"])
    assert row["title"] == "Spring"


async def test_a_batch_item_creating_a_code_taken_earlier_in_the_batch_updates_it(client):
    results = await batch(client, [{**SPRING}, {**SPRING, "code": "2027-spring", "title": "S"}])

    assert [r["outcome"] for r in results] == ["created", "updated"]
    assert results[1]["body"]["id"] == results[0]["body"]["id"]
    assert results[1]["body"]["code"] == "2027-SPRING"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE", "PUT"])
async def test_other_methods_on_the_batch_path_are_405_not_the_term_routes(client, method):
    response = await client.request(method, "/terms/batch", json={"items": [{}]})

    assert response.status == 405
    assert response.headers["Allow"] == "POST"


async def test_a_post_with_an_idempotency_key_is_answered_once(client, db):
    headers = {"Idempotency-Key": "spring-2027"}
    first = await client.post("/terms", json=SPRING, headers=headers)
    again = await client.post("/terms", json=SPRING, headers=headers)

    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert await db.fetchval("select count(*) from terms") == 1
