"""Running the app: one process, or several sharing the port."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

import asyncpg
from aiohttp import web

from . import logs
from .app import create_app
from .config import Config
from .db import SchemaNotReady, check_schema, masked

log = logging.getLogger(__name__)

ANNOUNCE_WITHIN = 60.0  # seconds the supervisor looks for its workers' port


class StartupError(RuntimeError):
    """The service cannot start; the message says why in one line."""


async def _preflight(config: Config) -> None:
    if not config.database_url:
        raise StartupError("DATABASE_URL is not set (postgresql://user:password@host:port/db)")
    where = masked(config.database_url)
    try:
        conn = await asyncpg.connect(config.database_url, timeout=config.connect_timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StartupError(f"cannot connect to the database at {where}: {reason}") from None
    try:
        await check_schema(conn)
    except SchemaNotReady as exc:
        raise StartupError(f"{exc} (python -m service migrate)") from None
    finally:
        await conn.close()


def preflight(config: Config) -> None:
    asyncio.run(_preflight(config))


def run_worker(config: Config, *, reuse_port: bool = False, announce: bool = False) -> None:
    logs.setup(config.log_level)  # spawned workers start with bare logging
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on other platforms
        uvloop = None
    loop = uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()
    if reuse_port:
        # A worker of _supervise(). Ctrl-C reaches every process of the
        # terminal's group, and systemd's stop every process of the unit:
        # a worker may get SIGINT or SIGTERM from them and SIGTERM from its
        # supervisor too. aiohttp would raise GracefulExit again for the
        # second signal, in the middle of the first one's graceful stop,
        # which then ends with status 1. So a worker ignores SIGINT (the
        # supervisor turns it into SIGTERM) and stops on its first SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        loop.add_signal_handler(signal.SIGTERM, _stop_once(loop))
    app = create_app(config)
    # Everything imported so far lives as long as the process: move it out of
    # the collector's sight, so each collection scans only request garbage.
    gc.freeze()
    # run_app stops accepting on SIGTERM/SIGINT, lets in-flight requests finish
    # for up to shutdown_timeout, then runs the cleanup contexts (the pool).
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        reuse_port=reuse_port,
        shutdown_timeout=config.shutdown_timeout,
        keepalive_timeout=config.keepalive_timeout,
        # The request context writes the access lines (logs.AccessLog).
        access_log=None,
        # Called once the port accepts: the moment to say so (one worker).
        print=(lambda _text: _serving(config)) if announce else None,
        handle_signals=not reuse_port,
        loop=loop,
    )


def _stop_once(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """A worker's SIGTERM handler: the first call begins the graceful stop;
    the signals after it are ignored while the worker stops.

    Ignored by the process rather than by a handler of the loop's: the loop,
    once closed, puts back the default action of the signals it handled.
    The flag makes a second call do nothing, should two signals have been
    scheduled before the first ran (a second GracefulExit, a SystemExit of
    status 1, would end the worker with status 1).
    """
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise web.GracefulExit()

    return stop


def serve(config: Config) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    preflight(config)
    if not config.tokens:
        log.warning(
            "NO API TOKENS CONFIGURED: anyone who can reach http://%s:%s may read and change "
            "every record. Set API_TOKENS or API_TOKENS_FILE for anything but local development.",
            config.host,
            config.port,
        )
    if config.workers == 1:
        run_worker(config, announce=True)
        code = 0
    else:
        with tempfile.TemporaryDirectory(prefix="enrollment-metrics-") as directory:
            # Workers inherit the environment; prometheus_client reads it at import.
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", directory)
            code = _supervise(config)
    if code == 0:
        log.info("stopped: requests answered, database connections closed")
    return code


def _serving(config: Config) -> None:
    log.info("serving on http://%s:%s with %d worker(s)", config.host, config.port, config.workers)


def _accepts(config: Config) -> bool:
    """Whether a connection to the service's port is accepted now."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.host, config.host)
    try:
        with socket.create_connection((host, config.port), timeout=0.5):
            return True
    except OSError:
        return False


def _announce_when_accepting(config: Config, workers: list) -> None:
    """Say "serving on" once the port accepts (the workers bind it on their own)."""
    deadline = time.monotonic() + ANNOUNCE_WITHIN
    while time.monotonic() < deadline and all(w.is_alive() for w in workers):
        if _accepts(config):
            _serving(config)
            return
        time.sleep(0.05)


def _supervise(config: Config) -> int:
    # Each worker binds the port with SO_REUSEPORT and has its own pool; the
    # kernel spreads connections across them.
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=run_worker, args=(config,), kwargs={"reuse_port": True})
        for _ in range(config.workers)
    ]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the worker shuts down gracefully

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.start()
    _announce_when_accepting(config, workers)
    # If a worker ends on its own, stop the rest: a half-served port is worse
    # than a restart by the supervisor. A worker that ended with status 0 was
    # stopped by a signal sent to the whole group (Ctrl-C, systemd's stop)
    # that has not reached this process yet: that is a stop, not a crash.
    # So is, once stopping, a worker ended by SIGTERM itself: it handles the
    # first and ignores the rest while it stops (_stop_once), so SIGTERM's
    # default action can only have met it before it served or after its
    # loop had closed.
    failed = False
    for worker in workers:
        worker.join()
        failed |= worker.exitcode != 0 and not (stopping and worker.exitcode == -signal.SIGTERM)
        if not stopping:
            stop(signal.SIGTERM, None)
    return 1 if failed else 0


def exit_on_startup_error(error: StartupError) -> None:
    print(f"enrollment-service: {error}", file=sys.stderr)
    sys.exit(2)
