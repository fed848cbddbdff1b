"""Bearer tokens with a read, write or registrar scope. Logs carry a token's name, never its secret."""

from __future__ import annotations

from aiohttp import hdrs, web

from .config import Token
from .errors import Problem
from .keys import ACTOR, SCOPE
from .tokens import TokenTable

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_SCOPES = frozenset({"write", "registrar"})
CHALLENGE = 'Bearer realm="enrollment"'


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Problem(401, detail, "unauthorized", headers={"WWW-Authenticate": challenge})


def authenticate(tokens: TokenTable, request: web.Request) -> Token:
    """The configured token the request carries, or 401.

    Called before the handler by the request context (service/endpoint.py),
    which skips public routes and apps configured without tokens.
    """
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    token = tokens.by_header.get(header)
    if token is None:
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise _unauthorized("send Authorization: Bearer <token>", None)
        token = tokens.find(presented.strip(), header)
        if token is None:
            raise _unauthorized("the token is not valid", "invalid_token")
    return token


def actor(request: web.Request) -> str:
    """Who the events of this request's changes name: its token, or "" without tokens."""
    return request.get(ACTOR, "")


def check_scope(token: Token, method: str) -> None:
    """403 unless the token may use `method`: reads need any token, writes a write token.

    A registrar token can do all that a write token can, and override rules.
    """
    if token.scope not in WRITE_SCOPES and method not in READ_METHODS:
        raise Problem(
            403,
            f"token {token.name} may only read; this needs a write token",
            "insufficient-scope",
        )


def check_registrar(request: web.Request, field: str) -> None:
    """403 unless the request may override rules of registration (`field` names them).

    Tokens with the registrar scope may; without tokens every caller may.
    """
    scope = request.get(SCOPE)
    if scope is not None and scope != "registrar":
        raise Problem(
            403,
            f"{field}: only a token with the registrar scope may override rules of registration",
            "insufficient-scope",
        )
