"""Bearer tokens with a read or write scope. Logs carry a token's name, never its secret."""

from __future__ import annotations

from aiohttp import web

from .errors import Problem
from .keys import REQUEST_INFO, TOKENS

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="enrollment"'


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Problem(401, detail, "unauthorized", headers={"WWW-Authenticate": challenge})


def authorize(request: web.Request) -> None:
    """Raise 401 or 403 unless the request carries a token good for it.

    Called by the request_context middleware (one middleware layer instead of
    two), before routing's handler runs; public paths and an app without
    tokens pass.
    """
    table = request.app[TOKENS]
    if not table.entries or request.path in PUBLIC_PATHS:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthorized("send Authorization: Bearer <token>", None)
    token = table.find(presented.strip())
    if token is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    request[REQUEST_INFO].token = token.name
    if token.scope != "write" and request.method not in READ_METHODS:
        raise Problem(
            403,
            f"token {token.name} may only read; this needs a write token",
            "insufficient-scope",
        )
