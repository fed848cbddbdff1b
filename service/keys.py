"""Every application key, typed, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from .config import Config
from .metrics import Metrics
from .pool import Pool
from .tokens import TokenTable

if TYPE_CHECKING:  # feed.py and limits.py use these keys themselves
    from .feed import FeedWatcher
    from .limits import Limits

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", Pool)
OPENAPI = web.AppKey("openapi", bytes)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", TokenTable)
LIMITS: web.AppKey[Limits] = web.AppKey("limits")
FEED: web.AppKey[FeedWatcher] = web.AppKey("feed")
# Per request: the name of the token it was made with ("" without tokens),
# which the events of its changes record as their actor.
ACTOR = web.RequestKey("actor", str)
# Per request, while a POST with an Idempotency-Key runs: the connection of
# its transaction, which db.connection() lends to the handler (see idempotency.py).
CONNECTION = web.RequestKey("connection", asyncpg.Connection)
