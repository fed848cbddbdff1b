"""POST /oauth/token: OAuth 2.0 client credentials, and the access tokens it gives."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from dataclasses import replace
from urllib.parse import quote_plus

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service import routes, tokens
from service.access_tokens import (
    ROSTER_CORE_READONLY,
    ROSTER_READONLY,
    SCOPES,
    AccessToken,
    issue,
    signing_key,
)
from service.app import OPENAPI_DOCUMENT, create_app
from service.auth import check_oauth_scope, oauth_scopes
from service.config import Config, Token
from service.errors import Problem
from service.keys import CREDENTIAL, TOKENS

from .api import problem

REGISTRAR = Token("registrar", "write", "3f9c0b6a1d2e4f5a8b7c6d5e4f3a2b1c")
DASHBOARD = Token("dashboard", "read", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d")
# A name and a secret that form-urlencoding changes: `openssl rand -base64`
# secrets hold + and /, and a name may hold spaces.
SIS = Token("district sis", "read", "q+Vb/0sZ3kLw9x%2Fr7T1mN4pQ8uYc6eH2==")
BOTH = f"{ROSTER_CORE_READONLY} {ROSTER_READONLY}"
STUDENT = {"name": "Ada Lovelace", "email": "ada@example.org"}
ERROR = OPENAPI_DOCUMENT["components"]["schemas"]["OAuthError"]["properties"]


def basic(client_id: str, secret: str, *, encoded: bool = True) -> dict[str, str]:
    """HTTP Basic as RFC 6749 2.3.1 has it (each part form-urlencoded), or as sent raw."""
    if encoded:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def basic_of(token: Token) -> dict[str, str]:
    return basic(token.name, token.secret)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def in_form(token: Token) -> dict[str, str]:
    return {"client_id": token.name, "client_secret": token.secret}


GRANT = {"grant_type": "client_credentials"}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def secured_config(config: Config) -> Config:
    return replace(config, tokens=(REGISTRAR, DASHBOARD, SIS))


@pytest.fixture
async def secured(secured_config: Config, aiohttp_client) -> TestClient:
    """The real app with a write token and two read tokens, each an OAuth client."""
    return await aiohttp_client(create_app(secured_config))


async def granted(
    client: TestClient, form: dict[str, str], headers: dict[str, str] | None = None
) -> dict:
    """The 200 answer to a token request, checked against RFC 6749 5.1."""
    response = await client.post("/oauth/token", data=form, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    return body


async def refused(response: aiohttp.ClientResponse, status: int, error: str) -> str:
    """The error_description of an RFC 6749 5.2 error, after checking its form."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"  # not problem+json
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["error"] == error, body
    description = body["error_description"]
    # RFC 6749 5.2 allows only these characters; the document bounds the length.
    assert re.fullmatch(ERROR["error_description"]["pattern"], description), description
    assert len(description) <= ERROR["error_description"]["maxLength"]
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="enrollment"'
    return description


# -- client authentication -------------------------------------------------------------


