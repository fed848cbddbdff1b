"""Every application key, typed, in one place."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .metrics import Metrics
from .pool import Pool
from .tokens import TokenTable

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", Pool)
OPENAPI = web.AppKey("openapi", bytes)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", TokenTable)
