"""The rules of registration hold under concurrent requests (invariants 3, 6, 7, 8).

As in test_concurrency.py: each burst goes through the real app with a pool
of 40 connections, so the statements overlap inside PostgreSQL, and each
test runs several rounds. What keeps each rule is the student's
registration lock (their students row, FOR NO KEY UPDATE, taken by every
enrollment into a course of a term, every promotion and every hold placed)
and the course's lock (sql/functions/registration.sql, enrollments.sql).
"""

from __future__ import annotations

import asyncio

import asyncpg

from .api import create_student
from .registration import course, hold, hold_in, meeting, remove_hold, settings, term
from .test_concurrency import ROUNDS, burst, statuses

MON_9 = meeting("mon", "09:00", "10:00")


def enrolling(student_id: int, course_ids: list[int], **body) -> list[tuple[str, str, dict]]:
    return [
        ("POST", f"/students/{student_id}/courses", {"course_id": c, **body}) for c in course_ids
    ]


async def overlapping_enrollments(db: asyncpg.Connection, term_id: int) -> int:
    return await db.fetchval(
        "select count(*) from student_courses a"
        " join courses x on x.id = a.course_id"
        " join student_courses b on b.student_id = a.student_id and b.course_id > a.course_id"
        " join courses y on y.id = b.course_id"
        " where x.term_id = $1 and y.term_id = $1 and meetings_overlap(x.meetings, y.meetings)",
        term_id,
    )


async def test_one_student_into_conflicting_courses_at_once_gets_one(wide, db):
    for _ in range(ROUNDS):
        t = await term(db)
        student = await create_student(wide)
        sections = [await course(db, t, meetings=[MON_9]) for _ in range(8)]

        answers = await burst(wide, enrolling(student["id"], sections) * 2)

        assert statuses(answers)[201] == 1, statuses(answers)
        assert {a.body["type"] for a in answers if a.status == 409} == {"/problems/time-conflict"}
        assert await overlapping_enrollments(db, t) == 0


async def test_more_credits_than_the_limit_at_once_never_goes_over(wide, db):
    for _ in range(ROUNDS):
        t = await term(db, max_credits=12)
        student = await create_student(wide)
        courses = [await course(db, t, credits=4) for _ in range(8)]

        answers = await burst(wide, enrolling(student["id"], courses))

        assert statuses(answers) == {201: 3, 409: 5}, statuses(answers)
        kept, counted = await db.fetchrow(
            "select st.credits, (select sum(c.credits) from student_courses e"
            " join courses c on c.id = e.course_id where e.student_id = $1)"
            " from student_terms st where st.student_id = $1 and st.term_id = $2",
            student["id"],
            t,
        )
        assert kept == counted == 12


async def test_no_enrollment_after_a_hold_commits(wide, db, database_url):
    """The hold's transaction holds the student's lock; enrollments sent meanwhile wait, then see it."""
    for _ in range(ROUNDS):
        t = await term(db)
        student = await create_student(wide)
        courses = [await course(db, t) for _ in range(6)]
        registrar = await asyncpg.connect(database_url)
        try:
            transaction = registrar.transaction()
            await transaction.start()
            await hold_in(registrar, student["id"])
            pending = asyncio.ensure_future(burst(wide, enrolling(student["id"], courses)))
            await asyncio.sleep(0.3)  # the enrollments reach the database and wait
            await transaction.commit()
            answers = await pending
        finally:
            await registrar.close()

        assert statuses(answers) == {409: 6}, statuses(answers)
        assert {a.body["type"] for a in answers} == {"/problems/registration-hold"}


async def test_a_hold_placed_amid_enrollments_stops_those_after_it(wide, db):
    for _ in range(ROUNDS):
        t = await term(db)
        student = await create_student(wide)
        courses = [await course(db, t) for _ in range(21)]

        answers, _ = await asyncio.gather(
            burst(wide, enrolling(student["id"], courses[:20])), hold(wide, student["id"])
        )

        assert set(statuses(answers)) <= {201, 409}
        created = await db.fetchval(
            "select count(*) from student_courses where student_id = $1", student["id"]
        )
        assert created == statuses(answers)[201]
        (after,) = await burst(wide, enrolling(student["id"], courses[20:]))
        assert after.body["type"] == "/problems/registration-hold"


