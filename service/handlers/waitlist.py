"""/students/{student_id}/waitlist and /courses/{course_id}/waitlist"""

from __future__ import annotations

from aiohttp import web

from ..auth import actor
from ..errors import not_found
from ..keys import WORK
from ..repositories import waitlist
from ..validation.query import page_query, path_id
from . import render


async def list_courses(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await waitlist.list_courses_of_student(
            conn, student_id=student_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"student {student_id} does not exist")
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    course_id = path_id(request, "course_id", "waitlist of course")
    async with request[WORK].block() as conn:
        entry = await waitlist.get(conn, student_id=student_id, course_id=course_id)
    if entry is None:
        raise not_found(f"student {student_id} is not waiting for course {course_id}")
    return render.json(entry)


async def leave(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    course_id = path_id(request, "course_id", "waitlist of course")
    work = request[WORK]
    async with work.block() as conn:
        left = await waitlist.leave(
            conn, student_id=student_id, course_id=course_id, actor=actor(request), work=work
        )
    if not left:
        raise not_found(f"student {student_id} is not waiting for course {course_id}")
    return web.Response(status=204)


async def list_students(request: web.Request) -> web.Response:
    course_id = path_id(request, "course_id", "course")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await waitlist.list_students_of_course(
            conn, course_id=course_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"course {course_id} does not exist")
    return render.page(request, result, page)
