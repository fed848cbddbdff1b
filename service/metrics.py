"""Prometheus metrics: requests by route template, pool use, enrollment outcomes.

Labels carry route templates such as /students/{student_id}, never raw paths,
so label cardinality stays fixed whatever ids clients send. With several
worker processes (WEB_CONCURRENCY > 1) every worker writes its samples to
PROMETHEUS_MULTIPROC_DIR and /metrics adds them up, whichever worker answers.
"""

from __future__ import annotations

import os
from bisect import bisect_left

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
        # Requests and outcomes are counted in plain Python objects and added
        # to the prometheus_client metrics by flush(), every second
        # (db.pool_metrics) and before every scrape. Each prometheus_client
        # update takes a lock, and an observation walks the buckets: about
        # 3 us per request, against under 1 us for the counting below.
        self._pending: dict[tuple[str, str, int], list[float]] = {}
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.outcomes = dict.fromkeys(ENROLLMENT_OUTCOMES, 0)
        for outcome in ENROLLMENT_OUTCOMES:
            self.enrollments.labels(outcome)
        # Set into the gauge by the same sampler, like the pool gauges.
        self.requests_in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counts = self._pending.get((method, route, status))
        if counts is None:
            # [sum of seconds, then one count per bucket, +Inf last]
            counts = self._pending[method, route, status] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        counts[0] += seconds
        counts[1 + bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def flush(self) -> None:
        for key, counts in self._pending.items():
            observed = int(sum(counts[1:]))
            if not observed:
                continue
            counter, histogram = self._children_of(key)
            counter.inc(observed)
            # What Histogram.observe does for one value, for all of them at
            # once: its per-bucket (not cumulative) counts and its sum.
            # tests/test_metrics.py checks the exposed buckets and sum.
            histogram._sum.inc(counts[0])
            for bucket, n in zip(histogram._buckets, counts[1:], strict=True):
                if n:
                    bucket.inc(n)
            counts[:] = [0.0] * len(counts)
        outcomes = self.outcomes
        for outcome, count in outcomes.items():
            if count:
                self.enrollments.labels(outcome).inc(count)
                outcomes[outcome] = 0

    def _children_of(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        pair = self._children.get(key)
        if pair is None:
            labels = (key[0], key[1], str(key[2]))
            pair = self._children[key] = self.requests.labels(*labels), self.latency.labels(*labels)
        return pair

    def render(self) -> bytes:
        self.flush()
        if directory := multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
            return generate_latest(registry)
        return generate_latest(self.registry)