async def test_drops_give_the_seats_to_the_first_eligible_and_others_keep_their_place(wide, db):
    for _ in range(ROUNDS):
        t = await term(db)
        full = await course(db, t, capacity=3, waitlist=10)
        seated = [await create_student(wide) for _ in range(3)]
        queue = [await create_student(wide) for _ in range(6)]
        for s in seated:
            await burst(wide, enrolling(s["id"], [full]))
        for s in queue:
            await burst(wide, enrolling(s["id"], [full], waitlist=True))
        held = [queue[0], queue[2], queue[4]]
        for s in held:
            await hold(wide, s["id"])

        answers = await burst(
            wide, [("DELETE", f"/students/{s['id']}/courses/{full}", None) for s in seated]
        )

        assert statuses(answers) == {204: 3}
        enrolled = await db.fetch(
            "select student_id from student_courses where course_id = $1 order by student_id", full
        )
        assert [r["student_id"] for r in enrolled] == [
            queue[1]["id"],
            queue[3]["id"],
            queue[5]["id"],
        ]
        waiting = await db.fetch(
            "select student_id from course_waitlist where course_id = $1 order by seq", full
        )
        assert [r["student_id"] for r in waiting] == [s["id"] for s in held]


async def test_a_student_becoming_able_takes_a_free_seat_at_once_under_a_race(wide, db):
    """The hold goes while another student asks for the same seat: either way no seat is left free."""
    for _ in range(ROUNDS):
        t = await term(db)
        seat = await course(db, t, capacity=1, waitlist=5)
        first, rival, seated = [await create_student(wide) for _ in range(3)]
        await burst(wide, enrolling(seated["id"], [seat]))
        await burst(wide, enrolling(first["id"], [seat], waitlist=True))
        held = await hold(wide, first["id"])
        await burst(wide, [("DELETE", f"/students/{seated['id']}/courses/{seat}", None)])
        assert await db.fetchval("select enrolled from courses where id = $1", seat) == 0

        (answer,), _ = await asyncio.gather(
            burst(wide, enrolling(rival["id"], [seat], waitlist=True)),
            remove_hold(wide, first["id"], held),
        )

        enrolled = await db.fetch(
            "select student_id from student_courses where course_id = $1", seat
        )
        assert len(enrolled) == 1
        if enrolled[0]["student_id"] == first["id"]:
            assert answer.status == 202  # the seat went to the promotion first
        else:
            assert answer.status == 201
            assert (
                await db.fetchval("select count(*) from course_waitlist where course_id = $1", seat)
                == 1
            )


async def test_limits_raised_in_parallel_fill_the_free_seats_exactly(wide, db):
    """Six students passed over in three courses become able at once: six seats, one each."""
    for _ in range(ROUNDS):
        t = await term(db, max_credits=4)
        sections = [await course(db, t, capacity=2, waitlist=10, credits=4) for _ in range(3)]
        seated = [await create_student(wide) for _ in range(6)]
        waiting = [await create_student(wide) for _ in range(6)]
        for i, s in enumerate(seated):
            await burst(wide, enrolling(s["id"], [sections[i // 2]]))
        for s in waiting:
            answers = await burst(wide, enrolling(s["id"], sections, waitlist=True))
            assert statuses(answers) == {202: 3}
            await settings(wide, s["id"], t, max_credits=0)
        await burst(
            wide,
            [
                ("DELETE", f"/students/{s['id']}/courses/{sections[i // 2]}", None)
                for i, s in enumerate(seated)
            ],
        )
        assert await db.fetchval("select sum(enrolled) from courses where term_id = $1", t) == 0

        await asyncio.gather(*(settings(wide, s["id"], t, max_credits=4) for s in waiting))

        credits = await db.fetch(
            "select student_id, credits from student_terms where term_id = $1 and credits > 0", t
        )
        assert sorted(r["student_id"] for r in credits) == sorted(s["id"] for s in waiting)
        assert {r["credits"] for r in credits} == {4}
        assert await db.fetchval(
            "select array_agg(enrolled order by id) from courses where term_id = $1", t
        ) == [2, 2, 2]


async def test_a_promotion_and_a_request_of_the_same_student_never_overlap(wide, db):
    """A drop promotes the student into one section while they ask for a clashing one."""
    for _ in range(ROUNDS * 3):
        t = await term(db)
        full = await course(db, t, capacity=1, waitlist=5, meetings=[MON_9])
        clash = await course(db, t, meetings=[MON_9])
        student, seated = await create_student(wide), await create_student(wide)
        await burst(wide, enrolling(seated["id"], [full]))
        await burst(wide, enrolling(student["id"], [full], waitlist=True))

        answers = await burst(
            wide,
            [
                ("DELETE", f"/students/{seated['id']}/courses/{full}", None),
                *enrolling(student["id"], [clash]),
            ],
        )

        assert answers[0].status == 204
        assert await overlapping_enrollments(db, t) == 0
        promoted = await db.fetchval(
            "select count(*) from student_courses where student_id = $1 and course_id = $2",
            student["id"],
            full,
        )
        assert promoted == (answers[1].status == 409)
