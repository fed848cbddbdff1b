"""The provider's routes (service/routes.py): parse, read, render in the binding's envelopes.

Each handler is made by one of the factories below for its collection and
envelope: `/terms` answers under `academicSessions`, `/students` under
`users`, as the binding has them. Records arrive as JSON text from the
database and are put in their envelope as they are.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from ..keys import CONFIG, WORK
from ..repositories import oneroster
from ..repositories.oneroster import Page, Where
from . import PREFIX, query
from .errors import not_found
from .query import Query
from .records import RecordType


def where(request: web.Request) -> Where:
    config = request.app[CONFIG]
    return Where(f"{config.oneroster_base_url}{PREFIX}/", config.oneroster_school_id)


def collection(name: str, envelope: str, record: RecordType):
    """GET of collection `name` (sql/oneroster.sql), answered under `envelope`."""

    async def handler(request: web.Request) -> web.Response:
        asked = query.collection(request, record)
        async with request[WORK].block() as conn:
            page = await oneroster.collection(conn, name=name, query=asked, where=where(request))
        return page_response(request, envelope, page, asked)

    return handler


def single(name: str, record: RecordType):
    """GET of one record of collection `name` by its sourcedId; 404 if there is none."""

    async def handler(request: web.Request) -> web.Response:
        sourced_id = request.match_info["sourcedId"]
        picked = query.fields(request, record)
        async with request[WORK].block() as conn:
            found = await oneroster.record(
                conn, name=name, sourced_id=sourced_id, fields=picked, where=where(request)
            )
        if found is None:
            raise not_found(f"no {record.single} has sourcedId {sourced_id[:64]!r}")
        return record_response(record.single, found)

    return handler


def owned(name: str, envelope: str, owner: str, record: RecordType):
    """GET of the records of one owner (class_students and the like); 404 if it does not exist."""

    async def handler(request: web.Request) -> web.Response:
        sourced_id = request.match_info["sourcedId"]
        asked = query.collection(request, record)
        async with request[WORK].block() as conn:
            page = await oneroster.owned(
                conn, name=name, owner=sourced_id, query=asked, where=where(request)
            )
        if page is None:
            raise not_found(f"no {owner} has sourcedId {sourced_id[:64]!r}")
        return page_response(request, envelope, page, asked)

    return handler


def orgs(record: RecordType):
    """GET /orgs and /schools: the one school."""

    async def handler(request: web.Request) -> web.Response:
        asked = query.collection(request, record)
        page = await _orgs(request, asked)
        return page_response(request, "orgs", page, asked)

    return handler


def org(record: RecordType):
    """GET /orgs/{sourcedId} and /schools/{sourcedId}: the school, if it is that one."""

    async def handler(request: web.Request) -> web.Response:
        sourced_id = request.match_info["sourcedId"]
        asked = Query(fields=query.fields(request, record))
        if sourced_id != request.app[CONFIG].oneroster_school_id:
            raise not_found(f"no org has sourcedId {sourced_id[:64]!r}")
        page = await _orgs(request, asked)
        return record_response("org", page.records[0])

    return handler


def school_classes(record: RecordType):
    """GET /schools/{sourcedId}/classes: every class, of the one school."""
    classes = collection("classes", "classes", record)

    async def handler(request: web.Request) -> web.Response:
        sourced_id = request.match_info["sourcedId"]
        if sourced_id != request.app[CONFIG].oneroster_school_id:
            raise not_found(f"no school has sourcedId {sourced_id[:64]!r}")
        return await classes(request)

    return handler


async def _orgs(request: web.Request, asked: Query) -> Page:
    config = request.app[CONFIG]
    async with request[WORK].block() as conn:
        return await oneroster.orgs(
            conn,
            query=asked,
            school=config.oneroster_school_id,
            name=config.oneroster_school_name,
            modified_at=config.oneroster_school_modified_at,
        )


def record_response(single: str, record: str) -> web.Response:
    body = f'{{"{single}":{record}}}'.encode()
    return web.Response(body=body, content_type="application/json")


def page_response(request: web.Request, envelope: str, page: Page, asked: Query) -> web.Response:
    """The page under `envelope`, with X-Total-Count and Link (first, last, prev, next)."""
    body = f'{{"{envelope}":[{",".join(page.records)}]}}'.encode()
    headers = {"X-Total-Count": str(page.total), "Link": links(request, page.total, asked)}
    return web.Response(body=body, content_type="application/json", headers=headers)


def links(request: web.Request, total: int, asked: Query) -> str:
    """RFC 8288 links to the first, last, previous and next pages, keeping the other parameters.

    Under ONEROSTER_BASE_URL when it is set; otherwise path-absolute
    references, resolved against the URL the client called (no Host header
    is trusted to build them).
    """
    limit, offset = asked.limit, asked.offset
    kept = [(k, v) for k, v in request.query.items() if k not in ("limit", "offset")]
    base = request.app[CONFIG].oneroster_base_url

    def at(start: int) -> str:
        url = URL.build(
            path=request.path, query=[*kept, ("limit", str(limit)), ("offset", str(start))]
        )
        return f"{base}{url}"

    last = max(total - 1, 0) // limit * limit
    found = [f'<{at(0)}>; rel="first"', f'<{at(last)}>; rel="last"']
    if offset > 0:
        found.append(f'<{at(max(min(offset, last + limit) - limit, 0))}>; rel="prev"')
    if offset + limit < total:
        found.append(f'<{at(offset + limit)}>; rel="next"')
    return ", ".join(found)