async def test_a_client_authenticated_by_http_basic_gets_an_access_token_that_reads(secured):
    body = await granted(secured, GRANT, basic(DASHBOARD.name, DASHBOARD.secret))

    assert body["expires_in"] == 3600  # ACCESS_TOKEN_TTL's default
    assert body["scope"] == BOTH
    assert DASHBOARD.secret not in body["access_token"]
    response = await secured.get("/students", headers=bearer(body["access_token"]))
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_client_authenticated_in_the_form_gets_an_access_token(secured):
    body = await granted(secured, GRANT | in_form(REGISTRAR))

    response = await secured.get("/courses", headers=bearer(body["access_token"]))
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "headers",
    [
        basic(SIS.name, SIS.secret),  # each part form-urlencoded, as RFC 6749 2.3.1 says
        basic(SIS.name, SIS.secret, encoded=False),  # raw, as timeback-oneroster sends them
    ],
    ids=["encoded", "raw"],
)
async def test_http_basic_takes_the_id_and_secret_encoded_or_raw(secured, headers):
    body = await granted(secured, GRANT, headers)

    response = await secured.get("/students", headers=bearer(body["access_token"]))
    assert response.status == 200


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        # a wrong secret, by HTTP Basic
        (GRANT, basic(DASHBOARD.name, REGISTRAR.secret)),
        # a wrong secret, in the form
        (GRANT | {"client_id": DASHBOARD.name, "client_secret": REGISTRAR.secret}, None),
        # the right secret, one character short
        (GRANT, basic(DASHBOARD.name, DASHBOARD.secret[:-1])),
        # a client that is not configured
        (GRANT, basic("nobody", DASHBOARD.secret)),
        # a configured token's secret as its own id
        (GRANT | {"client_id": DASHBOARD.secret, "client_secret": DASHBOARD.secret}, None),
        # no client authentication at all
        (GRANT, None),
        # an id without its secret
        (GRANT | {"client_id": DASHBOARD.name}, None),
        # a bearer token is not client authentication
        (GRANT, {"Authorization": f"Bearer {DASHBOARD.secret}"}),
        # Basic that is not base64 of id:secret
        (GRANT, {"Authorization": "Basic not-base64!"}),
        (GRANT, {"Authorization": f"Basic {base64.b64encode(b'no-colon').decode()}"}),
    ],
)
async def test_a_client_not_authenticated_is_401_invalid_client(secured, form, headers):
    response = await secured.post("/oauth/token", data=form, headers=headers)

    await refused(response, 401, "invalid_client")
    assert "access_token" not in await response.text()


async def test_a_client_may_authenticate_one_way_only(secured):
    # RFC 6749 2.3: HTTP Basic and client_secret in the form at once.
    response = await secured.post(
        "/oauth/token",
        data=GRANT | {"client_secret": DASHBOARD.secret},
        headers=basic(DASHBOARD.name, DASHBOARD.secret),
    )
    await refused(response, 400, "invalid_request")

    # client_id beside HTTP Basic must name the same client.
    response = await secured.post(
        "/oauth/token",
        data=GRANT | {"client_id": REGISTRAR.name},
        headers=basic(DASHBOARD.name, DASHBOARD.secret),
    )
    await refused(response, 400, "invalid_request")
    await granted(secured, GRANT | {"client_id": DASHBOARD.name}, basic_of(DASHBOARD))


# -- the request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),  # another grant
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),  # another grant
        ({"grant_type": "CLIENT_CREDENTIALS"}, "unsupported_grant_type"),  # values are exact
        ({}, "invalid_request"),  # no grant_type
        ({"grant_type": ""}, "invalid_request"),  # empty counts as left out (RFC 6749 3.1)
    ],
)
async def test_only_the_client_credentials_grant_is_served(secured, form, error):
    response = await secured.post("/oauth/token", data=form, headers=basic_of(REGISTRAR))

    await refused(response, 400, error)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # JSON is not the form OAuth uses
        (b'{"grant_type": "client_credentials"}', "application/json"),
        # a form sent without its media type
        (b"grant_type=client_credentials", "application/octet-stream"),
        # a charset other than UTF-8
        (b"grant_type=client_credentials", f"{FORM}; charset=latin-1"),
        # a parameter sent twice (RFC 6749 3.2)
        (b"grant_type=client_credentials&grant_type=client_credentials", FORM),
        # a byte outside ASCII
        ("grant_type=client_credentials&scope=\u00e9".encode(), FORM),
        # an escape that is not UTF-8
        (b"grant_type=client_credentials&scope=%FF", FORM),
    ],
)
async def test_a_request_that_is_not_a_token_request_is_invalid_request(
    secured, body, content_type
):
    headers = basic_of(DASHBOARD) | {"Content-Type": content_type}

    response = await secured.post("/oauth/token", data=body, headers=headers)

    await refused(response, 400, "invalid_request")


async def test_unknown_parameters_are_ignored(secured):
    # RFC 6749 3.2: the server MUST ignore unrecognized parameters.
    form = {f"unknown{n}": "x" for n in range(100)} | {"audience": "x", "resource": "y"}
    await granted(secured, GRANT | form, basic_of(DASHBOARD))


