"""Bearer tokens: configured ones with a read, write or registrar scope, and access tokens.

An access token (service/access_tokens.py, from POST /oauth/token) acts as
a read token named after its client, and holds OAuth scopes for the
OneRoster provider. Logs carry a token's name, never its secret.
"""

from __future__ import annotations

import time

from aiohttp import hdrs, web

from .access_tokens import SCOPES, AccessToken, Refused
from .config import Token
from .errors import Problem
from .keys import ACTOR, SCOPE
from .tokens import TokenTable

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_SCOPES = frozenset({"write", "registrar"})
CHALLENGE = 'Bearer realm="enrollment"'
# What a request may carry as its bearer token.
Credential = Token | AccessToken


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return Problem(401, detail, "unauthorized", headers={"WWW-Authenticate": challenge})


def authenticate(tokens: TokenTable, request: web.Request) -> Credential:
    """The configured token or the access token the request carries, or 401.

    Called before the handler by the request context (service/endpoint.py),
    which skips public routes and apps configured without tokens. A 401
    carries `WWW-Authenticate: Bearer realm="enrollment"`, with
    `error="invalid_token"` when a token was sent and is not valid: unknown,
    or an access token forged, altered, expired, or of a client whose
    secret has changed.
    """
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    token = tokens.by_header.get(header)
    if token is not None:
        return token
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _unauthorized("send Authorization: Bearer <token>", None)
    try:
        access = tokens.access(presented, header, time.time())
    except Refused as refused:
        raise _unauthorized(str(refused), "invalid_token") from None
    if access is not None:
        return access
    found = tokens.find(presented, header)
    if found is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    return found


def oauth_scopes(credential: Credential | None) -> frozenset[str]:
    """The OAuth scopes (access_tokens.SCOPES) a request's credential holds.

    An access token holds those it was issued with. A configured token sent
    as the bearer token itself holds them all: its client may get them all
    from POST /oauth/token. None stands for an instance without tokens,
    open to every caller: all of them too.
    """
    if isinstance(credential, AccessToken):
        return credential.scopes
    return frozenset(SCOPES)


def check_oauth_scope(credential: Credential | None, *accepted: str) -> None:
    """403 insufficient_scope unless the credential holds one of the `accepted` OAuth scopes.

    For the OneRoster provider: a roster-core endpoint accepts either
    scope, the others ROSTER_READONLY alone. `credential` is
    request.get(keys.CREDENTIAL) on a route the request context
    authenticates, or what authenticate() returned; None only on an instance
    without tokens (on a public route it is None too: keep such routes out of
    endpoint.PUBLIC_PATHS). The 403 carries RFC 6750's challenge, naming the
    scopes that would do.
    """
    if oauth_scopes(credential).isdisjoint(accepted):
        wanted = " ".join(accepted)
        raise Problem(
            403,
            f"this needs an access token with the scope {' or '.join(accepted)}",
            "insufficient-scope",
            headers={
                "WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope", scope="{wanted}"'
            },
        )


def actor(request: web.Request) -> str:
    """Who the events of this request's changes name: its token, or "" without tokens."""
    return request.get(ACTOR, "")


def check_scope(token: Credential, method: str) -> None:
    """403 unless the token may use `method`: reads need any token, writes a write token.

    A registrar token can do all that a write token can, and override rules.
    An access token only reads.
    """
    if token.scope not in WRITE_SCOPES and method not in READ_METHODS:
        if isinstance(token, AccessToken):
            who = f"an access token (client {token.name})"
        else:
            who = f"token {token.name}"
        raise Problem(
            403,
            f"{who} may only read; this needs a write token",
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
