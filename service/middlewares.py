"""The middleware: request context (ids, tokens, metrics, problems)."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from . import logs
from .auth import authorize
from .db import UNAVAILABLE
from .errors import Problem, render, unavailable
from .keys import CONFIG, METRICS, REQUEST_INFO
from .models import RequestInfo

log = logging.getLogger(__name__)

_HTTP_DETAILS = {
    404: "no resource at this path",
    405: "this method is not allowed on this path",
    413: "the request body is larger than 1 MiB",
}
# An incoming X-Request-ID is kept only if it is safe to echo and to log.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


# Request ids: a random prefix per process and a counter. Unique across
# workers and restarts, and far cheaper than a uuid4 per request.
_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, tokens, metrics by route template, problem+json for every error.

    One middleware rather than several: each layer costs a few microseconds
    on every request, and these concerns wrap the same call.
    """
    incoming = request.headers.get("X-Request-ID")
    rid = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else _new_request_id()
    info = request[REQUEST_INFO] = RequestInfo(rid)
    token = logs.request_id.set(rid)
    metrics = request.app[METRICS]
    metrics.started()
    started = time.perf_counter()
    status = 500
    try:
        try:
            authorize(request)
            response = await handler(request)
        except Exception as exc:
            response = _error_response(request, exc)
        status = response.status
        response.headers["X-Request-ID"] = rid
        return response
    finally:
        elapsed = time.perf_counter() - started
        metrics.finished()
        info.route = route = logs.route_of(request)
        metrics.observe(request.method, route, status, elapsed)
        logs.request_id.reset(token)


def _error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """Every error leaves as problem+json; nothing internal leaks."""
    if isinstance(exc, Problem):
        return render(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        # aiohttp's own errors (unknown route, wrong method, body too large).
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        detail = _HTTP_DETAILS.get(exc.status, exc.reason)
        return render(Problem(exc.status, detail, headers=headers))
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return render(unavailable(request.app[CONFIG].retry_after))
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return render(Problem(500, "the server failed to answer this request"))
