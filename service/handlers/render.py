"""JSON responses, pages and their Link headers."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from ..models import Page
from ..validation import PLAIN_PAGE_QUERIES, encode_cursor

# Paths that go into a URL as they are: segments of RFC 3986 unreserved
# characters (no dot segments), one slash before each.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_~-]+)+")


def json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def page(request: web.Request, result: Page[Any], limit: int) -> web.Response:
    if result.last_key is None:
        return json({"items": result.items, "next_cursor": None})
    cursor = encode_cursor(result.last_key)
    # A relative reference: the client resolves it against the URL it called,
    # so no Host header is trusted to build it.
    path = request.path
    if request.rel_url.raw_query_string in PLAIN_PAGE_QUERIES and _PLAIN_PATH.fullmatch(path):
        # No other parameter to carry over and nothing to escape: the same
        # text URL.build makes, for about 30k fewer instructions (callgrind).
        link = f"{path}?limit={limit}&cursor={cursor}"
    else:
        query = {k: v for k, v in request.query.items() if k not in ("cursor", "limit")}
        query.update(limit=str(limit), cursor=cursor)
        link = str(URL.build(path=path, query=query))
    return json(
        {"items": result.items, "next_cursor": cursor},
        headers={"Link": f'<{link}>; rel="next"'},
    )
