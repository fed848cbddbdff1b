"""What one client may hold at once: long polls, searches, batches.

A client is its token's name, or its address when the instance has no
tokens (behind a proxy every client shares the proxy's address: give them
tokens). The counts are per worker process, kept in memory: a request takes
a place for as long as it runs and gives it back when it ends, however it
ends. Beyond the limit the answer is 429 at once, before any work.

The stored idempotency keys, the fourth limit, are counted in the database
(service/idempotency.py), since every worker stores into the same table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web

from .errors import too_many_requests
from .keys import ACTOR

# Seconds a refused client is asked to wait: a place frees when one of its
# own requests ends, which for a search or a batch is well within a second.
RETRY_AFTER = 1


def client(request: web.Request) -> str:
    """Who the request counts against: its token's name, else its address."""
    if actor := request.get(ACTOR):
        return f"token:{actor}"
    return f"address:{request.remote or ''}"


class Limit:
    """At most `size` requests of one kind in flight per client, in this process."""

    __slots__ = ("held", "size", "what")

    def __init__(self, what: str, size: int) -> None:
        self.what = what  # plural noun, for the problem's detail
        self.size = size
        self.held: dict[str, int] = {}

    @contextlib.contextmanager
    def place(self, request: web.Request) -> Iterator[None]:
        """Hold one place for `request`'s client for the block; 429 when none is left."""
        who = client(request)
        held = self.held.get(who, 0)
        if held >= self.size:
            raise too_many_requests(
                f"at most {self.size} {self.what} at once per client; "
                f"retry when one of yours has ended",
                limit=self.size,
                retry_after=RETRY_AFTER,
            )
        self.held[who] = held + 1
        try:
            yield
        finally:
            if (left := self.held[who] - 1) > 0:
                self.held[who] = left
            else:
                del self.held[who]


class Limits:
    """The app's limits (keys.LIMITS), sized from the config."""

    __slots__ = ("batches", "long_polls", "searches")

    def __init__(self, *, long_polls: int, searches: int, batches: int) -> None:
        self.long_polls = Limit("long polls", long_polls)
        self.searches = Limit("searches", searches)
        self.batches = Limit("batches", batches)