async def test_a_body_over_16_kib_is_413(secured):
    form = GRANT | {"padding": "x" * (16 * 1024)}

    response = await secured.post("/oauth/token", data=form, headers=basic_of(DASHBOARD))

    assert response.status == 413
    assert "16 KiB" in (await problem(response))["detail"]


async def test_the_token_endpoint_takes_no_query_and_no_other_method(secured):
    # Parameters go in the body, never in the URL (RFC 6749 2.3.1).
    response = await secured.post(
        "/oauth/token?grant_type=client_credentials", data=GRANT, headers=basic_of(DASHBOARD)
    )
    assert response.status == 422
    await problem(response)

    # Other methods are 405 naming POST, without a bearer token.
    response = await secured.get("/oauth/token")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


async def test_an_idempotency_key_is_ignored_and_nothing_is_stored(secured, db):
    headers = basic_of(DASHBOARD) | {"Idempotency-Key": "token-1"}

    for _ in range(2):
        response = await secured.post("/oauth/token", data=GRANT, headers=headers)
        assert response.status == 200
        assert "Idempotent-Replayed" not in response.headers

    assert await db.fetchval("select count(*) from idempotency_keys") == 0


async def test_without_tokens_there_is_no_token_endpoint(client):
    response = await client.post("/oauth/token", data=GRANT | in_form(DASHBOARD))

    assert response.status == 404
    await problem(response)


# -- scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (None, BOTH),  # left out: both OneRoster scopes
        ("", BOTH),  # empty counts as left out (RFC 6749 3.1)
        (ROSTER_CORE_READONLY, ROSTER_CORE_READONLY),  # one of them
        (ROSTER_READONLY, ROSTER_READONLY),  # the other
        (f"{ROSTER_READONLY} {ROSTER_CORE_READONLY}", BOTH),  # any order, answered in one
        (f"{ROSTER_READONLY}  {ROSTER_READONLY} ", ROSTER_READONLY),  # repeated, extra spaces
    ],
)
async def test_the_scopes_granted(secured, scope, expected):
    form = GRANT if scope is None else GRANT | {"scope": scope}

    body = await granted(secured, form, basic_of(DASHBOARD))

    assert body["scope"] == expected
    assert re.fullmatch(
        OPENAPI_DOCUMENT["components"]["schemas"]["OAuthScope"]["pattern"], expected
    )


UNKNOWN_SCOPE = "unknown scope"
OWN_SCOPE = "not scopes to ask for"


@pytest.mark.parametrize(
    ("scope", "said"),
    [
        # a OneRoster scope not granted here
        (f"{SCOPES[0].rsplit('/', 1)[0]}/roster-demographics.readonly", UNKNOWN_SCOPE),
        # a write scope of another OneRoster service
        (f"{SCOPES[0].rsplit('/', 1)[0]}/gradebook.createput", UNKNOWN_SCOPE),
        # scopes are case-sensitive
        (ROSTER_READONLY.upper(), UNKNOWN_SCOPE),
        # one good, one unknown: the whole request fails
        (f"{ROSTER_READONLY} unknown", UNKNOWN_SCOPE),
        # not echoed: a description holds no quote or backslash (RFC 6749 5.2)
        ('x"y\\z', UNKNOWN_SCOPE),
        # the service's own scope names are not OAuth scopes
        ("read", OWN_SCOPE),
        ("write", OWN_SCOPE),
        (f"{ROSTER_READONLY} registrar", OWN_SCOPE),
    ],
)
async def test_a_scope_not_granted_here_is_invalid_scope(secured, scope, said):
    # A write client asks: its own scope does not open anything more.
    response = await secured.post(
        "/oauth/token", data=GRANT | {"scope": scope}, headers=basic_of(REGISTRAR)
    )

    assert said in await refused(response, 400, "invalid_scope")


def test_the_oauth_scopes_of_each_credential():
    core = AccessToken(name="sis", scopes=frozenset({ROSTER_CORE_READONLY}), expires=0)

    assert oauth_scopes(core) == {ROSTER_CORE_READONLY}
    # A configured token sent as the bearer token, or no tokens at all: every scope.
    assert oauth_scopes(DASHBOARD) == oauth_scopes(None) == set(SCOPES)
    check_oauth_scope(core, ROSTER_CORE_READONLY, ROSTER_READONLY)
    check_oauth_scope(DASHBOARD, ROSTER_READONLY)
    with pytest.raises(Problem) as refusal:
        check_oauth_scope(core, ROSTER_READONLY)
    assert refusal.value.status == 403
    assert 'error="insufficient_scope"' in refusal.value.headers["WWW-Authenticate"]


