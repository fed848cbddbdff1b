"""/students/{student_id}/terms/{term_id}"""

from __future__ import annotations

from aiohttp import web

from ..auth import actor
from ..keys import WORK
from ..repositories import student_terms
from ..validation.body import json_object
from ..validation.fields import decimal, fields, nullable, read_only, timestamp
from ..validation.query import path_id
from . import render

# A PUT sets both: a field left out is null. max_credits as the column
# stores it, numeric(3, 1).
SETTINGS = {
    "registration_opens_at": nullable(timestamp),
    "max_credits": nullable(decimal("0", "99.9", 1)),
    "credits": read_only,
}


async def get(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    term_id = path_id(request, "term_id", "term")
    async with request[WORK].block() as conn:
        settings = await student_terms.get(conn, student_id=student_id, term_id=term_id)
    return render.json(settings)


async def put(request: web.Request) -> web.Response:
    student_id = path_id(request, "student_id", "student")
    term_id = path_id(request, "term_id", "term")
    data = fields(await json_object(request), SETTINGS)
    work = request[WORK]
    async with work.block() as conn:
        settings = await student_terms.put(
            conn,
            student_id=student_id,
            term_id=term_id,
            registration_opens_at=data.get("registration_opens_at"),
            max_credits=data.get("max_credits"),
            actor=actor(request),
            work=work,
        )
    return render.json(settings)
