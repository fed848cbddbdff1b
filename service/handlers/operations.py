"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from ..keys import METRICS, OPENAPI, WORK
from ..sql import QUERIES
from . import render


async def healthz(request: web.Request) -> web.Response:
    return render.json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    # Database errors become 503 in the request context (endpoint.py).
    async with request[WORK].block() as conn:
        await conn.fetchval(QUERIES.health.ping)
    return render.json({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    # generate_latest writes the classic text format, version 0.0.4.
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
