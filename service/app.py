"""The application factory."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from . import db, middlewares, routes
from .config import Config
from .keys import CONFIG, OPENAPI
from .validation import MAX_BODY

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def create_app(config: Config) -> web.Application:
    """Assemble the app; no I/O happens until it starts."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[middlewares.problems])
    app[CONFIG] = config
    # Served as compact JSON; the file in the repository stays readable.
    app[OPENAPI] = json.dumps(
        json.loads(OPENAPI_PATH.read_text(encoding="utf-8")), separators=(",", ":")
    ).encode()
    app.cleanup_ctx.append(db.pool_context)
    routes.setup(app)
    return app
