"""GET /metrics: Prometheus text by route template, enrollment outcomes, pool gauges."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from service.app import create_app
from service.config import Config, Token
from service.outcomes import ENROLL_OUTCOMES

from .api import create_course, create_student, enroll
from .test_shutdown import serving, wait_sessions

REGISTRAR = Token("registrar", "write", "3f9c0b6a1d2e4f5a8b7c6d5e4f3a2b1c")
DASHBOARD = Token("dashboard", "read", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d")
CONTENT_TYPE = "text/plain; version=0.0.4"
STUDENT = "/students/{student_id}"
SAMPLER_PERIOD = 1.0  # db.pool_metrics refreshes the gauges and flushes counters this often


def parse(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def scrape(client: TestClient, headers: dict[str, str] | None = None) -> list[Sample]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith(CONTENT_TYPE)
    return parse(await response.text())


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample called `name` whose labels include `labels` (0 if absent)."""
    found = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0].value if found else 0.0


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum over every sample called `name` whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def templates(client: TestClient) -> set[str]:
    """The route templates, not counting the catch-all (whose label is "unmatched")."""
    return {
        r.resource.canonical
        for r in client.app.router.routes()
        if r.resource is not None and r.method != "*"
    }


async def test_metrics_is_prometheus_text(client):
    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(await response.text())}
    expected = {
        "http_requests",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "db_pool_connections",
        "db_pool_connections_in_use",
        "enrollments",
    }
    assert expected <= names, names


async def test_requests_are_counted_by_route_template_not_by_path(client):
    student = await create_student(client)
    assert (await client.get(f"/students/{student['id']}")).status == 200
    missing = [1_000_000 + 7919 * n for n in range(50)]  # 50 different ids, none exists
    for student_id in missing:
        assert (await client.get(f"/students/{student_id}")).status == 404
    assert (await client.get("/students/not-a-number")).status == 404  # same route, no id

    samples = await scrape(client)

    count = "http_requests_total"
    assert value(samples, count, method="GET", route=STUDENT, status="200") == 1
    assert value(samples, count, method="GET", route=STUDENT, status="404") == 51
    assert value(samples, count, method="POST", route="/students", status="201") == 1
    # One series per (method, route, status), whatever ids were asked for.
    series = [s for s in samples if s.name == count and s.labels["route"] == STUDENT]
    assert len(series) == 2, series
    allowed = templates(client) | {"unmatched"}
    for sample in samples:
        if "route" in sample.labels:
            assert sample.labels["route"] in allowed, sample
        for label in sample.labels.values():
            assert not any(str(i) in label for i in missing), sample


async def test_latency_histogram_has_the_same_labels(client):
    for _ in range(3):
        assert (await client.get("/students")).status == 200

    samples = await scrape(client)

    labels = {"method": "GET", "route": "/students", "status": "200"}
    buckets = [
        s
        for s in samples
        if s.name == "http_request_duration_seconds_bucket" and labels.items() <= s.labels.items()
    ]
    assert len(buckets) >= 10, buckets
    assert all(s.labels.keys() == {*labels, "le"} for s in buckets), buckets
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts)  # cumulative
    assert value(samples, "http_request_duration_seconds_bucket", le="+Inf", **labels) == 3
    assert value(samples, "http_request_duration_seconds_count", **labels) == 3
    assert value(samples, "http_requests_total", **labels) == 3
    assert value(samples, "http_request_duration_seconds_sum", **labels) > 0


async def test_unknown_paths_are_labelled_unmatched(client):
    for path in ("/nope", "/nope/123", "/students/1/courses/2/extra", "/admin/4711"):
        assert (await client.get(path)).status == 404

    samples = await scrape(client)

    assert value(samples, "http_requests_total", route="unmatched", status="404") == 4
    routes = {s.labels.get("route") for s in samples if s.name == "http_requests_total"}
    assert not any(r and ("nope" in r or "admin" in r or "extra" in r) for r in routes), routes


async def test_enrollment_outcomes_are_counted_exactly(client):
    first = await create_student(client)
    second = await create_student(client)
    small = await create_course(client, capacity=1)
    big = await create_course(client)
    outcomes = [
        (first["id"], small["id"], 201),  # enrolled
        (first["id"], small["id"], 200),  # already-enrolled
        (second["id"], small["id"], 409),  # course-full
        (first["id"], 987_654, 404),  # course-not-found
        (987_654, big["id"], 404),  # student-not-found
        (first["id"], big["id"], 201),  # enrolled
    ]
    for student_id, course_id, status in outcomes:
        assert (await enroll(client, student_id, course_id)).status == status
    # Refused before reaching the database: no outcome at all.
    bad = await client.post(f"/students/{first['id']}/courses", json={})
    assert bad.status == 422

    samples = await scrape(client)

    counted = {
        outcome: value(samples, "enrollments_total", outcome=outcome) for outcome in ENROLL_OUTCOMES
    }
    assert {outcome: n for outcome, n in counted.items() if n} == {
        "enrolled": 2,
        "already-enrolled": 1,
        "course-full": 1,
        "course-not-found": 1,
        "student-not-found": 1,
    }
    assert total(samples, "enrollments_total") == 6


