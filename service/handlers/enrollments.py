"""/students/{student_id}/courses and /courses/{course_id}/students"""

from __future__ import annotations

from aiohttp import web

from .. import validation as v
from ..db import connection
from ..errors import Problem, not_found
from ..keys import METRICS
from ..repositories import enrollments
from . import render

ENROLL = {"course_id": v.integer(1, v.MAX_ID)}


async def enroll(request: web.Request) -> web.Response:
    student_id = v.path_id(request, "student_id", "student")
    data = v.fields(await v.json_object(request), ENROLL, required=("course_id",))
    course_id = data["course_id"]
    outcomes = request.app[METRICS].outcomes
    try:
        async with connection(request) as conn:
            enrollment, created = await enrollments.enroll(
                conn, student_id=student_id, course_id=course_id
            )
    except Problem as problem:
        outcomes["full" if problem.status == 409 else "missing"].inc()
        raise
    outcomes["created" if created else "existing"].inc()
    if created:
        location = f"/students/{student_id}/courses/{course_id}"
        return render.json(enrollment, status=201, headers={"Location": location})
    return render.json(enrollment)


async def list_courses(request: web.Request) -> web.Response:
    student_id = v.path_id(request, "student_id", "student")
    after, limit = v.page_params(request)
    async with connection(request) as conn:
        result = await enrollments.list_courses_of_student(
            conn, student_id=student_id, after=after, limit=limit
        )
    if result is None:
        raise not_found(f"student {student_id} does not exist")
    return render.page(request, result, limit)


async def get(request: web.Request) -> web.Response:
    student_id = v.path_id(request, "student_id", "student")
    course_id = v.path_id(request, "course_id", "enrollment in course")
    async with connection(request) as conn:
        enrollment = await enrollments.get(conn, student_id=student_id, course_id=course_id)
    if enrollment is None:
        raise not_found(f"student {student_id} is not enrolled in course {course_id}")
    return render.json(enrollment)


async def delete(request: web.Request) -> web.Response:
    student_id = v.path_id(request, "student_id", "student")
    course_id = v.path_id(request, "course_id", "enrollment in course")
    async with connection(request) as conn:
        deleted = await enrollments.delete(conn, student_id=student_id, course_id=course_id)
    if not deleted:
        raise not_found(f"student {student_id} is not enrolled in course {course_id}")
    return web.Response(status=204)


async def list_students(request: web.Request) -> web.Response:
    course_id = v.path_id(request, "course_id", "course")
    after, limit = v.page_params(request)
    async with connection(request) as conn:
        result = await enrollments.list_students_of_course(
            conn, course_id=course_id, after=after, limit=limit
        )
    if result is None:
        raise not_found(f"course {course_id} does not exist")
    return render.page(request, result, limit)
