"""/students/{student_id}/holds"""

from __future__ import annotations

from aiohttp import web

from ..auth import actor
from ..errors import not_found
from ..keys import WORK
from ..repositories import holds
from ..validation.body import json_object
from ..validation.fields import fields, text
from ..validation.query import page_query, path_id
from . import render

CREATE = {"reason": text(1, 200)}


async def create(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    data = fields(await json_object(request), CREATE, required=("reason",))
    async with request[WORK].block() as conn:
        hold = await holds.create(
            conn, student_id=student_id, reason=data["reason"], actor=actor(request)
        )
    if hold is None:
        raise not_found(f"student {student_id} does not exist")
    location = f"/students/{student_id}/holds/{hold.id}"
    return render.json(hold, status=201, headers={"Location": location})


async def list_(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    page = page_query(request)
    async with request[WORK].block() as conn:
        result = await holds.list_of_student(
            conn, student_id=student_id, after=page.after, limit=page.limit
        )
    if result is None:
        raise not_found(f"student {student_id} does not exist")
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    hold_id = path_id(request, "hold_id", "hold")
    async with request[WORK].block() as conn:
        hold = await holds.get(conn, student_id=student_id, hold_id=hold_id)
    if hold is None:
        raise not_found(f"student {student_id} has no hold {hold_id}")
    return render.json(hold)


async def delete(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    hold_id = path_id(request, "hold_id", "hold")
    work = request[WORK]
    async with work.block() as conn:
        deleted = await holds.delete(
            conn, student_id=student_id, hold_id=hold_id, actor=actor(request), work=work
        )
    if not deleted:
        raise not_found(f"student {student_id} has no hold {hold_id}")
    return web.Response(status=204)
