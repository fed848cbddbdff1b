"""Every application key, typed, in one place."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from .config import Config

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
OPENAPI = web.AppKey("openapi", bytes)
