"""JSON responses, pages and their Link headers."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from ..models import Page
from ..validation.query import PageQuery


def json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def page(request: web.Request, result: Page[Any], query: PageQuery) -> web.Response:
    if result.last_key is None:
        return json({"items": result.items, "next_cursor": None})
    cursor = query.cursor(result.last_key)
    # A relative reference: the client resolves it against the URL it called,
    # so no Host header is trusted to build it. The filters as they were sent,
    # which the cursor is bound to.
    link = str(
        URL.build(
            path=request.path,
            query={**dict(query.given), "limit": str(query.limit), "cursor": cursor},
        )
    )
    return json(
        {"items": result.items, "next_cursor": cursor},
        headers={"Link": f'<{link}>; rel="next"'},
    )
