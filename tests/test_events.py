"""Events: every change recorded with the change itself, and a feed followed exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config, Token
from service.repositories import events

from .api import create_course, create_student, problem
from .test_concurrency import burst

REGISTRAR = Token("registrar", "write", "5b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e")
AUTH = {"Authorization": f"Bearer {REGISTRAR.secret}"}


async def feed(client: TestClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/events", params=params, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


async def everything(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Every event the feed serves now, following next_cursor."""
    items = []
    while True:
        page = await feed(client, limit=7, **params)
        items += page["items"]
        assert page["next_cursor"]
        if not page["items"]:
            return items
        params["cursor"] = page["next_cursor"]


def kinds(events: list[dict[str, Any]]) -> list[tuple]:
    return [(e["type"], e["student_id"], e["course_id"], e["data"]) for e in events]


@pytest.fixture
async def secured(config: Config, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(replace(config, tokens=(REGISTRAR,))))


# -- what is recorded --------------------------------------------------------------------


async def test_each_change_is_recorded_with_its_actor(secured):
    student = await (
        await secured.post("/students", json={"name": "Ada", "email": "ada@x.org"}, headers=AUTH)
    ).json()
    course = await (
        await secured.post("/courses", json={"code": "C1", "title": "One"}, headers=AUTH)
    ).json()
    s, c = student["id"], course["id"]
    await secured.patch(f"/students/{s}", json={"name": "Ada King"}, headers=AUTH)
    await secured.patch(f"/students/{s}", json={"name": "Ada King"}, headers=AUTH)  # no change
    await secured.patch(f"/courses/{c}", json={"capacity": 5, "title": "Uno"}, headers=AUTH)
    await secured.post(f"/students/{s}/courses", json={"course_id": c}, headers=AUTH)
    await secured.delete(f"/students/{s}/courses/{c}", headers=AUTH)
    await secured.delete(f"/students/{s}", headers=AUTH)

    events = await everything(secured)

    assert kinds(events) == [
        ("student.created", s, None, {}),
        ("course.created", None, c, {}),
        ("student.updated", s, None, {"fields": ["name"]}),
        ("course.updated", None, c, {"fields": ["title", "capacity"]}),
        ("enrollment.created", s, c, {"via": "request"}),
        ("enrollment.deleted", s, c, {"reason": "dropped"}),
        ("student.deleted", s, None, {}),
    ]
    assert {e["actor"] for e in events} == {"registrar"}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["at"].endswith("+00:00") for e in events)


async def test_a_promotion_is_waitlist_left_then_enrollment_created(client):
    course = await create_course(client, capacity=1, waitlist_capacity=2)
    seated, waiting = await create_student(client), await create_student(client)
    await client.post(f"/students/{seated['id']}/courses", json={"course_id": course["id"]})
    body = {"course_id": course["id"], "waitlist": True}
    await client.post(f"/students/{waiting['id']}/courses", json=body)
    start = (await feed(client))["next_cursor"]

    await client.delete(f"/students/{seated['id']}/courses/{course['id']}")

    events = await everything(client, cursor=start)
    c = course["id"]
    assert kinds(events) == [
        ("enrollment.deleted", seated["id"], c, {"reason": "dropped"}),
        ("waitlist.left", waiting["id"], c, {"reason": "promoted"}),
        ("enrollment.created", waiting["id"], c, {"via": "waitlist"}),
    ]
    assert {e["actor"] for e in events} == {None}  # an instance without tokens


async def test_cascades_say_why_the_rows_went(client):
    course = await create_course(client, capacity=1, waitlist_capacity=2)
    seated, waiting = await create_student(client), await create_student(client)
    await client.post(f"/students/{seated['id']}/courses", json={"course_id": course["id"]})
    body = {"course_id": course["id"], "waitlist": True}
    await client.post(f"/students/{waiting['id']}/courses", json=body)
    start = (await feed(client))["next_cursor"]

    await client.delete(f"/courses/{course['id']}")

    c = course["id"]
    assert sorted(kinds(await everything(client, cursor=start))) == sorted(
        [
            ("course.deleted", None, c, {}),
            ("enrollment.deleted", seated["id"], c, {"reason": "course_deleted"}),
            ("waitlist.left", waiting["id"], c, {"reason": "course_deleted"}),
        ]
    )
    first = (await everything(client, cursor=start))[0]
    assert first["type"] == "course.deleted"  # the parent before its cascade