async def until(probe, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.2)


async def test_pool_and_in_flight_gauges_follow_the_load(client, db):
    async def gauges() -> dict[str, float]:
        samples = await scrape(client)
        return {
            name: value(samples, name)
            for name in (
                "db_pool_connections",
                "db_pool_connections_in_use",
                "http_requests_in_flight",
            )
        }

    # The sampler sets the gauges about once a second.
    await asyncio.sleep(SAMPLER_PERIOD * 1.2)
    idle = await gauges()
    assert idle["db_pool_connections"] >= 1  # pool_min_size is 1
    assert idle["db_pool_connections_in_use"] == 0
    assert idle["http_requests_in_flight"] == 0

    # A request blocked on a table lock holds a connection and stays in flight.
    locked = db.transaction()
    await locked.start()
    await db.execute("lock table students in access exclusive mode")
    blocked = asyncio.create_task(client.get("/students"))
    try:

        async def busy() -> dict[str, float] | None:
            g = await gauges()
            return g if g["http_requests_in_flight"] >= 1 else None

        during = await until(busy, 3 * SAMPLER_PERIOD, "the blocked request is sampled")
        assert during["db_pool_connections_in_use"] >= 1
        assert during["db_pool_connections"] >= 1
    finally:
        await locked.rollback()
        async with asyncio.timeout(10):
            response = await blocked
            await response.read()
    assert response.status == 200

    async def calm() -> bool:
        g = await gauges()
        return g["http_requests_in_flight"] == 0 and g["db_pool_connections_in_use"] == 0

    await until(calm, 3 * SAMPLER_PERIOD, "the gauges fall back to 0")


async def test_metrics_needs_a_token_when_tokens_are_configured(config: Config, aiohttp_client):
    secured = await aiohttp_client(create_app(replace(config, tokens=(REGISTRAR, DASHBOARD))))

    refused = await secured.get("/metrics")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await secured.get("/metrics", headers={"Authorization": "Bearer " + "0" * 32})
    assert wrong.status == 401
    for token in (DASHBOARD, REGISTRAR):  # read is enough
        samples = await scrape(secured, {"Authorization": f"Bearer {token.secret}"})
        assert any(s.name == "http_requests_total" for s in samples)
    # The refused scrapes are counted too, under the metrics route.
    samples = await scrape(secured, {"Authorization": f"Bearer {DASHBOARD.secret}"})
    assert value(samples, "http_requests_total", route="/metrics", status="401") == 2


# -- several workers ---------------------------------------------------------------------


async def test_metrics_add_up_across_workers(database_url, tmp_path: Path):
    sent = 40
    settings = {"WEB_CONCURRENCY": "2", "DB_POOL_MIN_SIZE": "1"}
    async with serving(database_url, tmp_path, **settings) as server:
        admin = await asyncpg.connect(database_url)
        try:
            # Both workers opened their pool, so both are about to listen.
            await wait_sessions(admin, database_url, 2)
        finally:
            await admin.close()

        # A new connection per request: SO_REUSEPORT spreads connections, not requests.
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(
            server.url, timeout=timeout, connector=connector
        ) as session:
            served_by = set()
            for n in range(sent):
                async with session.get(f"/students/{n + 1}") as response:
                    assert response.status == 404
                    await response.read()
                    # Request ids start with a random prefix per process.
                    served_by.add(response.headers["X-Request-ID"].rsplit("-", 1)[0])
            assert len(served_by) == 2, served_by

            # The other worker adds its count within a second.
            await asyncio.sleep(1.5 * SAMPLER_PERIOD)
            scraped_by = set()
            for _ in range(30):
                async with session.get("/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith(CONTENT_TYPE)
                    samples = parse(await response.text())
                    scraped_by.add(response.headers["X-Request-ID"].rsplit("-", 1)[0])
                labels = {"method": "GET", "route": STUDENT, "status": "404"}
                assert total(samples, "http_requests_total", **labels) == sent
                assert total(samples, "http_request_duration_seconds_count", **labels) == sent
                # Each worker holds its pool's one connection; the gauges are summed.
                assert total(samples, "db_pool_connections") >= 2
                if scraped_by == served_by:
                    break
            assert scraped_by == served_by  # whichever worker answers, the sum is the same

        server.process.send_signal(signal.SIGTERM)
        assert await server.exited(within=15) == 0
