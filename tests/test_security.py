"""No secret in any log line, and the headers every response carries."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from service.app import create_app
from service.config import Config

from .test_logs import log_lines, raw_request, session, stop
from .test_shutdown import serving

SECRET = "7d1c9e0f2b3a4c5d6e7f8091a2b3c4d5"
API_TOKENS = f"registrar:write:{SECRET}"
# Pieces of the secret long enough to be recognised if a line held any part of it.
SECRET_PIECES = [SECRET[i : i + 12] for i in range(0, len(SECRET) - 11, 4)]

MALFORMED = [
    # the secret followed by a control byte: the parser quotes the refused line
    b"GET /students HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
    + SECRET.encode()
    + b"\x01\r\n\r\n",
    # the secret in a header line over the 8190-byte limit
    b"GET /students HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
    + SECRET.encode()
    + b" "
    + b"x" * 8200
    + b"\r\n\r\n",
    # a broken header line (no colon) that carries the secret
    b"GET /students HTTP/1.1\r\nHost: t\r\nAuthorization Bearer " + SECRET.encode() + b"\r\n\r\n",
    # the secret as a header name
    b"GET /students HTTP/1.1\r\nHost: t\r\n" + SECRET.encode() + b" : x\x00\r\n\r\n",
    # the secret in a request line that is not HTTP
    b"GET /students?" + SECRET.encode() + b" HTTP/1.1 junk\r\n\r\n",
]


async def test_no_log_line_holds_a_secret_whatever_the_client_sends(database_url, tmp_path):
    async with serving(database_url, tmp_path, API_TOKENS=API_TOKENS) as server:
        for data in MALFORMED:
            answer = await raw_request(server, data)
            assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer
        # Requests that parse, with the secret wrong, cut short or well placed.
        async with session(server) as client:
            for header in (f"Bearer {SECRET}x", f"Bearer {SECRET[:-2]}", f"Basic {SECRET}"):
                async with client.get("/students", headers={"Authorization": header}) as r:
                    assert r.status == 401
                    assert SECRET[:12] not in await r.text()
            async with client.get("/students", headers={"Authorization": f"Bearer {SECRET}"}) as r:
                assert r.status == 200
        await stop(server)
        text = server.log()
        entries = log_lines(server)

    rejected = [e for e in entries if e["logger"] == "aiohttp.server"]
    assert len(rejected) == len(MALFORMED), rejected
    for entry in rejected:
        # The reason and the client address, nothing the client sent.
        assert re.fullmatch(
            r"Error handling request from 127\.0\.0\.1: \w+: [\w ,.()-]+", entry["message"]
        ), entry
    ok = [e["token"] for e in entries if e.get("path") == "/students" and e["status"] == 200]
    assert ok == ["registrar"]  # the access line names the token, never its secret
    for piece in SECRET_PIECES:
        assert piece not in text


@pytest.fixture
def secured_config(config: Config) -> Config:
    return replace(config, tokens=Config.from_env({"API_TOKENS": API_TOKENS}).tokens)


@pytest.mark.parametrize(
    ("path", "authenticated"),
    [
        ("/students", True),  # a read with a token
        ("/students/999", True),  # an error to a request with a token
        ("/healthz", False),  # a public route: nothing private in it
        ("/nowhere", True),  # an unknown path, with a token
    ],
)
async def test_every_response_says_nosniff_and_names_no_versions(
    secured_config, aiohttp_client, path, authenticated
):
    client = await aiohttp_client(create_app(secured_config))
    headers = {"Authorization": f"Bearer {SECRET}"} if authenticated else {}

    response = await client.get(path, headers=headers)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server"] == "enrollment-service"
    assert not re.search(r"\d", response.headers["Server"])
    if authenticated:
        assert response.headers["Cache-Control"] == "no-store"


async def test_only_authenticated_responses_are_marked_no_store(secured_config, aiohttp_client):
    secured = await aiohttp_client(create_app(secured_config))

    with_token = await secured.get("/students", headers={"Authorization": f"Bearer {SECRET}"})
    public = await secured.get("/healthz")
    refused = await secured.get("/students")

    assert with_token.headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in public.headers
    assert refused.status == 401
    assert "Cache-Control" not in refused.headers
