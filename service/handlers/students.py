"""/students"""

from __future__ import annotations

from contextlib import nullcontext

from aiohttp import web

from .. import conditional
from ..auth import actor
from ..errors import not_found
from ..keys import LIMITS, WORK
from ..repositories import students
from ..validation.body import json_object
from ..validation.fields import email, fields, set_on_create, sourced_id, text
from ..validation.query import page_query, path_id
from . import render

CREATE = {"name": text(1, 200), "email": email, "sourced_id": sourced_id}
UPDATE = {**CREATE, "sourced_id": set_on_create}
# ?email= is an email as the field takes it; ?q= is 3..100 characters after
# trimming, like a name (see Lookups in docs/api.md); ?sourced_id= as the field.
FILTERS = {"email": email, "q": text(3, 100), "sourced_id": sourced_id}


async def create(request: web.Request) -> web.Response:
    data = fields(await json_object(request), CREATE, required=("name", "email"))
    async with request[WORK].block() as conn:
        student = await students.create(conn, **data, actor=actor(request))
    return render.json(student, status=201, headers={"Location": f"/students/{student.id}"})


async def list_(request: web.Request) -> web.Response:
    page = page_query(request, FILTERS)
    # A search holds one of its client's places (service/limits.py) while it runs.
    searching = (
        request.app[LIMITS].searches.place(request)
        if page.filters["q"] is not None
        else nullcontext()
    )
    with searching:
        async with request[WORK].block() as conn:
            result = await students.list_page(
                conn, after=page.after, limit=page.limit, **page.filters
            )
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    async with request[WORK].block() as conn:
        found = await students.get(conn, student_id=student_id)
    if found is None:
        raise not_found(f"student {student_id} does not exist")
    if conditional.not_modified(request, found.version):
        return conditional.not_modified_response(found.version)
    return render.json(found.item, headers=conditional.tagged(found.version))


async def update(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    data = fields(await json_object(request), UPDATE, at_least_one=True)
    async with request[WORK].block() as conn:
        updated = await students.update(
            conn,
            student_id=student_id,
            name=data.get("name"),
            email=data.get("email"),
            if_match=conditional.if_match(request),
            actor=actor(request),
        )
    if updated is None:
        raise not_found(f"student {student_id} does not exist")
    return render.json(updated.item, headers=conditional.tagged(updated.version))


async def delete(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    work = request[WORK]
    async with work.block() as conn:
        deleted = await students.delete(
            conn,
            student_id=student_id,
            if_match=conditional.if_match(request),
            actor=actor(request),
            work=work,
        )
    if not deleted:
        raise not_found(f"student {student_id} does not exist")
    return web.Response(status=204)