async def test_an_operators_sql_is_recorded_with_its_role(client, db):
    student = await create_student(client)
    start = (await feed(client))["next_cursor"]

    await db.execute("update students set name = 'Renamed' where id = $1", student["id"])

    [event] = await everything(client, cursor=start)
    assert (event["type"], event["actor"]) == ("student.updated", "sql:postgres")


async def test_a_change_that_fails_or_rolls_back_leaves_no_event(client, db):
    course = await create_course(client, capacity=1)
    first, second = await create_student(client), await create_student(client)
    await client.post(f"/students/{first['id']}/courses", json={"course_id": course["id"]})
    before = await db.fetchval("select count(*) from events")

    full = await client.post(f"/students/{second['id']}/courses", json={"course_id": course["id"]})
    taken = await client.post("/students", json={"name": "X", "email": first["email"]})
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.execute("delete from courses where id = $1", course["id"])
            raise RuntimeError("roll back")
    await db.execute("delete from students where id = $1", second["id"])

    assert (full.status, taken.status) == (409, 409)
    types = [
        r["type"] for r in await db.fetch("select type from events order by id offset $1", before)
    ]
    assert types == ["student.deleted"]  # only the committed delete


async def test_deleting_a_student_leaves_no_personal_data_in_events(client, db):
    name, email = "Zéphyrine Quandt-Oyelaran", "zephyrine.q@private.example"
    student = await create_student(client, name=name, email=email)
    course = await create_course(client)
    await client.patch(
        f"/students/{student['id']}", json={"email": "z2@private.example", "name": name + " II"}
    )
    await client.post(f"/students/{student['id']}/courses", json={"course_id": course["id"]})

    await client.delete(f"/students/{student['id']}")

    text = await db.fetchval("select string_agg(e::text, '\n') from events e")
    for secret in ("Zéphyrine", "Quandt", "zephyrine", "private.example", "z2@"):
        assert secret not in text
    assert (
        await db.fetchval("select count(*) from events where student_id = $1", student["id"]) == 5
    )


# -- the feed ----------------------------------------------------------------------------


async def test_the_feed_filters_by_student_course_and_type(client):
    a, b = await create_student(client), await create_student(client)
    course = await create_course(client)
    for s in (a, b):
        await client.post(f"/students/{s['id']}/courses", json={"course_id": course["id"]})

    of_a = await everything(client, student_id=a["id"])
    of_course = await everything(client, course_id=course["id"])
    both = await everything(client, student_id=a["id"], course_id=course["id"])
    enrollments = await everything(client, type="enrollment.created,student.deleted")

    assert [e["type"] for e in of_a] == ["student.created", "enrollment.created"]
    assert [e["type"] for e in of_course] == [
        "course.created",
        "enrollment.created",
        "enrollment.created",
    ]
    assert [e["type"] for e in both] == ["enrollment.created"]
    assert [(e["type"], e["student_id"]) for e in enrollments] == [
        ("enrollment.created", a["id"]),
        ("enrollment.created", b["id"]),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "student.exploded"}, "type"),  # not a type of event
        ({"type": ""}, "type"),  # an empty list
        ({"student_id": "0"}, "student_id"),  # not an id
        ({"course_id": "abc"}, "course_id"),  # not an id either
        ({"limit": "1001"}, "limit"),  # above the maximum of /events
        ({"wait": "31"}, "wait"),  # longer than the longest wait
        ({"wait": "1.5"}, "wait"),  # whole seconds
        ({"cursor": "nonsense"}, "cursor"),  # not a cursor from this API
    ],
)
async def test_bad_feed_parameters_are_422_naming_them(client, params, field):
    response = await client.get("/events", params=params)

    assert response.status == 422
    assert [e["field"] for e in (await problem(response))["errors"]] == [field]


async def test_next_cursor_is_never_null_and_polling_it_finds_what_came_later(client):
    first = await feed(client)
    assert first["items"] == [] and first["next_cursor"]

    student = await create_student(client)
    later = await feed(client, cursor=first["next_cursor"])

    assert [e["student_id"] for e in later["items"]] == [student["id"]]
    assert (await feed(client, cursor=later["next_cursor"]))["items"] == []


async def test_a_long_poll_answers_as_soon_as_an_event_arrives(client):
    cursor = (await feed(client))["next_cursor"]

    async def later() -> None:
        await asyncio.sleep(0.5)
        await create_student(client)

    started = time.monotonic()
    writer = asyncio.create_task(later())
    page = await feed(client, cursor=cursor, wait=10)
    waited = time.monotonic() - started
    await writer

    assert [e["type"] for e in page["items"]] == ["student.created"]
    assert 0.4 < waited < 3, waited


