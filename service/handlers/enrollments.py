"""/students/{student_id}/courses and /courses/{course_id}/students"""

from __future__ import annotations

from aiohttp import web

from ..auth import actor, check_registrar
from ..errors import FieldError, Problem, invalid, not_found
from ..keys import METRICS, WORK
from ..outcomes import ENROLL_RULES, Outcome
from ..repositories import enrollments
from ..validation.body import json_object
from ..validation.fields import MAX_ID, boolean, fields, integer, rules, sourced_id
from ..validation.query import page_query, path_id
from . import render

ENROLL = {
    "course_id": integer(1, MAX_ID),
    "waitlist": boolean,
    "override": rules(tuple(ENROLL_RULES)),
    "sourced_id": sourced_id,
}


async def enroll(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    data = fields(await json_object(request), ENROLL, required=("course_id",))
    course_id = data["course_id"]
    if "override" in data:
        check_registrar(request, "override")
    work = request[WORK]
    async with work.block() as conn:
        applied = await enrollments.enroll(
            conn,
            student_id=student_id,
            course_id=course_id,
            waitlist=data.get("waitlist", False),
            overrides=data.get("override"),
            sourced_id=data.get("sourced_id"),
            actor=actor(request),
            work=work,
        )
    request.app[METRICS].outcomes[applied.outcome].inc()
    if isinstance(applied.value, Problem):
        raise applied.value
    status = applied.outcome.status
    if status == 201:
        location = f"/students/{student_id}/courses/{course_id}"
    elif status == 202:
        location = f"/students/{student_id}/waitlist/{course_id}"
    else:
        return render.json(applied.value)
    return render.json(applied.value, status=status, headers={"Location": location})


async def list_courses(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await enrollments.list_courses_of_student(
            conn, student_id=student_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"student {student_id} does not exist")
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    course_id = path_id(request, "course_id", "enrollment in course")
    async with request[WORK].block() as conn:
        enrollment = await enrollments.get(conn, student_id=student_id, course_id=course_id)
    if enrollment is None:
        raise not_found(f"student {student_id} is not enrolled in course {course_id}")
    return render.json(enrollment)


async def delete(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    course_id = path_id(request, "course_id", "enrollment in course")
    overrides = _drop_override(request)
    work = request[WORK]
    async with work.block() as conn:
        applied = await enrollments.delete(
            conn,
            student_id=student_id,
            course_id=course_id,
            overrides=overrides,
            actor=actor(request),
            work=work,
        )
    if isinstance(applied.value, Problem):
        raise applied.value
    return web.Response(status=applied.outcome.status)


async def list_students(request: web.Request) -> web.Response:
    course_id = path_id(request, "course_id", "course")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await enrollments.list_students_of_course(
            conn, course_id=course_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"course {course_id} does not exist")
    return render.page(request, result, page)


def _drop_override(request: web.Request) -> str | None:
    """?override=drop-deadline-passed: the only rule a drop can override (registrars only)."""
    value = request.query.get("override")
    if value is None:
        return None
    if value != Outcome.DROP_DEADLINE_PASSED:
        raise invalid([FieldError("override", f"must be {Outcome.DROP_DEADLINE_PASSED}")])
    check_registrar(request, "override")
    return str(Outcome.DROP_DEADLINE_PASSED)
