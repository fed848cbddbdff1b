"""Bearer tokens with a read or write scope. Logs carry a token's name, never its secret."""

from __future__ import annotations

from aiohttp import web

from .errors import Problem
from .models import RequestInfo
from .tokens import TokenTable

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = 'Bearer realm="enrollment"'


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Problem(401, detail, "unauthorized", headers={"WWW-Authenticate": challenge})


def authorize(tokens: TokenTable, request: web.Request, info: RequestInfo) -> None:
    """Raise 401 or 403 unless the request carries a token good for it.

    Called before the handler by the request context (service/endpoint.py),
    which skips public routes and apps configured without tokens. The token's
    name goes into `info`, for the access log.
    """
    header = request.headers.get("Authorization", "")
    token = tokens.by_header.get(header)
    if token is None:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise _unauthorized("send Authorization: Bearer <token>", None)
        token = tokens.find(presented.strip(), header)
        if token is None:
            raise _unauthorized("the token is not valid", "invalid_token")
    info.token = token.name
    if token.scope != "write" and request.method not in READ_METHODS:
        raise Problem(
            403,
            f"token {token.name} may only read; this needs a write token",
            "insufficient-scope",
        )
