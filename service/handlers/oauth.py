"""POST /oauth/token: OAuth 2.0 client credentials (RFC 6749 section 4.4).

Every configured token is a client: its name is the client id, its secret
the client secret. The client authenticates by HTTP Basic (RFC 6749 2.3.1:
id and secret each form-urlencoded inside it; sent raw, as some clients
such as timeback-oneroster do, they are taken too) or with `client_id` and
`client_secret` in the form, never both. The answer is an access token
(service/access_tokens.py) for the OneRoster scopes asked for, both of them
when `scope` is left out. Whatever the client's own scope, the access token
reads and never writes (auth.check_scope).

`read`, `write` and `registrar` are not scopes to ask for: every access
token reads the service's own API, and none may write, so they would grant
nothing or promise what is not given. Asking for them is invalid_scope.

Errors are RFC 6749 5.2 JSON (`error`, `error_description`), since OAuth
clients read them; what the request context answers before this handler (a
query parameter: 422, another method: 405) and a body over MAX_FORM (413) or
too slow (408) are problem+json as everywhere else.

Registered only on an instance with tokens (routes.py): without them there
is no client to authenticate, and the whole API is open.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import hdrs, web

from ..access_tokens import SCOPES, issue
from ..config import Token
from ..keys import CONFIG, TOKENS
from ..tokens import TokenTable
from ..validation.body import read_body
from . import render

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
# A token request is a few short fields, and anyone may send one: the body
# read for it is bounded well below MAX_BODY, which also bounds the work of
# parsing it (about a millisecond at most).
MAX_FORM = 16 * 1024
PARAMETERS = ("grant_type", "scope", "client_id", "client_secret")
# The service's own scope names: not OAuth scopes (see above).
OWN_SCOPES = frozenset({"read", "write", "registrar"})
CHALLENGE = 'Basic realm="enrollment"'
# RFC 6749 5.1: neither the token nor an error may be kept by any cache.
NO_STORE = {hdrs.CACHE_CONTROL: "no-store", hdrs.PRAGMA: "no-cache"}


class Refusal(Exception):
    """An RFC 6749 5.2 error: `error` is its code, the message its error_description.

    Descriptions hold only what RFC 6749 allows there (printable ASCII
    without `"` and `\\`) and never echo what the client sent.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


async def token(request: web.Request) -> web.Response:
    """An access token for the client the request authenticates."""
    tokens = request.app[TOKENS]
    try:
        client, scopes = await _grant(request, tokens)
    except Refusal as refusal:
        headers = dict(NO_STORE)
        if refusal.status == 401:
            # RFC 9110: a 401 names the scheme to use; RFC 6749 5.2 asks for
            # the one the client tried, Basic being the only one there is.
            headers[hdrs.WWW_AUTHENTICATE] = CHALLENGE
        body = {"error": refusal.error, "error_description": str(refusal)}
        return render.json(body, status=refusal.status, headers=headers)
    ttl = request.app[CONFIG].access_token_ttl
    access_token = issue(tokens.keys[client.name], client.name, scopes, int(time.time()) + ttl)
    log.info("access token issued to client %s for %d s: %s", client.name, ttl, " ".join(scopes))
    body = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
    return render.json(body, headers=NO_STORE)


async def _grant(request: web.Request, tokens: TokenTable) -> tuple[Token, tuple[str, ...]]:
    """The authenticated client and the scopes to grant it, or the Refusal to answer."""
    charset = (request.charset or "utf-8").lower()
    if request.content_type != FORM or charset not in ("utf-8", "utf8"):
        raise Refusal("invalid_request", f"send the parameters as {FORM}")
    form = _form(await read_body(request, MAX_FORM))
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise Refusal("invalid_request", "grant_type is missing: send client_credentials")
    if grant_type != "client_credentials":
        raise Refusal("unsupported_grant_type", "the only grant_type here is client_credentials")
    client = _client(request, form, tokens)
    return client, _scopes(form.get("scope"))


def _form(body: bytes) -> dict[str, str]:
    """The known parameters of the form; blank ones count as left out (RFC 6749 3.1)."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except ValueError:  # bytes outside ASCII, escapes outside UTF-8
        raise Refusal("invalid_request", f"the body is not a form: {FORM}, UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        # Unknown parameters are ignored (RFC 6749 3.2), so never named here.
        if name not in PARAMETERS or not value:
            continue
        if name in form:
            raise Refusal("invalid_request", f"{name} is sent more than once")
        form[name] = value
    return form


def _client(request: web.Request, form: dict[str, str], tokens: TokenTable) -> Token:
    """The configured token the request authenticates as a client, or invalid_client."""
    scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in form:
            raise Refusal(
                "invalid_request",
                "authenticate the client one way: HTTP Basic or client_secret, not both",
            )
        candidates = _basic(credentials)
        if "client_id" in form and all(form["client_id"] != name for name, _ in candidates):
            raise Refusal("invalid_request", "client_id is not the client of HTTP Basic")
    elif "client_id" in form and "client_secret" in form:
        candidates = [(form["client_id"], form["client_secret"])]
    else:
        raise Refusal(
            "invalid_client",
            "authenticate the client: HTTP Basic, or client_id and client_secret in the form",
            401,
        )
    for name, secret in candidates:
        if (client := tokens.client(name, secret)) is not None:
            return client
    raise Refusal("invalid_client", "unknown client or wrong secret", 401)


def _basic(credentials: str) -> list[tuple[str, str]]:
    """(id, secret) as RFC 6749 2.3.1 encodes them, then as sent, if that differs."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise Refusal(
            "invalid_client", "HTTP Basic must carry base64 of client_id:client_secret", 401
        )
    candidates = []
    try:
        candidates.append(
            (unquote_plus(raw_id, errors="strict"), unquote_plus(raw_secret, errors="strict"))
        )
    except UnicodeDecodeError:
        pass  # not form-urlencoded: taken as sent
    if (raw_id, raw_secret) not in candidates:
        candidates.append((raw_id, raw_secret))
    return candidates


def _scopes(requested: str | None) -> tuple[str, ...]:
    """The scopes to grant, in SCOPES order: those asked for, or all without `scope`."""
    asked = set((requested or "").split(" ")) - {""}
    if not asked:
        return SCOPES
    if asked & OWN_SCOPES:
        raise Refusal(
            "invalid_scope",
            "read, write and registrar are not scopes to ask for: every access token reads"
            " this service and none writes; ask for the OneRoster scopes, or leave scope out",
        )
    if not asked <= set(SCOPES):
        raise Refusal("invalid_scope", f"unknown scope; the scopes here are {' and '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in asked)
