"""/students/{student_id}/completions"""

from __future__ import annotations

from aiohttp import web

from ..auth import actor
from ..errors import not_found
from ..keys import WORK
from ..repositories import completions
from ..validation.body import json_object
from ..validation.fields import code, fields, timestamp
from ..validation.query import page_query, path_id
from . import render

# A completion's code is a course code: what a prerequisite names.
CREATE = {"code": code, "completed_at": timestamp}


async def create(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    data = fields(await json_object(request), CREATE, required=("code",))
    work = request[WORK]
    async with work.block() as conn:
        completion = await completions.create(
            conn,
            student_id=student_id,
            code=data["code"],
            completed_at=data.get("completed_at"),
            actor=actor(request),
            work=work,
        )
    if completion is None:
        raise not_found(f"student {student_id} does not exist")
    location = f"/students/{student_id}/completions/{completion.id}"
    return render.json(completion, status=201, headers={"Location": location})


async def list_(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await completions.list_of_student(
            conn, student_id=student_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"student {student_id} does not exist")
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    completion_id = path_id(request, "completion_id", "completion")
    async with request[WORK].block() as conn:
        completion = await completions.get(conn, student_id=student_id, completion_id=completion_id)
    if completion is None:
        raise not_found(f"student {student_id} has no completion {completion_id}")
    return render.json(completion)


async def delete(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    completion_id = path_id(request, "completion_id", "completion")
    async with request[WORK].block() as conn:
        deleted = await completions.delete(
            conn, student_id=student_id, completion_id=completion_id, actor=actor(request)
        )
    if not deleted:
        raise not_found(f"student {student_id} has no completion {completion_id}")
    return web.Response(status=204)
