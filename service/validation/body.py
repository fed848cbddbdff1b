"""Reading a request's body: 415 unless JSON in UTF-8, 408 too slow, 413 over 1 MiB, 400 not JSON."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..errors import Problem
from ..keys import CONFIG
from .decoding import decode_json

MAX_BODY = 1024 * 1024


def _check_media_type(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise Problem(
            415,
            "the request body must be JSON, sent as Content-Type: application/json",
            "unsupported-media-type",
        )
    charset = request.charset
    if charset and charset.lower() not in ("utf-8", "utf8"):
        raise Problem(415, "JSON bodies must be UTF-8", "unsupported-media-type")


async def json_object(request: web.Request) -> dict[str, Any]:
    _check_media_type(request)
    body = await read_body(request)
    try:
        document = decode_json(body)
    except ValueError:
        raise Problem(400, "the request body is not valid JSON", "invalid-json") from None
    if not isinstance(document, dict):
        raise Problem(400, "the request body must be a JSON object", "invalid-json")
    return document


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The whole body (aiohttp keeps it: reading again is free); 413 over `limit`, 408 too slow.

    `limit` is MAX_BODY or less (the token endpoint's form, which anyone may
    send, is small). A chunked body is read up to MAX_BODY before a smaller
    limit refuses it; one with a Content-Length over the limit is not read.
    """
    try:
        if request.content.is_eof():
            # Already received in full: nothing to wait for, and read()
            # refuses a body over client_max_size (MAX_BODY) by itself.
            body = await request.read()
        else:
            body = await _read_in_time(request, limit)
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(MAX_BODY) from None
    if len(body) > limit:
        raise _too_large(limit)
    return body


async def _read_in_time(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)  # before waiting for a body that will be refused
    try:
        # A client that trickles its body must not hold a handler forever.
        async with asyncio.timeout(request.app[CONFIG].body_timeout):
            return await request.read()
    except TimeoutError:
        raise Problem(408, "the request body did not arrive in time", "request-timeout") from None


def _too_large(limit: int) -> Problem:
    size = "1 MiB" if limit == MAX_BODY else f"{limit // 1024} KiB"
    return Problem(413, f"the request body is larger than {size}", "payload-too-large")