async def scopes_probe(request: web.Request) -> web.Response:
    """A route such as the provider's: 200 with the credential's OAuth scopes, if it has core."""
    credential = request.get(CREDENTIAL)
    check_oauth_scope(credential, ROSTER_CORE_READONLY, ROSTER_READONLY)
    return web.json_response(sorted(oauth_scopes(credential)))


async def test_a_route_behind_the_request_context_sees_the_scopes_of_the_credential(
    secured_config, aiohttp_client, monkeypatch
):
    monkeypatch.setattr(routes, "ROUTES", [*routes.ROUTES, ("GET", "/probe", scopes_probe, None)])
    client = await aiohttp_client(create_app(secured_config))
    core = await granted(client, GRANT | {"scope": ROSTER_CORE_READONLY}, basic_of(DASHBOARD))
    roster = await granted(client, GRANT | {"scope": ROSTER_READONLY}, basic_of(DASHBOARD))

    response = await client.get("/probe", headers=bearer(core["access_token"]))
    assert await response.json() == [ROSTER_CORE_READONLY]
    response = await client.get("/probe", headers=bearer(roster["access_token"]))
    assert await response.json() == [ROSTER_READONLY]
    # A configured token sent as the bearer token holds every scope.
    response = await client.get("/probe", headers=bearer(DASHBOARD.secret))
    assert await response.json() == sorted(SCOPES)
    # Without a token the request context answers before the route.
    assert (await client.get("/probe")).status == 401


# -- what an access token may do ---------------------------------------------------------


@pytest.mark.parametrize("client", [REGISTRAR, DASHBOARD], ids=["write-client", "read-client"])
async def test_an_access_token_reads_but_never_writes(secured, db, client):
    access_token = (await granted(secured, GRANT, basic_of(client)))["access_token"]
    headers = bearer(access_token)

    assert (await secured.get("/students", headers=headers)).status == 200
    assert (await secured.head("/courses", headers=headers)).status == 200
    response = await secured.post("/students", json=STUDENT, headers=headers)
    assert response.status == 403
    body = await problem(response)
    assert body["type"] == "/problems/insufficient-scope"
    assert f"client {client.name}" in body["detail"]
    assert await db.fetchval("select count(*) from students") == 0
    # The client's own token still writes.
    response = await secured.post("/students", json=STUDENT, headers=bearer(REGISTRAR.secret))
    assert response.status == 201


async def test_an_access_token_is_not_a_client_secret(secured):
    access_token = (await granted(secured, GRANT, basic_of(DASHBOARD)))["access_token"]

    response = await secured.post(
        "/oauth/token", data=GRANT, headers=basic(DASHBOARD.name, access_token)
    )

    await refused(response, 401, "invalid_client")


def key_of(client: TestClient, token: Token) -> bytes:
    return client.app[TOKENS].keys[token.name]


async def unauthorized(response: aiohttp.ClientResponse) -> str:
    assert response.status == 401, await response.text()
    assert (
        response.headers["WWW-Authenticate"] == 'Bearer realm="enrollment", error="invalid_token"'
    )
    return (await problem(response))["detail"]


async def test_an_expired_access_token_is_401(secured):
    expired = issue(key_of(secured, DASHBOARD), DASHBOARD.name, SCOPES, int(time.time()) - 1)

    detail = await unauthorized(await secured.get("/students", headers=bearer(expired)))

    assert "expired" in detail


async def test_an_access_token_expires_even_once_verified_and_cached(secured):
    expires = int(time.time()) + 2
    access_token = issue(key_of(secured, DASHBOARD), DASHBOARD.name, SCOPES, expires)
    headers = bearer(access_token)
    assert (await secured.get("/students", headers=headers)).status == 200
    assert headers["Authorization"] in secured.app[TOKENS].access_by_header

    await asyncio.sleep(expires - time.time() + 0.05)

    assert "expired" in await unauthorized(await secured.get("/students", headers=headers))
    assert headers["Authorization"] not in secured.app[TOKENS].access_by_header