async def test_a_long_poll_with_nothing_to_report_answers_empty_when_the_wait_is_over(client):
    cursor = (await feed(client))["next_cursor"]

    started = time.monotonic()
    page = await feed(client, cursor=cursor, wait=1)

    assert page["items"] == []
    assert page["next_cursor"]
    assert 0.9 < time.monotonic() - started < 3


# -- exactly once, in order --------------------------------------------------------------


async def test_an_event_committed_late_is_not_skipped(client, database_url):
    """A transaction that took its id first but commits last holds the feed back."""
    cursor = (await feed(client))["next_cursor"]
    late = await asyncpg.connect(database_url)
    try:
        tx = late.transaction()
        await tx.start()
        await late.execute("insert into students (name, email) values ('Late', 'late@x.org')")
        early = await create_student(client)  # commits while `late` is still open

        held = await feed(client, cursor=cursor)
        await tx.commit()
        released = await everything(client, cursor=held["next_cursor"])
    finally:
        await late.close()

    # Nothing past the open transaction was served: the follower's cursor
    # cannot have passed the late event.
    assert held["items"] == []
    assert [e["student_id"] is not None for e in released] == [True, True]
    assert released[0]["student_id"] != early["id"]  # the late one has the lower id
    assert released[1]["student_id"] == early["id"]


@pytest.mark.parametrize("round_", range(2))
async def test_a_follower_sees_every_committed_event_once_in_order(wide, db, round_):
    rng = random.Random(round_)
    course = await create_course(wide, capacity=20, waitlist_capacity=50)
    students = [await create_student(wide) for _ in range(60)]
    seen: list[int] = []
    writing = True

    async def follow() -> None:
        cursor = None
        while True:
            params = {"limit": 13, "wait": 1, **({"cursor": cursor} if cursor else {})}
            page = await feed(wide, **params)
            seen.extend(e["id"] for e in page["items"])
            cursor = page["next_cursor"]
            if not writing and not page["items"]:
                return

    follower = asyncio.create_task(follow())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        requests = []
        for _ in range(25):
            s = rng.choice(students)["id"]
            if rng.random() < 0.6:
                body = {"course_id": course["id"], "waitlist": True}
                requests.append(("POST", f"/students/{s}/courses", body))
            else:
                requests.append(("DELETE", f"/students/{s}/courses/{course['id']}", None))
        await burst(wide, requests)
    writing = False
    await asyncio.wait_for(follower, 30)

    committed = [r["id"] for r in await db.fetch("select id from events order by id")]
    assert len(seen) == len(set(seen)), "an event was seen twice"
    assert seen == sorted(seen), "events came out of order"
    # The follower started after the setup's events; from its first on, every one.
    assert seen == committed[committed.index(seen[0]) :] if seen else False


# -- retention ---------------------------------------------------------------------------


async def test_retention_deletes_old_events_and_a_cursor_before_them_is_410(
    config, aiohttp_client, db
):
    # Events from before the retention, made the way a long-running service has them.
    seed = await aiohttp_client(create_app(config))
    old = [await create_student(seed) for _ in range(3)]
    kept_cursor = (await feed(seed))["next_cursor"]
    early_cursor = (await feed(seed, limit=1))["next_cursor"]
    await db.execute("update events set at = now() - interval '40 days'")
    recent = await create_student(seed)
    await seed.close()

    client = await aiohttp_client(create_app(replace(config, events_retention_days=30)))
    for _ in range(50):  # the purge runs at start-up, in the background
        if (
            await db.fetchval("select count(*) from events where at < now() - interval '30 days'")
            == 0
        ):
            break
        await asyncio.sleep(0.1)

    assert (
        await db.fetchval("select count(*) from events where at < now() - interval '30 days'") == 0
    )
    expired = await client.get("/events", params={"cursor": early_cursor})
    assert expired.status == 410
    assert (await problem(expired))["type"] == "/problems/cursor-expired"
    fresh = await client.get("/events", params={"cursor": kept_cursor})
    assert [e["student_id"] for e in (await fresh.json())["items"]] == [recent["id"]]
    assert len(old) == 3


