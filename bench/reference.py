"""The reference server: the same SQL as the service with nothing around it.

Plain aiohttp, one asyncpg pool per process (no reset on release, statement
cache on), uvloop and orjson; no middleware, no validation, no access log.
It is the ceiling the service is measured against, not an example to follow.

    python -m bench.reference --dsn URL --port 8081 --workers 2 --pool-size 32
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
from collections.abc import AsyncIterator

import asyncpg
import orjson
import uvloop
from aiohttp import web

from service.sql import QUERIES

Q = QUERIES.enrollments
POOL = web.AppKey("pool", asyncpg.Pool)
NOT_FOUND = orjson.dumps({"title": "Not Found", "status": 404})


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset round trip: nothing here changes session state."""


def _json(data: object, status: int = 200) -> web.Response:
    # default: a course's credits, numeric, come as Decimal.
    body = orjson.dumps(data, default=float)
    return web.Response(body=body, status=status, content_type="application/json")


def _page(rows: list[asyncpg.Record]) -> web.Response:
    if not rows:
        return web.Response(body=NOT_FOUND, status=404, content_type="application/json")
    items = [dict(row) for row in rows[:50] if row["id"] is not None]
    return _json({"items": items, "next_cursor": None})


async def student_courses(request: web.Request) -> web.Response:
    student_id = int(request.match_info["student_id"])
    async with request.app[POOL].acquire() as conn:
        return _page(await conn.fetch(Q.list_student_courses, student_id, 0, 51))


async def course_students(request: web.Request) -> web.Response:
    course_id = int(request.match_info["course_id"])
    async with request.app[POOL].acquire() as conn:
        return _page(await conn.fetch(Q.list_course_students, course_id, 0, 51))


async def enroll(request: web.Request) -> web.Response:
    student_id = int(request.match_info["student_id"])
    course_id = orjson.loads(await request.read())["course_id"]
    async with request.app[POOL].acquire() as conn:
        # No waitlist, no overrides, no sourced_id (a new UUID), no actor.
        row = await conn.fetchrow(
            *Q.enroll.bind(
                student_id=student_id,
                course_id=course_id,
                waitlist=False,
                overrides=None,
                sourced_id=None,
                actor="",
            )
        )
    return _json(dict(row), status=201 if row["outcome"] == "enrolled" else 200)


async def drop(request: web.Request) -> web.Response:
    student_id = int(request.match_info["student_id"])
    course_id = int(request.match_info["course_id"])
    async with request.app[POOL].acquire() as conn:
        # No overrides, no actor.
        outcome = await conn.fetchval(Q.delete_enrollment, student_id, course_id, None, "")
    if outcome != "dropped":
        return web.Response(body=NOT_FOUND, status=404, content_type="application/json")
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


def create_app(dsn: str, pool_size: int) -> web.Application:
    async def pool_context(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn, min_size=pool_size, max_size=pool_size, reset=_no_reset
        )
        try:
            app[POOL] = pool
            yield
        finally:
            await pool.close()

    app = web.Application()
    app.cleanup_ctx.append(pool_context)
    app.add_routes(
        [
            web.get("/students/{student_id}/courses", student_courses),
            web.post("/students/{student_id}/courses", enroll),
            web.delete("/students/{student_id}/courses/{course_id}", drop),
            web.get("/courses/{course_id}/students", course_students),
            web.get("/healthz", healthz),
        ]
    )
    return app


def run_worker(dsn: str, port: int, pool_size: int, reuse_port: bool) -> None:
    web.run_app(
        create_app(dsn, pool_size),
        host="127.0.0.1",
        port=port,
        reuse_port=reuse_port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=64)
    args = parser.parse_args()
    if args.workers == 1:
        run_worker(args.dsn, args.port, args.pool_size, reuse_port=False)
        return
    # Like the service: N spawned processes share the port with SO_REUSEPORT.
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=run_worker, args=(args.dsn, args.port, args.pool_size, True))
        for _ in range(args.workers)
    ]

    def stop(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
