"""The application factory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from . import db, routes
from .config import Config
from .keys import ACCESS_LOG, CONFIG, METRICS, OPENAPI, TOKENS
from .logs import AccessLog
from .metrics import Metrics
from .tokens import TokenTable
from .validation import MAX_BODY

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
# Served compact; the file in the repository stays readable.
OPENAPI_BODY = json.dumps(
    json.loads(OPENAPI_PATH.read_text(encoding="utf-8")), separators=(",", ":")
).encode()


def create_app(config: Config) -> web.Application:
    """Assemble the app; no I/O happens until it starts."""
    # No middlewares: every route's handler is wrapped in the request context
    # instead (service/endpoint.py), which is cheaper per request.
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[OPENAPI] = OPENAPI_BODY
    app[METRICS] = Metrics()
    app[TOKENS] = TokenTable.of(config.tokens)
    app[ACCESS_LOG] = AccessLog(logging.getLogger("service.access"))
    app.cleanup_ctx.append(db.pool_context)
    app.cleanup_ctx.append(db.pool_metrics)
    app.cleanup_ctx.append(db.watchdog)
    routes.setup(app)
    return app
