"""What every request goes through: request id, token, query check, metrics, problem+json.

A POST that carries an Idempotency-Key goes through service/idempotency.py
on its way to the handler; one without it pays for one header lookup.

Each route's handler is wrapped once, when the routes are set up, by
`endpoint()`; the wrapper knows its route template, the query parameters
the route defines, and holds the app's token table and metrics, so a
request pays for no lookups to find them, and it writes the access line. It
does the work of a middleware without being one: an aiohttp middleware
costs two more coroutine layers on every request (the middleware and
aiohttp's own current-app fix-up), about a tenth of a worker's CPU at full
load.

Requests no route matches reach `unmatched`, registered last under a
catch-all path, so they are counted, logged and answered as problem+json too.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from multidict import istr

from . import idempotency
from .auth import READ_METHODS, authenticate, check_scope
from .db import BUSY, UNAVAILABLE, Autocommit, in_doubt, run, uncancelled
from .errors import Problem, busy, render, unavailable
from .keys import ACTOR, CONFIG, CREDENTIAL, METRICS, SCOPE, TOKENS
from .logs import AccessLog
from .oneroster import PREFIX as ONEROSTER_PREFIX
from .oneroster import errors as oneroster_errors
from .validation.query import check_query

log = logging.getLogger(__name__)
ACCESS_LOGGER = logging.getLogger("service.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The route label of requests no route matched (and of those aiohttp's HTTP
# parser refused, which never reach a handler).
UNMATCHED = "unmatched"
# The token endpoint (registered with tokens only) authenticates its client
# itself, from the request's own credentials (handlers/oauth.py).
TOKEN_PATH = "/oauth/token"
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/{asset}", TOKEN_PATH}
)
# The paths /docs/{asset} stands for, as the catch-all sees them.
PUBLIC_PREFIX = "/docs/"

_HTTP_DETAILS = {
    404: "no resource at this path",
    405: "this method is not allowed on this path",
    413: "the request body is larger than 1 MiB",
}
# aiohttp's own errors of a condition the service also names: one problem
# type for it, whichever refuses the request (a body over client_max_size is
# validation.body's 413).
_HTTP_SLUGS = {413: "payload-too-large"}
# An incoming X-Request-ID is kept only if it is safe to echo and to log.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Header names as istr, like aiohttp's own hdrs: a str key is case-folded
# on every lookup.
X_REQUEST_ID = istr("X-Request-ID")
# On every response: no MIME sniffing of what we send, and a Server header
# that names no versions (aiohttp's own names Python's and its own).
SAFE_HEADERS = {hdrs.X_CONTENT_TYPE_OPTIONS: "nosniff", hdrs.SERVER: "enrollment-service"}

# Request ids: a random prefix per process and a counter. Unique across
# workers and restarts, and far cheaper than a uuid4 per request.
_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def endpoint(
    app: web.Application,
    method: str,
    route: str,
    handler: Handler,
    query: frozenset[str] | None,
) -> Handler:
    """`handler` inside the request context, for `method` (or "*") and `route` of `app`.

    `query` names the query parameters the route defines (None: not checked).
    """
    metrics = app[METRICS]
    tokens = app[TOKENS]
    access_log = AccessLog(ACCESS_LOGGER) if app[CONFIG].access_log else None
    # OPTIONS routes are CORS preflights (cors.py): a browser sends them without
    # the page's Authorization header, so they need no token.
    public = route in PUBLIC_PATHS or method == "OPTIONS" or not tokens.entries
    # The catch-all stands for every path: a public one with a method it does
    # not serve (TRACE /healthz) gets its 405 without a token.
    public_paths = PUBLIC_PATHS if route == UNMATCHED else frozenset()
    # With CORS_ORIGINS, what a route answers depends on Origin (cors.py): no
    # shared cache may hand one origin's answer to another.
    vary_origin = bool(app[CONFIG].cors_origins) and route != UNMATCHED
    reads_only = method in READ_METHODS  # any token may read; "*" is checked per request
    # A write runs to its end even if the request is cancelled (at shutdown):
    # a commit waiting for the synchronous standby must never be cancelled
    # (db.uncancelled says why). The "*" routes (404, 405) touch no database.
    writes = not reads_only and method != "*"
    # Honours Idempotency-Key (service/idempotency.py); not the token endpoint,
    # whose answers, access tokens, must never be stored or replayed.
    keyed = method == "POST" and route != TOKEN_PATH
    # Where the handler's statements run unless idempotency.answer runs them
    # in its transaction (db.Work).
    autocommit = Autocommit(app)
    idempotency_key = idempotency.IDEMPOTENCY_KEY
    perf_counter = time.perf_counter
    # The provider's paths answer every error in the binding's form
    # (service/oneroster/errors.py); the catch-all decides by the path.
    binding = route.startswith(ONEROSTER_PREFIX)

    async def context(request: web.Request) -> web.StreamResponse:
        incoming = request.headers.get(X_REQUEST_ID)
        if incoming and _REQUEST_ID.fullmatch(incoming):
            rid = incoming
        else:
            rid = f"{_ID_PREFIX}-{next(_id_counter):x}"
        token = None
        metrics.requests_in_flight += 1
        started = perf_counter()
        try:
            if not public and not (public_paths and _is_public(request.path)):
                token = authenticate(tokens, request)
                if not reads_only:
                    check_scope(token, request.method)
                request[ACTOR] = token.name
                request[SCOPE] = token.scope
                request[CREDENTIAL] = token
            if query is not None and request.query_string:
                check_query(request.query, query)
            if keyed and idempotency_key in request.headers:
                response = await uncancelled(idempotency.answer(handler, request))
            elif writes:
                response = await uncancelled(run(handler, request, autocommit))
            else:
                response = await run(handler, request, autocommit)
        except Exception as exc:
            in_binding = binding or (
                route == UNMATCHED and request.path.startswith(ONEROSTER_PREFIX + "/")
            )
            response = _error_response(
                request, exc, rid, oneroster_errors.render if in_binding else render
            )
        finally:
            metrics.requests_in_flight -= 1
        headers = response.headers
        headers[X_REQUEST_ID] = rid
        headers.update(SAFE_HEADERS)
        if vary_origin:
            headers.add(hdrs.VARY, "Origin")
        if token is not None:
            # What a token may read is nobody else's: no cache keeps it.
            headers[hdrs.CACHE_CONTROL] = "no-store"
        seconds = perf_counter() - started
        status = response.status
        metrics.observe(method if method != "*" else request.method, route, status, seconds)
        if access_log is not None:
            access_log.write(
                {
                    "request_id": rid,
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "token": token.name if token is not None else None,
                    "remote": request.remote,
                }
            )
        return response

    return context


async def unmatched(request: web.Request) -> web.StreamResponse:
    """404, or 405 with Allow when another method would have matched.

    A path that exists without its trailing slash (`/students/`) is a 404
    that names the path to use: no redirect, which would turn a POST into
    a second request and hide the mistake from a script.
    """
    allowed = await _methods(request)
    if allowed:
        allow = {"Allow": ",".join(sorted(allowed))}
        raise Problem(405, _HTTP_DETAILS[405], headers=allow)
    path = request.path
    if len(path) > 1 and path.endswith("/"):
        bare = path.rstrip("/") or "/"
        if await _methods(request.clone(rel_url=request.rel_url.with_path(bare))):
            raise Problem(
                404, f"no resource at this path; did you mean {bare} (no trailing slash)?"
            )
    raise Problem(404, _HTTP_DETAILS[404])


async def _methods(request: web.Request) -> set[str]:
    """The methods the routes serve at the request's path, the catch-all left out."""
    allowed: set[str] = set()
    catch_all = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not catch_all:
            allowed |= (await resource.resolve(request))[1]
    return allowed