async def test_retention_purges_the_tombstones_with_the_events(config, aiohttp_client, db):
    # Deletions, which a OneRoster delta sync reads as `tobedeleted`, made the
    # way a long-running service has them: one from before the retention,
    # two within it.
    seed = await aiohttp_client(create_app(config))
    students = [await create_student(seed) for _ in range(3)]
    sourced = dict(
        await db.fetch(
            "select id, sourced_id from students where id = any($1)", [s["id"] for s in students]
        )
    )
    for student in students:
        assert (await seed.delete(f"/students/{student['id']}")).status == 204
    await seed.close()
    gone, kept = sourced[students[0]["id"]], {sourced[s["id"]] for s in students[1:]}
    await db.execute(
        "update tombstones set deleted_at = now() - interval '40 days' where sourced_id = $1", gone
    )
    # A mass deletion as old: more than one batch, in one transaction (one time).
    await db.execute(
        "insert into tombstones (kind, sourced_id, deleted_at)"
        " select 'enrollment', 'old-' || n, now() - interval '31 days'"
        " from generate_series(1, $1) n",
        events.PURGE_BATCH * 2 + 500,
    )
    # And one just within the retention.
    await db.execute(
        "insert into tombstones (kind, sourced_id, deleted_at)"
        " values ('course', 'recent', now() - interval '29 days')"
    )

    await aiohttp_client(create_app(replace(config, events_retention_days=30)))
    for _ in range(50):  # the purge runs at start-up, in the background
        if (
            await db.fetchval("select count(*) from tombstones where sourced_id <> all($1)", kept)
            == 1
        ):
            break
        await asyncio.sleep(0.1)

    rows = await db.fetch("select kind, sourced_id from tombstones")
    assert sorted(tuple(r) for r in rows) == sorted(
        [("course", "recent"), *(("student", s) for s in kept)]
    )


async def test_a_purge_of_tombstones_deletes_one_batch_the_oldest_first(database_url, db):
    bound = await db.fetchval("select now() - interval '30 days'")
    # Each a second older than the next, then as many deleted in one
    # transaction (one time), then some within the bound.
    await db.execute(
        "insert into tombstones (kind, sourced_id, deleted_at)"
        " select 'student', 'old-' || n, $1::timestamptz - interval '1 day' + n * interval '1 second'"
        " from generate_series(1, 1500) n"
        " union all select 'enrollment', 'mass-' || n, $1::timestamptz - interval '1 hour'"
        " from generate_series(1, 2000) n"
        " union all select 'course', 'new-' || n, $1::timestamptz + interval '1 hour'"
        " from generate_series(1, 10) n",
        bound,
    )

    assert await events.purge_tombstones(db, before=bound) == events.PURGE_BATCH
    # The oldest went first.
    left = await db.fetchval(
        "select min(substr(sourced_id, 5)::integer) from tombstones where sourced_id like 'old-%'"
    )
    assert left == events.PURGE_BATCH + 1
    # The rest of those, and 500 of the mass deletion; then 1,000 of the
    # 1,500 left of it, which share one time: still a batch at most.
    assert await events.purge_tombstones(db, before=bound) == events.PURGE_BATCH
    assert await events.purge_tombstones(db, before=bound) == events.PURGE_BATCH
    assert await db.fetchval("select count(*) from tombstones where deleted_at < $1", bound) == 500
    assert await events.purge_tombstones(db, before=bound) == 500
    assert await events.purge_tombstones(db, before=bound) == 0
    assert await db.fetchval("select count(*) from tombstones") == 10
    assert await db.fetchval("select min(deleted_at) from tombstones") > bound

    # One worker at a time: another's purge, in its transaction, leaves this one nothing.
    await db.execute(
        "insert into tombstones (kind, sourced_id, deleted_at) values ('term', 'old', $1)",
        bound - timedelta(days=1),
    )
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            assert await events.purge_tombstones(other, before=bound) == 1
            assert await events.purge_tombstones(db, before=bound) == 0
    finally:
        await other.close()


async def test_a_server_shutting_down_answers_its_long_polls_at_once(database_url, tmp_path):
    from .test_logs import session, stop
    from .test_shutdown import serving

    async with serving(database_url, tmp_path) as server:
        async with session(server) as http:
            cursor = (await (await http.get("/events")).json())["next_cursor"]
            poll = asyncio.create_task(http.get("/events", params={"cursor": cursor, "wait": 30}))
            await asyncio.sleep(0.5)  # the poll is waiting
            started = time.monotonic()
            await stop(server)
            response = await poll
            assert response.status == 200
            assert (await response.json())["items"] == []
            assert time.monotonic() - started < 5