def tampered(access_token: str) -> list[str]:
    payload, signature = access_token.split(".")
    claims = base64.urlsafe_b64decode(payload + "==").decode()
    longer = claims.replace('"exp":', '"exp":9')  # a later expiry, the signature kept
    other = claims.replace(DASHBOARD.name, REGISTRAR.name)  # another client, the signature kept
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return [
        f"{payload}.{flipped}",
        f"{encode(longer)}.{signature}",
        f"{encode(other)}.{signature}",
        f"{payload}.{signature}=",  # padding the server never sends
        f"{payload}.{signature}!",  # a character base64url does not have
        f"{payload}.",  # no signature
        payload,
    ]


def encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


async def test_a_tampered_or_forged_access_token_is_401(secured):
    access_token = (await granted(secured, GRANT, basic_of(DASHBOARD)))["access_token"]
    # Signed with a key derived from a secret the server does not have.
    guessed = Token(DASHBOARD.name, "read", "0" * 32)
    forged = issue(signing_key(guessed), DASHBOARD.name, SCOPES, int(time.time()) + 60)

    for presented in [*tampered(access_token), forged]:
        detail = await unauthorized(await secured.get("/students", headers=bearer(presented)))
        assert "expired" not in detail, presented
    assert (await secured.get("/students", headers=bearer(access_token))).status == 200


async def test_access_tokens_work_on_every_instance_with_the_same_tokens_until_a_secret_changes(
    secured, secured_config, aiohttp_client
):
    access_token = (await granted(secured, GRANT, basic_of(DASHBOARD)))["access_token"]
    headers = bearer(access_token)
    # Another worker or instance, configured alike: no state is shared.
    alike = await aiohttp_client(create_app(secured_config))
    # The client's secret rotated; and the client removed.
    rotated = replace(DASHBOARD, secret="a-new-secret-0123456789abcdef")
    rotated_app = await aiohttp_client(
        create_app(replace(secured_config, tokens=(REGISTRAR, rotated)))
    )
    removed_app = await aiohttp_client(create_app(replace(secured_config, tokens=(REGISTRAR,))))

    assert (await alike.get("/students", headers=headers)).status == 200
    assert "expired" not in await unauthorized(await rotated_app.get("/students", headers=headers))
    await unauthorized(await removed_app.get("/students", headers=headers))
    # The rotated secret gets access tokens of its own.
    fresh = (await granted(rotated_app, GRANT, basic_of(rotated)))["access_token"]
    assert (await rotated_app.get("/students", headers=bearer(fresh))).status == 200


async def test_verified_access_tokens_are_kept_only_to_their_bound(secured, monkeypatch):
    monkeypatch.setattr(tokens, "MAX_ACCESS_VERIFIED", 3)
    now = int(time.time())
    issued = [
        issue(key_of(secured, DASHBOARD), DASHBOARD.name, SCOPES, now + 60 + n) for n in range(5)
    ]

    for access_token in issued + issued:
        assert (await secured.get("/students", headers=bearer(access_token))).status == 200

    cache = secured.app[TOKENS].access_by_header
    assert len(cache) == 3
    assert secured.app[TOKENS].by_header == {}  # the configured tokens' cache is left alone


async def test_the_ttl_is_the_setting_and_the_log_names_no_secret(
    secured_config, aiohttp_client, caplog
):
    client = await aiohttp_client(create_app(replace(secured_config, access_token_ttl=120)))
    caplog.set_level(logging.INFO, logger="service")

    before = int(time.time())
    body = await granted(client, GRANT, basic_of(DASHBOARD))

    assert body["expires_in"] == 120
    payload = base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "==")
    assert before + 120 <= int(re.search(rb'"exp":(\d+)', payload).group(1)) <= time.time() + 120
    assert "access token issued to client dashboard" in caplog.text
    assert DASHBOARD.secret not in caplog.text
    assert body["access_token"] not in caplog.text
