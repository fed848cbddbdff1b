"""Conditional requests (RFC 9110 section 13) on students, courses, terms: ETag, If-*-Match.

The ETag is the row's `xmin` as text: the id of the transaction that wrote
the current version of the row. PostgreSQL sets it on every write at no cost,
and a course's `enrolled` and `waitlisted` are written into its row by the
seat triggers (sql/functions/counts.sql), so an enrollment, a drop or a
promotion changes the course's ETag too. It exposes a transaction number,
which the event ids (xid << 20 | n, sql/functions/events.sql) publish
already, and no data. It is 32 bits and wraps: a tag held across 2**32 transactions, or across a restore into another
cluster (rows get new xmin values there), could by chance name a different
version of the same row; nobody holds a tag that long, and clients re-read
after a restore. A version column would rule that out at the price of a
migration and a trigger on every seat change, the service's hottest write.

The GET, the answer to a PATCH and the If-Match compare all read the same
`xmin`, in the SQL of sql/students.sql, sql/courses.sql and sql/terms.sql.
The compare is in the UPDATE's or DELETE's WHERE clause, so it and the
write are one step: a concurrent change that commits first makes PostgreSQL
re-check the WHERE on the newest version of the row (READ COMMITTED), which
then no longer matches.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from multidict import istr

ANY = "*"
# As RFC 9110 spells it (aiohttp's hdrs.ETAG is "Etag"); istr, like hdrs.
ETAG = istr("ETag")


def etag(version: str) -> str:
    """The strong entity tag of a row version."""
    return f'"{version}"'


def tagged(version: str) -> dict[str, str]:
    """The headers of a 200 that carries this version."""
    return {ETAG: etag(version)}


def if_match(request: web.Request) -> tuple[str, ...] | None:
    """The versions If-Match accepts; None when any will do (no header, or `*`).

    Strong comparison (RFC 9110 8.8.3.2): a weak tag (W/"...") matches nothing.
    A header aiohttp cannot parse names no version, so the change is refused
    (412) rather than made without the check the client asked for.
    """
    header = request.headers.get(hdrs.IF_MATCH)
    if header is None or header == ANY:
        return None
    return tuple(tag.value for tag in request.if_match or () if not tag.is_weak)


def not_modified(request: web.Request, version: str) -> bool:
    """Whether If-None-Match names this version (weak comparison) or is `*`."""
    header = request.headers.get(hdrs.IF_NONE_MATCH)
    if header is None:
        return False
    if header == ANY:
        return True
    return any(tag.value == version for tag in request.if_none_match or ())


def not_modified_response(version: str) -> web.Response:
    """304: no body; the ETag, as a 200 would have sent it (RFC 9110 15.4.5)."""
    return web.Response(status=304, headers=tagged(version))
