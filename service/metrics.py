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

from .outcomes import ENROLL_OUTCOMES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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
        self.outcomes = {o: self.enrollments.labels(o.value) for o in ENROLL_OUTCOMES}
        # Sampled into the in-flight gauge every second (db.pool_metrics), like
        # the pool gauges: a livesum gauge writes a shared file on every change.
        self.requests_in_flight = 0
        # Label children by (method, route, status): labels() takes a lock
        # and builds a key on every call; the children are what it returns.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        pair = self._children.get((method, route, status))
        if pair is None:
            labels = (method, route, str(status))
            pair = self.requests.labels(*labels), self.latency.labels(*labels)
            self._children[method, route, status] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def render(self) -> bytes:
        if directory := multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
            return generate_latest(registry)
        return generate_latest(self.registry)
