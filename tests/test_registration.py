"""The checks of an enrollment into a course of a term, in their order, and promotion with rules.

Spec: "Terms and the rules of registration". Terms, courses and what the
student information system knows (holds, completions, per-term settings)
are set up with SQL (tests/registration.py); enrolling, dropping and the
overrides go through the API.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.app import create_app
from service.config import Token

from .api import create_course, create_student, problem
from .registration import (
    FUTURE,
    PAST,
    complete,
    course,
    events,
    hold,
    meeting,
    remove_hold,
    settings,
    term,
)

MON_9 = [meeting("mon wed", "09:00", "10:00")]
MON_930 = [meeting("mon", "09:30", "11:00")]
MON_10 = [meeting("mon", "10:00", "11:00")]
TUE_9 = [meeting("tue", "09:00", "10:00")]


async def enroll(client, student_id, course_id, **body):
    return await client.post(
        f"/students/{student_id}/courses", json={"course_id": course_id, **body}
    )


async def refused(response, rule: str) -> dict:
    assert response.status == 409, await response.text()
    body = await problem(response)
    assert body["type"] == f"/problems/{rule}"
    return body


# --- a course without a term ----------------------------------------------------


async def test_a_course_without_a_term_ignores_holds_and_the_rest(client, db):
    student = await create_student(client)
    plain = await create_course(client, capacity=1)
    await hold(client, student["id"])

    response = await enroll(client, student["id"], plain["id"])

    assert response.status == 201
    assert (await response.json())["term_id"] is None


# --- each check ------------------------------------------------------------------


async def test_a_hold_refuses_enrolling_and_waiting_but_not_dropping(client, db):
    t = await term(db)
    student = await create_student(client)
    taken = await course(db, t)
    full = await course(db, t, capacity=1, waitlist=5)
    await enroll(client, (await create_student(client))["id"], full)
    assert (await enroll(client, student["id"], taken)).status == 201
    await hold(client, student["id"])

    body = await refused(
        await enroll(client, student["id"], await course(db, t)), "registration-hold"
    )
    assert "hold" in body["detail"]
    await refused(await enroll(client, student["id"], full, waitlist=True), "registration-hold")
    assert (await client.delete(f"/students/{student['id']}/courses/{taken}")).status == 204


async def test_already_enrolled_answers_200_whatever_changed_since(client, db):
    t = await term(db)
    student = await create_student(client)
    c = await course(db, t)
    assert (await enroll(client, student["id"], c)).status == 201
    await hold(client, student["id"])

    assert (await enroll(client, student["id"], c)).status == 200


async def test_registration_opens_and_closes_with_the_term(client, db):
    student = await create_student(client)
    early = await course(db, await term(db, registration_opens_at=FUTURE))
    late = await course(
        db,
        await term(db, registration_opens_at=PAST - (FUTURE - PAST), registration_closes_at=PAST),
    )
    open_ = await course(
        db, await term(db, registration_opens_at=PAST, registration_closes_at=FUTURE)
    )

    body = await refused(await enroll(client, student["id"], early), "registration-not-open")
    assert FUTURE.strftime("%Y-%m-%dT%H:%M") in body["detail"]
    await refused(await enroll(client, student["id"], late), "registration-closed")
    assert (await enroll(client, student["id"], open_)).status == 201


async def test_a_time_ticket_replaces_the_terms_opening(client, db):
    t = await term(db, registration_opens_at=FUTURE)
    early_bird, late_comer = await create_student(client), await create_student(client)
    await settings(client, early_bird["id"], t, opens=PAST)
    await settings(client, late_comer["id"], t, opens=FUTURE)
    open_term = await term(db, registration_opens_at=PAST)
    await settings(client, late_comer["id"], open_term, opens=FUTURE)

    assert (await enroll(client, early_bird["id"], await course(db, t))).status == 201
    await refused(
        await enroll(client, late_comer["id"], await course(db, open_term)), "registration-not-open"
    )


async def test_prerequisites_name_every_missing_code(client, db):
    t = await term(db)
    student = await create_student(client)
    advanced = await course(db, t, prerequisites=["MATH101", "PHYS101", "CHEM101"])
    await complete(client, student["id"], "phys101")  # any letter case

    body = await refused(await enroll(client, student["id"], advanced), "prerequisite-missing")
    assert "MATH101, CHEM101" in body["detail"]
    assert "PHYS101" not in body["detail"]
    await complete(client, student["id"], "MATH101")
    await complete(client, student["id"], "Chem101")
    assert (await enroll(client, student["id"], advanced)).status == 201


async def test_overlapping_meetings_conflict_and_touching_ones_do_not(client, db):
    t, other_term = await term(db), await term(db)
    student = await create_student(client)
    first = await course(db, t, code="HIST200", meetings=MON_9)
    assert (await enroll(client, student["id"], first)).status == 201

    body = await refused(
        await enroll(client, student["id"], await course(db, t, meetings=MON_930)), "time-conflict"
    )
    assert "HIST200" in body["detail"]
    assert (await enroll(client, student["id"], await course(db, t, meetings=MON_10))).status == 201
    assert (await enroll(client, student["id"], await course(db, t, meetings=TUE_9))).status == 201
    elsewhere = await course(db, other_term, meetings=MON_9)
    assert (await enroll(client, student["id"], elsewhere)).status == 201


async def test_a_courses_meetings_changed_are_the_ones_that_conflict(client, db):
    t = await term(db)
    student = await create_student(client)
    first = await course(db, t, code="HIST210", meetings=MON_9)
    later = await course(db, t, meetings=TUE_9)
    assert (await enroll(client, student["id"], first)).status == 201

    # Through the API: the minutes the conflict check compares follow.
    response = await client.patch(f"/courses/{later}", json={"meetings": MON_930})
    assert response.status == 200, await response.text()
    await refused(await enroll(client, student["id"], later), "time-conflict")
    # Written with SQL too; and minutes written by hand are computed again
    # from the meetings.
    await db.execute("update courses set meetings = '[]' where id = $1", first)
    assert (await enroll(client, student["id"], later)).status == 201
    await db.execute("update courses set meeting_times = '{[0,10080)}' where id = $1", later)
    assert await db.fetch(
        "select meeting_times::text from courses where id = any($1) order by id", [first, later]
    ) == [("{}",), ("{[570,660)}",)]


async def test_waitlisted_courses_neither_conflict_nor_count_credits(client, db):
    t = await term(db, max_credits=4)
    student = await create_student(client)
    full = await course(db, t, capacity=1, waitlist=5, credits=4, meetings=MON_9)
    await enroll(client, (await create_student(client))["id"], full)
    assert (await enroll(client, student["id"], full, waitlist=True)).status == 202

    assert (
        await enroll(client, student["id"], await course(db, t, credits=4, meetings=MON_9))
    ).status == 201


async def test_credit_limit_is_the_students_own_else_the_terms(client, db):
    t = await term(db, max_credits=8)
    student, favoured = await create_student(client), await create_student(client)
    await settings(client, favoured["id"], t, max_credits=12)
    for who in (student, favoured):
        for _ in range(2):
            assert (await enroll(client, who["id"], await course(db, t, credits=4))).status == 201

    body = await refused(
        await enroll(client, student["id"], await course(db, t, credits=0.5)), "credit-limit"
    )
    assert "8" in body["detail"]
    assert (await enroll(client, favoured["id"], await course(db, t, credits=4))).status == 201
    assert (await enroll(client, student["id"], await course(db, t, credits=0))).status == 201
    credits = await client.get(f"/students/{favoured['id']}/terms/{t}")
    if credits.status == 200:  # once the per-term settings are served
        assert (await credits.json())["credits"] == 12


async def test_the_first_failing_check_answers(client, db):
    t = await term(db, max_credits=3, registration_opens_at=FUTURE)
    student = await create_student(client)
    blocked = await course(db, t, credits=4, prerequisites=["X1"])
    await hold(client, student["id"])

    await refused(await enroll(client, student["id"], blocked), "registration-hold")
    await refused(
        await enroll(client, student["id"], blocked, override=["registration-hold"]),
        "registration-not-open",
    )
    await refused(
        await enroll(
            client, student["id"], blocked, override=["registration-hold", "registration-not-open"]
        ),
        "prerequisite-missing",
    )
    await refused(
        await enroll(
            client,
            student["id"],
            blocked,
            override=["registration-hold", "registration-not-open", "prerequisite-missing"],
        ),
        "credit-limit",
    )


async def test_a_full_course_with_a_rule_failing_answers_the_rule_not_the_waitlist(client, db):
    t = await term(db)
    student = await create_student(client)
    full = await course(db, t, capacity=1, waitlist=5, prerequisites=["X1"])
    await enroll(client, (await create_student(client))["id"], full)

    await refused(await enroll(client, student["id"], full, waitlist=True), "prerequisite-missing")
    assert await db.fetchval("select waitlisted from courses where id = $1", full) == 0


# --- drops -----------------------------------------------------------------------


async def test_dropping_after_the_deadline_needs_the_registrar(client, db):
    t = await term(db, drop_deadline=PAST)
    student = await create_student(client)
    c = await course(db, t)
    assert (await enroll(client, student["id"], c)).status == 201
    path = f"/students/{student['id']}/courses/{c}"

    await refused(await client.delete(path), "drop-deadline-passed")
    bad = await client.delete(path, params={"override": "time-conflict"})
    assert bad.status == 422
    assert (await problem(bad))["errors"][0]["field"] == "override"
    assert (await client.delete(path, params={"override": "drop-deadline-passed"})).status == 204
    (dropped,) = await events(db, "enrollment.deleted", student_id=student["id"])
    assert dropped["data"] == {"reason": "dropped", "overrides": ["drop-deadline-passed"]}


async def test_leaving_a_waitlist_is_allowed_after_the_drop_deadline(client, db):
    t = await term(db, drop_deadline=PAST)
    student = await create_student(client)
    full = await course(db, t, capacity=1, waitlist=5)
    await enroll(client, (await create_student(client))["id"], full)
    assert (await enroll(client, student["id"], full, waitlist=True)).status == 202

    assert (await client.delete(f"/students/{student['id']}/waitlist/{full}")).status == 204


# --- overrides -------------------------------------------------------------------

REGISTRAR = Token("registrar", "registrar", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
CLERK = Token("clerk", "write", "a1b2c3d4e5f60718293a4b5c6d7e8f90")


@pytest.fixture
async def tokened(aiohttp_client, config):
    return await aiohttp_client(create_app(replace(config, tokens=(REGISTRAR, CLERK))))


def bearer(token: Token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.secret}"}


async def test_only_a_registrar_overrides_and_the_event_records_it(tokened, db):
    t = await term(db)
    clerk = bearer(CLERK)
    student = await (
        await tokened.post("/students", json={"name": "A", "email": "a@x.org"}, headers=clerk)
    ).json()
    first = await course(db, t, meetings=MON_9)
    clash = await course(db, t, meetings=MON_930)
    path = f"/students/{student['id']}/courses"
    assert (await tokened.post(path, json={"course_id": first}, headers=clerk)).status == 201
    body = {"course_id": clash, "override": ["time-conflict"]}

    forbidden = await tokened.post(path, json=body, headers=clerk)
    assert forbidden.status == 403
    assert "registrar" in (await problem(forbidden))["detail"]
    assert (await tokened.post(path, json=body, headers=bearer(REGISTRAR))).status == 201
    created = await events(db, "enrollment.created", student_id=student["id"], course_id=clash)
    assert [e["data"] for e in created] == [{"via": "request", "overrides": ["time-conflict"]}]
    batch = {"items": [{"student_id": student["id"], "course_id": first, "override": []}]}
    assert (await tokened.post("/enrollments/batch", json=batch, headers=clerk)).status == 403


async def test_an_unknown_or_repeated_override_is_422(client, db):
    student = await create_student(client)
    c = await course(db, await term(db))
    for override in (["course-full"], ["time-conflict", "time-conflict"], "time-conflict"):
        response = await enroll(client, student["id"], c, override=override)
        assert response.status == 422
        assert (await problem(response))["errors"][0]["field"] == "override"


# --- batches ---------------------------------------------------------------------


async def test_a_batch_item_names_a_course_by_code_in_a_term(client, db):
    spring, fall = await term(db), await term(db)
    student = await create_student(client)
    await course(db, spring, code="MATH101")
    in_fall = await course(db, fall, code="MATH101", prerequisites=["MATH100"])
    items = [
        {"student_id": student["id"], "course_code": "math101", "term_id": fall},
        {
            "student_id": student["id"],
            "course_code": "MATH101",
            "term_id": fall,
            "override": ["prerequisite-missing"],
        },
        {"student_id": student["id"], "course_code": "MATH101"},
        {"student_id": student["id"], "course_id": in_fall, "term_id": fall},
    ]

    response = await client.post("/enrollments/batch", json={"items": items})

    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [409, 201, 404, 422]
    assert results[0]["outcome"] == "prerequisite-missing"
    assert results[0]["body"]["type"] == "/problems/prerequisite-missing"
    assert results[1]["body"]["id"] == in_fall
    assert results[3]["body"]["errors"][0]["field"] == "term_id"


# --- promotion -------------------------------------------------------------------


async def test_a_freed_seat_passes_over_who_may_not_take_it(client, db):
    t = await term(db)
    full = await course(db, t, capacity=1, waitlist=5)
    seated, held, eligible = [await create_student(client) for _ in range(3)]
    await enroll(client, seated["id"], full)
    for who in (held, eligible):
        assert (await enroll(client, who["id"], full, waitlist=True)).status == 202
    await hold(client, held["id"])

    assert (await client.delete(f"/students/{seated['id']}/courses/{full}")).status == 204

    assert (await client.get(f"/students/{eligible['id']}/courses/{full}")).status == 200
    queue = await (await client.get(f"/courses/{full}/waitlist")).json()
    assert [(s["id"], s["position"]) for s in queue["items"]] == [(held["id"], 1)]
    passed = await events(db, "waitlist.passed_over", course_id=full)
    assert passed == [
        {"student_id": held["id"], "course_id": full, "data": {"reason": "registration-hold"}}
    ]


async def test_promotion_skips_the_window_but_not_a_conflict(client, db):
    t = await term(db, registration_closes_at=PAST, registration_opens_at=PAST - (FUTURE - PAST))
    full = await course(db, t, capacity=1, waitlist=5, meetings=MON_9)
    student, seated = await create_student(client), await create_student(client)
    await db.execute(
        "insert into student_courses (student_id, course_id) values ($1, $2)", seated["id"], full
    )
    await db.execute(
        "insert into course_waitlist (student_id, course_id) values ($1, $2)", student["id"], full
    )

    assert (await client.delete(f"/students/{seated['id']}/courses/{full}")).status == 204

    assert (await client.get(f"/students/{student['id']}/courses/{full}")).status == 200


@pytest.mark.parametrize(
    "remedy",
    ["hold removed", "completion added", "limit raised", "conflict dropped", "course deleted"],
)
async def test_a_student_becoming_able_is_promoted_at_once(client, db, remedy):
    t = await term(db, max_credits=4)
    student, seated = await create_student(client), await create_student(client)
    target = await course(
        db, t, capacity=1, waitlist=5, credits=4, meetings=MON_9, prerequisites=["X1"]
    )
    await complete(client, student["id"], "X1")
    await enroll(client, seated["id"], target, override=["prerequisite-missing"])
    assert (await enroll(client, student["id"], target, waitlist=True)).status == 202
    blocker = None
    if remedy == "hold removed":
        blocker = await hold(client, student["id"])
    elif remedy == "completion added":
        await db.execute("delete from student_completions where student_id = $1", student["id"])
    else:
        other = await course(
            db,
            t,
            credits=4 if remedy == "limit raised" else 0,
            meetings=TUE_9 if remedy == "limit raised" else MON_9,
        )
        assert (await enroll(client, student["id"], other)).status == 201
    assert (await client.delete(f"/students/{seated['id']}/courses/{target}")).status == 204
    assert (await client.get(f"/students/{student['id']}/waitlist/{target}")).status == 200

    if remedy == "hold removed":
        await remove_hold(client, student["id"], blocker)
    elif remedy == "completion added":
        await complete(client, student["id"], "x1")
    elif remedy == "limit raised":
        await settings(client, student["id"], t, max_credits=8)
    elif remedy == "conflict dropped":
        assert (await client.delete(f"/students/{student['id']}/courses/{other}")).status == 204
    else:
        assert (await client.delete(f"/courses/{other}")).status == 204

    assert (await client.get(f"/students/{student['id']}/courses/{target}")).status == 200
    assert (await client.get(f"/students/{student['id']}/waitlist/{target}")).status == 404


async def test_overrides_given_at_joining_stay_for_the_promotion(client, db):
    t = await term(db)
    full = await course(db, t, capacity=1, waitlist=5, prerequisites=["X1"])
    student, seated = await create_student(client), await create_student(client)
    await db.execute(
        "insert into student_courses (student_id, course_id, overrides) values ($1, $2, '{prerequisite-missing}')",
        seated["id"],
        full,
    )
    response = await enroll(
        client, student["id"], full, waitlist=True, override=["prerequisite-missing"]
    )
    assert response.status == 202
    (joined,) = await events(db, "waitlist.joined", student_id=student["id"])
    assert joined["data"] == {"overrides": ["prerequisite-missing"]}

    assert (await client.delete(f"/students/{seated['id']}/courses/{full}")).status == 204

    (created,) = await events(db, "enrollment.created", student_id=student["id"])
    assert created["data"] == {"via": "waitlist", "overrides": ["prerequisite-missing"]}


async def test_events_of_holds_and_completions_carry_no_reason_text(client, db):
    student = await create_student(client)
    held = await hold(client, student["id"])
    await complete(client, student["id"], "MATH101")
    await remove_hold(client, student["id"], held)

    rows = await db.fetch(
        "select type, data::text from events where student_id = $1 order by id", student["id"]
    )
    assert [r["type"] for r in rows] == [
        "student.created",
        "hold.placed",
        "completion.added",
        "hold.removed",
    ]
    assert all("library" not in r["data"] and "@" not in r["data"] for r in rows)
    assert '"code": "MATH101"' in rows[2]["data"]
