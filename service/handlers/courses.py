"""/courses"""

from __future__ import annotations

from contextlib import nullcontext
from decimal import Decimal

from aiohttp import web

from .. import conditional
from ..auth import actor
from ..errors import not_found
from ..keys import LIMITS, WORK
from ..repositories import courses
from ..validation.body import json_object
from ..validation.fields import (
    MAX_ID,
    code,
    codes,
    decimal,
    fields,
    integer,
    meetings,
    nullable,
    read_only,
    set_on_create,
    sourced_id,
    text,
)
from ..validation.query import id_filter, page_query, path_id
from . import render

FIELDS = {
    "code": code,
    "title": text(1, 200),
    "capacity": nullable(integer(1, 100_000)),
    "waitlist_capacity": integer(0, 100_000),
    "enrolled": read_only,
    "waitlisted": read_only,
    "term_id": nullable(integer(1, MAX_ID)),
    "credits": decimal("0", "99.9", 1),
    "meetings": meetings,
    "prerequisites": codes(20),
}
CREATE = {**FIELDS, "sourced_id": sourced_id}
UPDATE = {**FIELDS, "sourced_id": set_on_create}
# ?code= is a code as the field takes it; ?q= is 3..100 characters after
# trimming (see Lookups in docs/api.md); ?term_id= an id; ?sourced_id= as
# the field.
FILTERS = {"code": code, "q": text(3, 100), "term_id": id_filter, "sourced_id": sourced_id}


async def create(request: web.Request) -> web.Response:
    data = fields(await json_object(request), CREATE, required=("code", "title"))
    async with request[WORK].block() as conn:
        course = await courses.create(
            conn,
            code=data["code"],
            title=data["title"],
            capacity=data.get("capacity"),
            waitlist_capacity=data.get("waitlist_capacity", 0),
            term_id=data.get("term_id"),
            credits=data.get("credits", Decimal(0)),
            meetings=data.get("meetings", []),
            prerequisites=data.get("prerequisites", []),
            sourced_id=data.get("sourced_id"),
            actor=actor(request),
        )
    return render.json(course, status=201, headers={"Location": f"/courses/{course.id}"})


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
            result = await courses.list_page(
                conn, after=page.after, limit=page.limit, **page.filters
            )
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    course_id = path_id(request, "course_id", "course")
    async with request[WORK].block() as conn:
        found = await courses.get(conn, course_id=course_id)
    if found is None:
        raise not_found(f"course {course_id} does not exist")
    if conditional.not_modified(request, found.version):
        return conditional.not_modified_response(found.version)
    return render.json(found.item, headers=conditional.tagged(found.version))


async def update(request: web.Request) -> web.Response:
    course_id = path_id(request, "course_id", "course")
    data = fields(await json_object(request), UPDATE, at_least_one=True)
    work = request[WORK]
    async with work.block() as conn:
        updated = await courses.update(
            conn,
            course_id=course_id,
            code=data.get("code"),
            title=data.get("title"),
            capacity=data.get("capacity", courses.UNCHANGED),
            waitlist_capacity=data.get("waitlist_capacity"),
            term_id=data.get("term_id", courses.UNCHANGED),
            credits=data.get("credits"),
            meetings=data.get("meetings"),
            prerequisites=data.get("prerequisites"),
            if_match=conditional.if_match(request),
            actor=actor(request),
            work=work,
        )
    if updated is None:
        raise not_found(f"course {course_id} does not exist")
    return render.json(updated.item, headers=conditional.tagged(updated.version))


async def delete(request: web.Request) -> web.Response:
    course_id = path_id(request, "course_id", "course")
    work = request[WORK]
    async with work.block() as conn:
        deleted = await courses.delete(
            conn,
            course_id=course_id,
            if_match=conditional.if_match(request),
            actor=actor(request),
            work=work,
        )
    if not deleted:
        raise not_found(f"course {course_id} does not exist")
    return web.Response(status=204)
