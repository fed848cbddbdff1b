"""The real app on a real TCP port, in its own event loop thread, for synchronous tests."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LiveServer:
    """The real app on 127.0.0.1 in its own event loop thread; `url` once entered.

    On `port`, or on a free one the system picks (0).
    """

    def __init__(self, app: web.Application, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = port
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        except BaseException:
            self.__exit__()
            raise
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def __exit__(self, *exc_info: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
