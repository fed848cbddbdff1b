"""Middlewares: every error leaves as problem+json."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from .db import UNAVAILABLE
from .errors import Problem, render, unavailable
from .keys import CONFIG

log = logging.getLogger(__name__)

_HTTP_DETAILS = {
    404: "no resource at this path",
    405: "this method is not allowed on this path",
    413: "the request body is larger than 1 MiB",
}


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return render(problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own errors (unknown route, wrong method, body too large).
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        detail = _HTTP_DETAILS.get(exc.status, exc.reason)
        return render(Problem(exc.status, detail, headers=headers))
    except UNAVAILABLE as exc:
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return render(unavailable(request.app[CONFIG].retry_after))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(Problem(500, "the server failed to answer this request"))
