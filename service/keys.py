"""Every application key, typed, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .access_tokens import AccessToken
from .config import Config, Token
from .metrics import Metrics
from .pool import Pool
from .tokens import TokenTable

if TYPE_CHECKING:  # db.py, feed.py and limits.py use these keys themselves
    from .db import Work
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
# Per request: its token's scope (read, write, registrar); absent without tokens.
SCOPE = web.RequestKey("scope", str)
# Per request: the token it was made with, configured or an access token
# (auth.authenticate); absent without tokens and on public routes. What
# auth.check_oauth_scope judges.
CREDENTIAL: web.RequestKey[Token | AccessToken] = web.RequestKey("credential")
# Per request: where its handler's statements run (db.Work), set by db.run()
# alone, before the handler starts: autocommitted, or inside the request's
# idempotency transaction.
WORK: web.RequestKey[Work] = web.RequestKey("work")
