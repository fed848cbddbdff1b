"""/terms"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import conditional
from ..auth import actor
from ..errors import FieldError, Problem, invalid, not_found
from ..keys import WORK
from ..repositories import terms
from ..validation.body import json_object
from ..validation.fields import (
    Bad,
    calendar_date,
    code,
    decimal,
    fields,
    nullable,
    set_on_create,
    sourced_id,
    text,
    timestamp,
)
from ..validation.query import page_query, path_id
from . import render

FIELDS = {
    "code": code,
    "title": text(1, 200),
    "starts_on": calendar_date,
    "ends_on": calendar_date,
    "registration_opens_at": nullable(timestamp),
    "registration_closes_at": nullable(timestamp),
    "drop_deadline": nullable(timestamp),
    "max_credits": nullable(decimal("0", "99.9", 1)),
}
CREATE = {**FIELDS, "sourced_id": sourced_id}
UPDATE = {**FIELDS, "sourced_id": set_on_create}
REQUIRED = ("code", "title", "starts_on", "ends_on")
# ?code= is a code as the field takes it; ?sourced_id= as the field.
FILTERS = {"code": code, "sourced_id": sourced_id}


def checked(document: dict[str, Any], checks: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The body's fields checked by `checks` (CREATE or UPDATE; `options` as fields() takes
    them), and each pair it gives in order.

    One 422 names every bad field: a pair out of order (ends_on before
    starts_on) among the others. A PATCH's pair is checked again against
    the stored term, by the database (repositories/terms.py).
    """
    try:
        data = fields(document, checks, **options)
    except Problem as problem:
        valid = {}
        for name, value in document.items():
            try:
                valid[name] = checks[name](value)
            except (KeyError, Bad):
                pass
        raise invalid(problem.errors + _out_of_order(valid)) from None
    if errors := _out_of_order(data):
        raise invalid(errors)
    return data


def _out_of_order(data: dict[str, Any]) -> list[FieldError]:
    return [
        order.error(data)
        for order in terms.ORDERS
        if data.get(order.first) is not None
        and data.get(order.second) is not None
        and not order.holds(data[order.first], data[order.second])
    ]


async def create(request: web.Request) -> web.Response:
    data = checked(await json_object(request), CREATE, required=REQUIRED)
    async with request[WORK].block() as conn:
        term = await terms.create(conn, **data, actor=actor(request))
    return render.json(term, status=201, headers={"Location": f"/terms/{term.id}"})


async def list_(request: web.Request) -> web.Response:
    page = page_query(request, FILTERS)
    async with request[WORK].block() as conn:
        result = await terms.list_page(conn, after=page.after, limit=page.limit, **page.filters)
    return render.page(request, result, page)


async def get(request: web.Request) -> web.Response:
    term_id = path_id(request, "term_id", "term")
    async with request[WORK].block() as conn:
        found = await terms.get(conn, term_id=term_id)
    if found is None:
        raise not_found(f"term {term_id} does not exist")
    if conditional.not_modified(request, found.version):
        return conditional.not_modified_response(found.version)
    return render.json(found.item, headers=conditional.tagged(found.version))


async def update(request: web.Request) -> web.Response:
    term_id = path_id(request, "term_id", "term")
    data = checked(await json_object(request), UPDATE, at_least_one=True)
    work = request[WORK]
    async with work.block() as conn:
        updated = await terms.update(
            conn,
            term_id=term_id,
            changes=data,
            if_match=conditional.if_match(request),
            actor=actor(request),
            work=work,
        )
    if updated is None:
        raise not_found(f"term {term_id} does not exist")
    return render.json(updated.item, headers=conditional.tagged(updated.version))


async def delete(request: web.Request) -> web.Response:
    term_id = path_id(request, "term_id", "term")
    work = request[WORK]
    async with work.block() as conn:
        deleted = await terms.delete(
            conn,
            term_id=term_id,
            if_match=conditional.if_match(request),
            actor=actor(request),
            work=work,
        )
    if not deleted:
        raise not_found(f"term {term_id} does not exist")
    return web.Response(status=204)
