"""Browser clients on other origins: CORS_ORIGINS, preflights and the headers a page may read."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config, ConfigError, Token

from .api import create_course, create_student, problem

ALLOWED = "https://registrar.example.org"
ALSO_ALLOWED = "http://localhost:5173"
REFUSED = "https://evil.example.net"
WRITER = Token("registrar", "write", "3f9c0b6a1d2e4f5a8b7c6d5e4f3a2b1c")
EXPOSED = {
    "etag",
    "location",
    "link",
    "x-total-count",  # the OneRoster provider's pages
    "x-request-id",
    "idempotent-replayed",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
}


def preflight(origin: str, method: str, headers: str = "") -> dict[str, str]:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return sent


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


@pytest.fixture
async def browser_api(config: Config, aiohttp_client) -> TestClient:
    """The real app letting two origins call it."""
    return await aiohttp_client(create_app(replace(config, cors_origins=(ALLOWED, ALSO_ALLOWED))))


@pytest.fixture
async def browser_api_with_tokens(config: Config, aiohttp_client) -> TestClient:
    app = create_app(replace(config, cors_origins=(ALLOWED,), tokens=(WRITER,)))
    return await aiohttp_client(app)


# -- preflights ---------------------------------------------------------------------------


async def test_a_preflight_from_an_allowed_origin_is_answered(browser_api):
    asked = "content-type, idempotency-key, authorization"
    response = await browser_api.options("/students", headers=preflight(ALLOWED, "POST", asked))

    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert listed(response.headers["Access-Control-Allow-Methods"]) == {"post"}
    allowed = listed(response.headers["Access-Control-Allow-Headers"])
    assert {"content-type", "idempotency-key", "authorization"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    # Not credentials in the CORS sense: a bearer token is a header the page sets.
    assert "Access-Control-Allow-Credentials" not in response.headers
    # Inside the request context like every route; Vary, since the answer names the origin.
    assert "X-Request-ID" in response.headers
    assert "origin" in listed(response.headers["Vary"])


@pytest.mark.parametrize(
    ("path", "method", "asked"),
    [
        # conditional writes with ids in the path
        ("/students/1", "PATCH", "content-type, if-match"),
        ("/courses/7", "DELETE", "if-match"),
        # a conditional read: HEAD and GET are preflighted once a header is not safelisted
        ("/students/1", "GET", "if-none-match, authorization"),
        ("/students/1", "HEAD", "authorization"),
        ("/students/1/courses/2", "DELETE", "authorization"),
        ("/events", "GET", "authorization"),
        # a public route
        ("/openapi.json", "GET", ""),
    ],
)
async def test_a_preflight_is_answered_on_every_kind_of_route(browser_api, path, method, asked):
    response = await browser_api.options(path, headers=preflight(ALSO_ALLOWED, method, asked))

    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALSO_ALLOWED
    assert listed(response.headers["Access-Control-Allow-Methods"]) == {method.lower()}
    if asked:
        assert listed(asked) <= listed(response.headers["Access-Control-Allow-Headers"])


async def test_a_preflight_from_another_origin_gets_no_cors_headers(browser_api):
    response = await browser_api.options(
        "/students", headers=preflight(REFUSED, "POST", "content-type")
    )

    assert response.status == 403
    body = await problem(response)
    assert REFUSED in body["detail"]
    assert cors_headers(response) == {}


@pytest.mark.parametrize(
    ("path", "method", "asked", "why"),
    [
        ("/students", "DELETE", "", "DELETE"),  # a method this path does not serve
        ("/healthz", "POST", "", "POST"),
        ("/students", "POST", "content-type, x-secret-header", "X-SECRET-HEADER"),  # not allowed
    ],
)
async def test_a_preflight_for_what_the_route_does_not_allow_is_refused(
    browser_api, path, method, asked, why
):
    response = await browser_api.options(path, headers=preflight(ALLOWED, method, asked))

    assert response.status == 403
    assert why in (await problem(response))["detail"]
    assert cors_headers(response) == {}


async def test_a_preflight_on_an_unknown_path_is_still_404(browser_api):
    response = await browser_api.options("/nowhere", headers=preflight(ALLOWED, "GET"))

    assert response.status == 404
    await problem(response)
    assert cors_headers(response) == {}


async def test_a_preflight_needs_no_token_but_the_request_still_does(browser_api_with_tokens):
    client = browser_api_with_tokens
    asked = "authorization, content-type"
    response = await client.options("/students", headers=preflight(ALLOWED, "POST", asked))
    assert response.status == 200, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED

    body = {"name": "Ada Lovelace", "email": "ada@example.org"}
    refused = await client.post("/students", json=body, headers={"Origin": ALLOWED})
    assert refused.status == 401
    # The page can read why: the 401 carries the CORS headers too.
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert (await problem(refused))["type"] == "/problems/unauthorized"

    headers = {"Origin": ALLOWED, "Authorization": f"Bearer {WRITER.secret}"}
    created = await client.post("/students", json=body, headers=headers)
    assert created.status == 201, await created.text()
    assert created.headers["Access-Control-Allow-Origin"] == ALLOWED


# -- actual requests ----------------------------------------------------------------------


async def test_a_request_from_an_allowed_origin_may_read_the_api_headers(browser_api):
    body = {"name": "Ada Lovelace", "email": "ada@example.org"}
    response = await browser_api.post("/students", json=body, headers={"Origin": ALLOWED})

    assert response.status == 201, await response.text()
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert listed(response.headers["Access-Control-Expose-Headers"]) == EXPOSED
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "origin" in listed(response.headers["Vary"])


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_reads_from_an_allowed_origin_carry_the_cors_headers(browser_api, method):
    course = await create_course(browser_api)
    response = await browser_api.request(
        method, f"/courses/{course['id']}", headers={"Origin": ALSO_ALLOWED}
    )

    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALSO_ALLOWED
    assert "etag" in listed(response.headers["Access-Control-Expose-Headers"])


async def test_a_request_from_another_origin_gets_no_cors_headers(browser_api):
    student = await create_student(browser_api)
    response = await browser_api.get(f"/students/{student['id']}", headers={"Origin": REFUSED})

    # Answered as usual (CORS is enforced by the browser), but nothing lets it read it.
    assert response.status == 200
    assert cors_headers(response) == {}


async def test_a_request_without_origin_gets_no_cors_headers(browser_api):
    response = await browser_api.get("/students")

    assert response.status == 200
    assert cors_headers(response) == {}


async def test_an_unknown_path_gets_no_cors_headers(browser_api):
    response = await browser_api.get("/nowhere", headers={"Origin": ALLOWED})

    assert response.status == 404
    assert cors_headers(response) == {}


# -- off by default -----------------------------------------------------------------------


async def test_cors_is_off_by_default(client):
    response = await client.options("/students", headers=preflight(ALLOWED, "POST"))
    # The catch-all's answer, as before: OPTIONS is not served.
    assert response.status == 405
    assert "OPTIONS" not in response.headers["Allow"]
    assert cors_headers(response) == {}

    response = await client.get("/students", headers={"Origin": ALLOWED})
    assert response.status == 200
    assert cors_headers(response) == {}
    assert "Vary" not in response.headers
    # Nothing is set up that a request would pay for.
    assert len(client.app.on_response_prepare) == 0
    assert all(route.method != "OPTIONS" for route in client.app.router.routes())


# -- the setting --------------------------------------------------------------------------


def test_cors_origins_are_read_as_browsers_send_them():
    env = {
        "CORS_ORIGINS": " https://Registrar.Example.org , http://localhost:5173,"
        "https://app.example.org:443,http://[::1]:8000,,https://registrar.example.org"
    }

    assert Config.from_env(env).cors_origins == (
        "https://registrar.example.org",
        "http://localhost:5173",
        "https://app.example.org",  # the default port is never sent
        "http://[::1]:8000",
    )
    assert Config.from_env({}).cors_origins == ()


@pytest.mark.parametrize(
    "entry",
    [
        "*",  # a wildcard: list the origins
        "registrar.example.org",  # no scheme
        "ftp://registrar.example.org",  # not a web origin
        "https://registrar.example.org/",  # a path, even just /
        "https://registrar.example.org/app",
        "https://registrar.example.org?x=1",
        "https://registrar.example.org#top",
        "https://user@registrar.example.org",
        "https://registrar.example.org:99999",  # port out of range
        "https://bücher.example",  # browsers send punycode
        "https://",
        "null",
    ],
)
def test_a_cors_origin_that_could_never_match_is_refused(entry):
    with pytest.raises(ConfigError, match="CORS_ORIGINS") as error:
        Config.from_env({"CORS_ORIGINS": f"http://localhost:5173,{entry}"})

    assert repr(entry) in str(error.value)
