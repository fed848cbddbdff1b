"""Prometheus metrics: requests by route template, pool use, enrollment outcomes.

Labels carry route templates such as /students/{student_id}, never raw paths,
so label cardinality stays fixed whatever ids clients send. With several
worker processes (WEB_CONCURRENCY > 1) every worker writes its samples to
PROMETHEUS_MULTIPROC_DIR and /metrics adds them up, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ENROLLMENT_OUTCOMES = ("created", "existing", "full", "missing")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being handled now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "db_pool_connections",
            "Open database connections in the pool.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_in_use = Gauge(
            "db_pool_connections_in_use",
            "Pool connections lent to requests.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.enrollments = Counter(
            "enrollments_total",
            "Enrollment requests by outcome.",
            ("outcome",),
            registry=r,
        )
        for outcome in ENROLLMENT_OUTCOMES:
            self.enrollments.labels(outcome)
        # labels() takes a lock and builds a key on every call; the set of
        # (method, route, status) is small and fixed, so keep the children.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._unflushed: dict[tuple[str, str, int], int] = {}
        # Counted in a plain int per request; the gauge is set from it by the
        # sampler every second (see db.pool_metrics), like the pool gauges.
        self.requests_in_flight = 0

    def started(self) -> None:
        self.requests_in_flight += 1

    def finished(self) -> None:
        self.requests_in_flight -= 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self.requests.labels(*labels), self.latency.labels(*labels)
            self._children[key] = children
            self._unflushed[key] = 0
        # Counted in a plain int and added to the counter by flush(), which
        # runs every second and before every scrape; the histogram is exact.
        self._unflushed[key] += 1
        children[1].observe(seconds)

    def flush(self) -> None:
        unflushed = self._unflushed
        for key, count in unflushed.items():
            if count:
                self._children[key][0].inc(count)
                unflushed[key] = 0

    def render(self) -> bytes:
        self.flush()
        if directory := multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
            return generate_latest(registry)
        return generate_latest(self.registry)
