"""Browser clients on other origins (CORS_ORIGINS), with aiohttp-cors.

Each real route's resource gets aiohttp-cors's preflight handler as its
OPTIONS route, wrapped in the request context like every other route
(endpoint.py): a preflight is counted, logged and carries an X-Request-ID,
needs no token (a browser sends none with it), and a refused one is a 403
problem+json with no CORS headers. The headers of the actual responses are
added by aiohttp-cors's on_response_prepare hook. The catch-all resource is
not CORS-enabled: an unknown path stays a 404 for every origin.

Nothing here is set up without CORS_ORIGINS, so an instance without it pays
nothing per request (no hook, no OPTIONS routes).
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp_cors.urldispatcher_router_adapter import ResourcesUrlDispatcherRouterAdapter

from .endpoint import endpoint

# What a page may send beyond the CORS-safelisted request headers.
ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match")
# What a page may read beyond the CORS-safelisted response headers.
EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Link",
    "X-Total-Count",  # the OneRoster provider's pages
    "X-Request-ID",
    "Idempotent-Replayed",
    "Retry-After",
    # A 429's fields (errors.too_many_requests), for a page to wait by.
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
# How long a browser may keep a preflight's answer (Chromium caps it at 2 hours).
MAX_AGE = 3600


class _PreflightsInContext(ResourcesUrlDispatcherRouterAdapter):
    """The default adapter, with each preflight handler inside the request context."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(app.router, defaults={})
        self.service_app = app

    def add_preflight_handler(self, routing_entity: object, handler: Callable) -> None:
        if isinstance(routing_entity, web.Resource):
            handler = endpoint(self.service_app, "OPTIONS", routing_entity.canonical, handler, None)
        super().add_preflight_handler(routing_entity, handler)


def setup(app: web.Application, origins: tuple[str, ...]) -> None:
    """Let `origins` call every route registered so far; call before the catch-all."""
    if not origins:
        return
    cors = aiohttp_cors.CorsConfig(app, router_adapter=_PreflightsInContext(app))
    for resource in list(app.router.resources()):
        # A preflight is answered for the methods this path serves, no other.
        methods = sorted({route.method for route in resource} - {hdrs.METH_OPTIONS})
        options = aiohttp_cors.ResourceOptions(
            allow_methods=methods,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            max_age=MAX_AGE,
        )
        cors.add(resource, {origin: options for origin in origins})
