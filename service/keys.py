"""Every application key, typed, in one place."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from .config import Config
from .lending import Lender
from .logs import AccessLog
from .metrics import Metrics
from .tokens import TokenTable

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
LENDER = web.AppKey("lender", Lender)
OPENAPI = web.AppKey("openapi", bytes)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", TokenTable)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