# Any path at all, newlines included; registered after every real route.
CATCH_ALL = r"/{path:[\s\S]*}"


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX)


def _error_response(
    request: web.Request,
    exc: Exception,
    rid: str,
    render: Callable[[Problem], web.Response] = render,
) -> web.StreamResponse:
    """Every error leaves as problem+json (or `render`'s form); nothing internal leaks."""
    if isinstance(exc, Problem):
        return render(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        # aiohttp's own errors, such as a body over client_max_size.
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        # A 403 here is a refused CORS preflight: aiohttp-cors's text says why.
        if exc.status == 403 and exc.text:
            detail = exc.text
        else:
            detail = _HTTP_DETAILS.get(exc.status, exc.reason)
        return render(Problem(exc.status, detail, _HTTP_SLUGS.get(exc.status, ""), headers=headers))
    extra = {"request_id": rid}
    write = request.method not in READ_METHODS
    problem = database_problem(exc, retry_after=request.app[CONFIG].retry_after, write=write)
    if problem is not None:
        log.warning("%s: %s: %s", problem.slug, type(exc).__name__, exc, extra=extra)
        return render(problem)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc, extra=extra)
    return render(Problem(500, "the server failed to answer this request"))


def database_problem(exc: Exception, *, retry_after: int, write: bool) -> Problem | None:
    """The 503 an error of the database's is answered with; None for any other error.

    db.BUSY first: a cancelled statement is also a class 57 error, a pool
    wait that timed out a TimeoutError. `write`: the request may have changed
    something, whose fate a lost connection leaves in doubt.
    """
    if isinstance(exc, BUSY):
        return busy(
            "the database is busy: this request waited too long for a lock or ran out of time; retry"
        )
    if isinstance(exc, UNAVAILABLE):
        return unavailable(retry_after, in_doubt=write and in_doubt(exc))
    return None
