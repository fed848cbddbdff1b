"""The application factory."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from . import db, feed, idempotency, routes
from .config import Config
from .keys import CONFIG, LIMITS, METRICS, OPENAPI, TOKENS
from .limits import Limits
from .metrics import Metrics
from .tokens import TokenTable
from .validation.body import MAX_BODY

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
OPENAPI_DOCUMENT: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
# What only an instance with tokens can answer.
AUTH_RESPONSES = ("401", "403")
# What only the token endpoint's operation uses.
TOKEN_TAG = "OAuth"
TOKEN_SCHEMAS = ("TokenRequest", "AccessToken", "OAuthError", "OAuthScope")


def openapi_document(*, with_tokens: bool) -> dict[str, Any]:
    """The OpenAPI document of an instance with or without tokens.

    The file describes an instance with tokens. Without them, no operation
    needs a token, so every operation says so (`security: []`, the empty
    requirement) and none lists a 401 or 403: a client or a contract fuzzer
    reads the document literally. Nor is there a token endpoint (routes.py).
    """
    if with_tokens:
        return OPENAPI_DOCUMENT
    document = copy.deepcopy(OPENAPI_DOCUMENT)
    document.pop("security", None)
    for _, path, _, _ in routes.TOKEN_ROUTES:
        document["paths"].pop(path)
    document["tags"] = [tag for tag in document["tags"] if tag["name"] != TOKEN_TAG]
    for name in TOKEN_SCHEMAS:
        document["components"]["schemas"].pop(name)
    components = document["components"]
    components.pop("securitySchemes", None)
    components["headers"].pop("WWW-Authenticate", None)
    for name in ("Unauthorized", "Forbidden"):
        components["responses"].pop(name, None)
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = []
                for status in AUTH_RESPONSES:
                    operation["responses"].pop(status, None)
    return document


def create_app(config: Config) -> web.Application:
    """Assemble the app; no I/O happens until it starts."""
    # No middlewares: every route's handler is wrapped in the request context
    # instead (service/endpoint.py), which is cheaper per request.
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG] = config
    # Served compact; the file in the repository stays readable.
    document = openapi_document(with_tokens=bool(config.tokens))
    app[OPENAPI] = json.dumps(document, separators=(",", ":")).encode()
    app[METRICS] = Metrics()
    app[TOKENS] = TokenTable.of(config.tokens)
    app[LIMITS] = Limits(
        long_polls=config.limit_long_polls,
        searches=config.limit_searches,
        batches=config.limit_batches,
    )
    app.cleanup_ctx.append(db.pool_context)
    app.cleanup_ctx.append(db.pool_metrics)
    app.cleanup_ctx.append(db.watchdog)
    app.cleanup_ctx.append(feed.watcher)
    app.cleanup_ctx.append(feed.retention)
    app.cleanup_ctx.append(idempotency.expiry)
    app.on_shutdown.append(feed.answer_long_polls)
    routes.setup(app)
    return app
