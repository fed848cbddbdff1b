"""Bearer tokens with a read or write scope. Logs carry a token's name, never its secret."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import Problem
from .keys import TOKEN_NAME, TOKENS

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="enrollment"'


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Problem(401, detail, "unauthorized", headers={"WWW-Authenticate": challenge})


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    table = request.app[TOKENS]
    if not table.entries or request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthorized("send Authorization: Bearer <token>", None)
    token = table.find(presented.strip())
    if token is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    request[TOKEN_NAME] = token.name
    if token.scope != "write" and request.method not in READ_METHODS:
        raise Problem(
            403,
            f"token {token.name} may only read; this needs a write token",
            "insufficient-scope",
        )
    return await handler(request)
