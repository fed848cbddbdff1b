"""Load-test the service against a minimal reference server on the same SQL.

    python -m bench [--students N] [--courses M] [--per-student K] [--workers W] ...

Prepares a throw-away database (the embedded PostgreSQL under
.data/bench-pg, or the server BENCH_DATABASE_URL points at, where it creates
`enrollment_bench`), starts `python -m service serve` and bench/reference.py
with the same number of workers, drives each scenario with wrk against both
(in alternating order, round by round), and prints one table and whether the
service met issue 4's targets (also written to .data/bench/last.md, or under
--out). --soak instead runs the service alone for 60 s and reports its
workers' memory.

Issue 16's scenarios never repeat a request, each run on courses of its own
(bench/dataset.py builds them before every invocation, from the reserved
students): hot-course-empty and hot-course-prefilled enroll distinct
students into one course without a capacity, empty or holding
--hot-enrolled students at the start; drop-promote drops seats of many full
courses with long queues, so every drop promotes a student. They are judged
against other scenarios of the same run (COMPARISONS) and run interleaved
with them, round by round.

The feed scenario (issue 17) runs the enroll load against the service alone
(the reference has no /events) while a follower in this process reads
GET /events, and reports how long after its commit each enrollment's event
reached the follower (bench/feed.py): a row of the main table for the load,
a table of its own for the lag, a verdict against FEED_TARGET_LAG. It runs
interleaved with enroll, round by round, whose req/s it is shown against.

The bulk scenario posts POST /enrollments/batch of 500 new enrollments per
request (each into an empty course of its own without a capacity, from the
reserved students) to the service alone, and reports its enrollments per
second against enroll's req/s in the same rounds (target: at least 10x),
with the enrollments the database holds after each run checked against
those answered.

Issue 27's scenarios run with the rules of registration on, each run in a
term of its own (built by SQL, bench/dataset.py): enroll-rules enrolls
students, never the same pair twice, into courses with meetings, credits
and a prerequisite each, which every request passes (a time ticket, the
prerequisite completed, no overlap, within the credit limit), judged
against the reference's plain enroll in the same rounds (AGAINST_REFERENCE);
bulk-rules is bulk into such courses, judged against enroll-rules as bulk is
against enroll; rush sends random students into 20 hot sections of one
term (some overlapping, a credit limit, few seats, short waitlists), with
drops, on the service alone, counts the answers by status and problem type
(409s are expected there), and checks the term's invariants in SQL after
each run (bench/dataset.py's RUSH_INVARIANTS).

The queue scenario (issue 23, bench/queue.py), run by default when
--reserved-students holds its 54,000, needs neither wrk nor the reference: per round, on a course of
its own with 50,000 students waiting, it times a 1,000-item batch of
students at the back of the queue and a capacity raise that promotes
10,000, with single enrolls into that course sent meanwhile, and reports
them in a table of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shlex
import shutil
import statistics
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from service.embedded import EmbeddedPostgres, free_port

from . import dataset, feed, queue, servers, wrk
from .servers import ROOT, RssSampler, Server

OUT = ROOT / ".data" / "bench"
PG_DATA = ROOT / ".data" / "bench-pg"
SOAK_TARGET_MIB = 100
# The targets of issue 4, for the scenarios they apply to (the constant
# endpoint is the HTTP ceiling, not a target): the service's req/s at least
# this share of the reference's, its p99 at most this multiple, no errors.
TARGET_SCENARIOS = ("student-courses", "enroll", "course-students")
TARGET_RATE = 0.85
TARGET_P99 = 1.5
# Issue 16's targets, against another scenario of the same run rather than
# the reference: (scenario, baseline, the service's req/s at least this
# share of its own req/s in the baseline, or None: shown, no target).
COMPARISONS = (
    ("hot-course-prefilled", "hot-course-empty", 0.8),
    ("drop-promote", "enroll", 0.7),
    ("hot-course-empty", "enroll", None),
    ("hot-course-prefilled", "enroll", None),
)
# Issue 27's target: (scenario, the reference's scenario, the service's req/s
# in the first at least this share of the reference's in the second, paired
# by round), no errors. The reference answers enroll-rules too (the rules are
# the database's, enroll_run()): shown, no target.
AGAINST_REFERENCE = ((dataset.RULES_SCENARIO, "enroll", 0.85),)
# The feed scenario's target: the follower gets an enrollment's event within
# this many seconds of its commit at the 99th percentile, under the enroll
# load. Its load's req/s is shown against FEED_BASELINE's, with no target.
FEED_TARGET_LAG = 1.0
FEED_BASELINE = "enroll"
# The bulk scenario (POST /enrollments/batch, service only): its enrollments
# per second, BULK_ITEMS per request, at least BULK_TARGET times the req/s of
# BULK_BASELINE (one enrollment per request) in the same rounds.
BULK_BASELINE = "enroll"
BULK_TARGET = 10
# bulk-rules the same, against enroll-rules: each batch scenario's baseline.
BULKS = {
    dataset.BULK_SCENARIO: BULK_BASELINE,
    dataset.BULK_RULES_SCENARIO: dataset.RULES_SCENARIO,
}
# The rush scenario's answers that are not errors: the others (404, 503,
# 409 for a rule its data never breaks) fail it, as do socket errors and
# any invariant violation (bench/dataset.py's RUSH_INVARIANTS).
RUSH_EXPECTED = (
    "200",
    "201",
    "202",
    "204",
    "409 course-full",
    "409 waitlist-full",
    "409 prerequisite-missing",
    "409 time-conflict",
    "409 credit-limit",
)
# The scenarios whose answers wrk counts by status (a cost the others skip).
COUNTED = (dataset.RUSH_SCENARIO,)
# The lookup scenarios (GET /students?q=: of text matching few of the
# students; of text whose trigrams every row holds and that matches none; of
# text only the highest ids match) against a plain page of GET /students in
# the same rounds: the service's p50 at most this multiple of the plain
# page's. The reference has neither: they run on the service alone.
LOOKUP = "lookup"
LOOKUPS = (LOOKUP, "lookup-common", "lookup-late")
LOOKUP_BASELINE = "students-page"
LOOKUP_TARGET_P50 = 3.0
# Issue 28's target: a OneRoster provider page of 1,000 users (roster-users)
# against a plain GET /students?limit=500 in the same rounds, p50 at most
# this multiple. Service only.
ROSTER = "roster-users"
ROSTER_BASELINE = "students-page-500"
ROSTER_TARGET_P50 = 3.0
SCENARIOS = (*wrk.SCENARIOS, feed.SCENARIO)
# Run by default only when --reserved-students is enough for them: queue
# needs 54,000 (a small run, such as tests/test_bench.py's, leaves it out).
ON_REQUEST = (queue.SCENARIO,)
# The scenarios the reference cannot serve: run on the service alone.
SERVICE_ONLY = (
    feed.SCENARIO,
    dataset.BULK_SCENARIO,
    dataset.BULK_RULES_SCENARIO,
    dataset.RUSH_SCENARIO,
    *LOOKUPS,
    LOOKUP_BASELINE,
    ROSTER,
    ROSTER_BASELINE,
)
# The scenarios measured by this process rather than by wrk, on the service
# alone, with a table of their own.
WITHOUT_WRK = (queue.SCENARIO,)
# Scenarios shown against one another, run in the same block (see run_order).
RELATED = (
    *((s, b) for s, b, _ in COMPARISONS),
    *((s, b) for s, b, _ in AGAINST_REFERENCE),
    (feed.SCENARIO, FEED_BASELINE),
    *BULKS.items(),
    *((lookup, LOOKUP_BASELINE) for lookup in LOOKUPS),
    (ROSTER, ROSTER_BASELINE),
)

# Concurrent batches, searches and long polls the bench's one token may hold:
# more than any wrk run opens connections (service/limits.py).
LIMIT_FOR_WRK = 10_000


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("dataset (reloaded only when these change)")
    data.add_argument("--students", type=_positive, default=100_000)
    data.add_argument("--courses", type=_positive, default=2_000)
    data.add_argument("--per-student", type=_positive, default=5, help="enrollments per student")
    data.add_argument(
        "--reserved-students",
        type=_positive,
        default=100_000,
        help="students beyond --students, for the scenarios that never repeat a request and "
        "the rules': a hot-course run may enroll all of them but --hot-enrolled, a drop-promote "
        "run drop the seats of half of them (the other half waits), an enroll-rules run enroll "
        "each in 4 courses, bulk and bulk-rules go through them in passes, rush takes the first "
        "400. The default lasts a 10 s run at 5,000 req/s: raise it for faster machines or "
        "longer runs",
    )
    runs = parser.add_argument_group("the runs' own courses (built anew every time)")
    runs.add_argument(
        "--hot-enrolled",
        type=_positive,
        default=50_000,
        help="students in hot-course-prefilled's course before the run",
    )
    load = parser.add_argument_group("load")
    load.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="processes per server (default: the CPU count, like WEB_CONCURRENCY)",
    )
    load.add_argument("--connections", type=_positive, default=64, help="wrk -c")
    load.add_argument("--threads", type=_positive, default=2, help="wrk -t")
    # Several short rounds rather than one long one: the per-round ratios
    # spread widely on a shared machine, and an even count lets each server
    # go first equally often.
    load.add_argument("--duration", type=float, default=10, help="seconds measured per run")
    load.add_argument("--warmup", type=float, default=3, help="seconds before each run")
    load.add_argument(
        "--rounds",
        type=_positive,
        default=4,
        help="runs per server, alternating which goes first (keep it even); medians",
    )
    load.add_argument(
        "--scenarios",
        default=None,
        help=f"comma-separated, from {', '.join((*SCENARIOS, *ON_REQUEST))} (default: all; "
        f"{', '.join(ON_REQUEST)} only with enough --reserved-students)",
    )
    load.add_argument(
        "--soak",
        action="store_true",
        help="run student-courses against the service only, report worker memory",
    )
    load.add_argument("--soak-seconds", type=float, default=60)
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="where the report and the servers' logs go (default: .data/bench)",
    )
    args = parser.parse_args(argv)
    queued = dataset.QUEUE_SEATS + dataset.QUEUE_WAITING + dataset.QUEUE_SINGLES
    if args.scenarios is None:
        chosen = [*SCENARIOS, *(() if args.reserved_students < queued else ON_REQUEST)]
        args.scenarios = ",".join(chosen)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(args.scenarios) - {*SCENARIOS, *ON_REQUEST}:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.per_student > args.courses:
        parser.error("--per-student cannot exceed --courses (the courses are distinct)")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections")
    hot = set(args.scenarios) & set(dataset.HOT_SCENARIOS)
    if hot and args.hot_enrolled >= args.reserved_students:
        parser.error("--hot-enrolled must be below --reserved-students: the rest enroll")
    if dataset.DROP_SCENARIO in args.scenarios and args.reserved_students < 2 * dataset.DROP_SEATS:
        parser.error(f"drop-promote needs --reserved-students of at least {2 * dataset.DROP_SEATS}")
    if queue.SCENARIO in args.scenarios and args.reserved_students < queued:
        parser.error(f"queue needs --reserved-students of at least {queued}")
    for scenario, needed in (
        (dataset.BULK_RULES_SCENARIO, dataset.BULK_ITEMS),
        (dataset.RUSH_SCENARIO, dataset.RUSH_STUDENTS),
    ):
        if scenario in args.scenarios and args.reserved_students < needed:
            parser.error(f"{scenario} needs --reserved-students of at least {needed}")
    return args


@dataclass
class Row:
    scenario: str
    server: str
    results: list[wrk.Result]
    # Server CPU time per request, in microseconds: the serving processes'
    # user+system time over a run divided by the requests answered. Steadier
    # than req/s on a shared machine, since it does not depend on who else
    # got the cores. In the feed scenario, the follower's page reads are
    # part of that time, divided by the enroll requests alone.
    cpu_us: list[float]
    # The feed scenario's follower, one per round.
    followed: list[feed.Followed] = field(default_factory=list)
    # The bulk scenarios: enrollments found in each round's courses after its run.
    stored: list[int] = field(default_factory=list)
    # The rush scenario: each round's RUSH_INVARIANTS violations, by invariant.
    violations: list[dict[str, int]] = field(default_factory=list)

    def values(self, attribute: str) -> list[float]:
        """One value per round: cpu_us, or a wrk.Result attribute."""
        if attribute == "cpu_us":
            return self.cpu_us
        return [getattr(r, attribute) for r in self.results]

    def median(self, attribute: str) -> float:
        return statistics.median(self.values(attribute))

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.results)

    @property
    def socket_errors(self) -> str:
        return "/".join(str(sum(r.socket_errors[i] for r in self.results)) for i in range(4))


def _latency(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


HEADER = (
    "scenario",
    "server",
    "req/s",
    "p50",
    "p99",
    "non-2xx",
    "socket errors c/r/w/t",
    "req/s vs ref",
    "p99 vs ref",
    "CPU us/req",
    "CPU vs ref",
)


def paired_ratio(values: list[float], reference: list[float]) -> float:
    """The median of round-by-round ratios.

    Each round runs both servers, so a ratio within a round compares runs a
    few seconds apart: a shared machine slowing down or speeding up between
    rounds cancels out, where a ratio of the two medians would carry it.
    Rounds alternate which server goes first (see `main`), so what one run
    leaves behind for the next (enroll's new rows, the autovacuum and
    checkpoint work they trigger) falls on both servers alike.
    """
    return statistics.median(v / r for v, r in zip(values, reference, strict=True))


def _vs_ref(row: Row, ref: Row | None, attribute: str) -> str:
    if ref is None:
        return "-"
    return f"{paired_ratio(row.values(attribute), ref.values(attribute)):.2f}"


def table(rows: list[Row]) -> list[tuple[str, ...]]:
    reference = {row.scenario: row for row in rows if row.server == "reference"}
    cells = []
    for row in rows:
        ref = reference.get(row.scenario)
        cells.append(
            (
                row.scenario,
                row.server,
                f"{row.median('requests_per_sec'):,.0f}",
                _latency(row.median("p50")),
                _latency(row.median("p99")),
                str(row.non_2xx),
                row.socket_errors,
                _vs_ref(row, ref, "requests_per_sec"),
                _vs_ref(row, ref, "p99"),
                f"{row.median('cpu_us'):.0f}",
                _vs_ref(row, ref, "cpu_us"),
            )
        )
    return cells


FEED_HEADER = (
    "scenario",
    "server",
    "events followed",
    "lag p50",
    "lag p99",
    "lag max",
    "page reads/s",
    "enroll req/s",
    f"req/s vs {FEED_BASELINE}",
)


def _lags(row: Row) -> list[float]:
    """Every round's lags together: the percentiles are over all the events followed."""
    return [lag for followed in row.followed for lag in followed.lags]


def feed_table(rows: list[Row]) -> list[tuple[str, ...]]:
    """The feed scenario's row of FEED_HEADER, if it ran."""
    baseline = {row.server: row for row in rows if row.scenario == FEED_BASELINE}
    cells = []
    for row in rows:
        if row.scenario != feed.SCENARIO:
            continue
        lags = _lags(row)
        pages = sum(f.pages for f in row.followed)
        seconds = sum(f.seconds for f in row.followed)
        cells.append(
            (
                row.scenario,
                row.server,
                f"{len(lags):,}",
                *(
                    _latency(feed.percentile(lags, share)) if lags else "-"
                    for share in (0.5, 0.99, 1)
                ),
                f"{pages / seconds:,.0f}" if seconds else "-",
                f"{row.median('requests_per_sec'):,.0f}",
                _vs_ref(row, baseline.get(row.server), "requests_per_sec"),
            )
        )
    return cells


def feed_caption(rows: list[Row]) -> str:
    offsets = [f.clock_offset for row in rows for f in row.followed]
    return (
        f"{feed.SCENARIO}: the {feed.LOAD} load on the service while a follower reads "
        f"GET /events (limit {feed.LIMIT}, wait {feed.WAIT}); an event's lag is from its `at` "
        "(its transaction's start: the lag is over by the transaction's duration) to the "
        "receipt of its page, percentiles over every round's events; page reads/s: pages "
        "asked for per second of load; the database's clock minus the bench's: up to "
        f"{max(map(abs, offsets), default=0) * 1e3:.3f} ms, taken out"
    )


def text_table(cells: list[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> str:
    rows = [header, *cells]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        # Names to the left, numbers to the right.
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, cells)])


def markdown_table(cells: list[tuple[str, ...]], header: tuple[str, ...] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * 2 + " ---: |" * (len(header) - 2)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _errors(row: Row) -> int:
    return row.non_2xx + sum(sum(r.socket_errors) for r in row.results)


def verdicts(rows: list[Row]) -> list[str]:
    """Each targeted scenario against its targets: met or NOT met.

    Issue 4's against the reference, then COMPARISONS: those with a target
    as a verdict, the others as information; the feed's lag (issue 17); and
    a warning for any run that ran past the data prepared for it.
    """
    reference = {row.scenario: row for row in rows if row.server == "reference"}
    lines = []
    for row in rows:
        ref = reference.get(row.scenario)
        if row.server != "service" or row.scenario not in TARGET_SCENARIOS or ref is None:
            continue
        rate = paired_ratio(row.values("requests_per_sec"), ref.values("requests_per_sec"))
        p99 = paired_ratio(row.values("p99"), ref.values("p99"))
        errors = _errors(row)
        met = rate >= TARGET_RATE and p99 <= TARGET_P99 and errors == 0
        lines.append(
            f"{row.scenario}: req/s {rate:.3f} of the reference (target >= {TARGET_RATE}), "
            f"p99 {p99:.3f}x (target <= {TARGET_P99}x), {errors} non-2xx and socket "
            f"errors (target 0): {'met' if met else 'NOT met'}"
        )
    rates = {(row.scenario, row.server): row.values("requests_per_sec") for row in rows}
    failed = {(row.scenario, row.server): _errors(row) for row in rows}
    for scenario, baseline, target in COMPARISONS:
        both = ("service", "reference")
        if not all((s, server) in rates for s in (scenario, baseline) for server in both):
            continue
        ours, theirs = (
            paired_ratio(rates[scenario, server], rates[baseline, server]) for server in both
        )
        line = f"{scenario}: req/s {ours:.3f} of {baseline}'s"
        if target is None:
            lines.append(f"{line} (the reference's {theirs:.3f}; no target)")
            continue
        errors = failed[scenario, "service"] + failed[baseline, "service"]
        met = ours >= target and errors == 0
        lines.append(
            f"{line} (target >= {target}; the reference's {theirs:.3f}), {errors} non-2xx "
            f"and socket errors in the two (target 0): {'met' if met else 'NOT met'}"
        )
    by_key = {(row.scenario, row.server): row for row in rows}
    for scenario, baseline, target in AGAINST_REFERENCE:
        ours, theirs = by_key.get((scenario, "service")), by_key.get((baseline, "reference"))
        if ours is not None and theirs is not None:
            lines.append(
                against_reference_verdict(ours, theirs, by_key.get((scenario, "reference")), target)
            )
    for row in rows:
        if row.scenario == feed.SCENARIO:
            lines.append(feed_verdict(row, by_key.get((FEED_BASELINE, row.server))))
        if row.scenario in BULKS:
            lines.append(bulk_verdict(row, by_key.get((BULKS[row.scenario], row.server))))
    plain = by_key.get((LOOKUP_BASELINE, "service"))
    for scenario in LOOKUPS:
        lookup = by_key.get((scenario, "service"))
        if lookup is not None and plain is not None:
            lines.append(lookup_verdict(lookup, plain))
    roster, page = by_key.get((ROSTER, "service")), by_key.get((ROSTER_BASELINE, "service"))
    if roster is not None and page is not None:
        lines.append(roster_verdict(roster, page))
    if (rush := by_key.get((dataset.RUSH_SCENARIO, "service"))) is not None:
        lines.append(rush_verdict(rush))
    for row in rows:
        if past_end := sum(r.past_end for r in row.results):
            lines.append(
                f"{row.scenario}, {row.server}: {past_end:,} requests found no data left for "
                "them (answered 404, counted as non-2xx): raise --reserved-students"
            )
    return lines


def feed_verdict(row: Row, baseline: Row | None) -> str:
    """The feed scenario against FEED_TARGET_LAG, and every recorded event followed once."""
    lags = _lags(row)
    p99 = feed.percentile(lags, 0.99) if lags else math.inf
    recorded = sum(f.recorded for f in row.followed)
    out_of_order = sum(f.out_of_order for f in row.followed)
    behind = sum(not f.caught_up for f in row.followed)
    errors = _errors(row) + sum(f.failed_reads for f in row.followed)
    complete = len(lags) == recorded and out_of_order == 0 and behind == 0
    met = p99 < FEED_TARGET_LAG and complete and errors == 0
    line = (
        f"{row.scenario}: lag p99 {p99 * 1e3:.1f} ms (target < {FEED_TARGET_LAG * 1e3:.0f} ms); "
        f"{len(lags):,} {feed.EVENT} events followed of the {recorded:,} recorded, "
        f"{out_of_order} out of order"
    )
    if behind:
        line += f", {behind} run(s) not caught up {feed.DRAIN_WITHIN:g} s after the load"
    line += (
        " (target: all, in order); "
        f"{errors} non-2xx, socket errors and failed page reads (target 0)"
    )
    if baseline is not None:
        rate = paired_ratio(row.values("requests_per_sec"), baseline.values("requests_per_sec"))
        line += f"; {feed.LOAD} req/s {rate:.3f} of {baseline.scenario}'s (no target)"
    return f"{line}: {'met' if met else 'NOT met'}"


def against_reference_verdict(row: Row, baseline: Row, same: Row | None, target: float) -> str:
    """The service's scenario against another scenario of the reference, paired by round.

    `same` is the reference's run of the service's scenario, if it ran: its
    ratios are shown, with no target.
    """
    rates = row.values("requests_per_sec")
    rate = paired_ratio(rates, baseline.values("requests_per_sec"))
    p99 = paired_ratio(row.values("p99"), baseline.values("p99"))
    errors = _errors(row)
    met = rate >= target and errors == 0
    line = (
        f"{row.scenario}: req/s {rate:.3f} of the reference's {baseline.scenario} "
        f"(target >= {target}), p99 {p99:.3f}x its (no target)"
    )
    if same is not None:
        alike = paired_ratio(rates, same.values("requests_per_sec"))
        cost = paired_ratio(same.values("requests_per_sec"), baseline.values("requests_per_sec"))
        line += (
            f"; {alike:.3f} of the reference's {row.scenario}, which is {cost:.3f} of its "
            f"{baseline.scenario} (no target)"
        )
    return f"{line}; {errors} non-2xx and socket errors (target 0): {'met' if met else 'NOT met'}"


def rush_verdict(row: Row) -> str:
    """The rush's answers by kind, none unexpected, and its invariants after every run."""
    answered: Counter[str] = Counter()
    for result in row.results:
        answered.update(result.statuses)
    unexpected = sum(n for kind, n in answered.items() if kind not in RUSH_EXPECTED)
    sockets = sum(sum(r.socket_errors) for r in row.results)
    broken: Counter[str] = Counter()
    for violations in row.violations:
        broken.update(violations)
    violated = sum(broken.values())
    met = bool(answered) and unexpected == 0 and sockets == 0 and violated == 0
    kinds = ", ".join(f"{kind} {answered[kind]:,}" for kind in sorted(answered)) or "nothing"
    line = (
        f"{row.scenario}: {row.median('requests_per_sec'):,.0f} req/s, p99 "
        f"{_latency(row.median('p99'))}; answered {kinds}; {unexpected:,} answers other than "
        f"{', '.join(RUSH_EXPECTED)} and {sockets} socket errors (target 0); "
        f"{violated} invariant violations"
    )
    if violated:
        line += " (" + ", ".join(f"{n} {name}" for name, n in broken.items() if n) + ")"
    return f"{line} in {len(row.violations)} run(s) (target 0): {'met' if met else 'NOT met'}"


def bulk_verdict(row: Row, baseline: Row | None) -> str:
    """Enrollments per second through batches against BULKS' baseline req/s, same rounds."""
    per_second = [r.requests_per_sec * dataset.BULK_ITEMS for r in row.results]
    answered = sum(r.requests - r.past_end for r in row.results) * dataset.BULK_ITEMS
    stored = sum(row.stored)
    errors = _errors(row)
    line = (
        f"{row.scenario}: {statistics.median(per_second):,.0f} enrollments/s "
        f"({dataset.BULK_ITEMS} per POST /enrollments/batch)"
    )
    if baseline is None:
        return f"{line} ({BULKS[row.scenario]} not run: no target)"
    ratio = paired_ratio(per_second, baseline.values("requests_per_sec"))
    # wrk counts the answers it read; a request cut off at the end of a run
    # may still commit, so the database may hold a batch more per connection.
    complete = stored >= answered
    met = ratio >= BULK_TARGET and errors == 0 and complete
    return (
        f"{line}, {ratio:.1f}x {baseline.scenario}'s "
        f"{baseline.median('requests_per_sec'):,.0f} req/s "
        f"(target: {row.scenario} enrollments/s >= {BULK_TARGET}x {baseline.scenario}'s); "
        f"{stored:,} enrollments stored for {answered:,} answered (target: all); "
        f"{errors} non-2xx and socket errors (target 0): {'met' if met else 'NOT met'}"
    )


def lookup_verdict(lookup: Row, plain: Row) -> str:
    """GET /students?q= against the plain page, p50 against p50, paired by round."""
    ratio = paired_ratio(lookup.values("p50"), plain.values("p50"))
    errors = _errors(lookup) + _errors(plain)
    met = ratio <= LOOKUP_TARGET_P50 and errors == 0
    return (
        f"{lookup.scenario}: q p50 {_latency(lookup.median('p50'))}, {ratio:.2f}x the plain page's "
        f"{_latency(plain.median('p50'))} (target: q p50 <= {LOOKUP_TARGET_P50:g}x the plain "
        f"page's), {errors} non-2xx and socket errors in the two (target 0): "
        f"{'met' if met else 'NOT met'}"
    )


def roster_verdict(roster: Row, page: Row) -> str:
    """The provider's page of 1,000 users against GET /students?limit=500, p50 against p50."""
    ratio = paired_ratio(roster.values("p50"), page.values("p50"))
    errors = _errors(roster) + _errors(page)
    met = ratio <= ROSTER_TARGET_P50 and errors == 0
    return (
        f"{roster.scenario}: p50 {_latency(roster.median('p50'))} for 1,000 users, {ratio:.2f}x "
        f"{page.scenario}'s {_latency(page.median('p50'))} for 500 students (target: <= "
        f"{ROSTER_TARGET_P50:g}x), {errors} non-2xx and socket errors in the two (target 0): "
        f"{'met' if met else 'NOT met'}"
    )


def run_order(scenarios: list[str]) -> list[list[str]]:
    """The scenarios in blocks, each block's scenarios measured round by round together.

    Scenarios that RELATED relates (COMPARISONS, the feed and its baseline)
    share a block, so that each round runs both within a few minutes and
    their ratio is paired like the one with the reference; any other
    scenario is a block of its own, in the order given.
    """
    blocks: list[list[str]] = []
    for scenario in scenarios:
        related = {b for s, b in RELATED if s == scenario}
        related |= {s for s, b in RELATED if b == scenario}
        joined = [block for block in blocks if related & set(block)]
        for block in joined[1:]:
            joined[0] += block
            blocks.remove(block)
        if joined:
            joined[0].append(scenario)
        else:
            blocks.append([scenario])
    return blocks


def runs_facts(plan: dict[dataset.RunKey, dataset.Runs]) -> str:
    """What each measured run of the scenarios with courses of their own works on."""
    facts = {}
    for (scenario, _, _, warmup), runs in plan.items():
        if warmup or scenario in facts:
            continue
        if isinstance(runs, dataset.BulkCourses) and runs.term is not None:
            facts[scenario] = (
                f"{scenario}: a term with {runs.courses:,} empty courses of {runs.items} seats, "
                f"{runs.items} enrollments into one per request, "
                f"{runs.students // runs.items} requests per slot of the week"
            )
        elif isinstance(runs, dataset.BulkCourses):
            facts[scenario] = (
                f"{scenario}: {runs.courses:,} empty courses without a capacity, "
                f"{runs.items} enrollments into one per request"
            )
        elif isinstance(runs, dataset.RulesCourses):
            facts[scenario] = (
                f"{scenario}: a term with {runs.courses:,} courses of {runs.seats} seats, "
                f"{runs.students:,} students holding {runs.prefilled} of them each, "
                f"{runs.items:,} enrollments to make"
            )
        elif isinstance(runs, dataset.RushTerm):
            facts[scenario] = (
                f"{scenario}: a term with {runs.sections} sections of {dataset.RUSH_SEATS} "
                f"seats and {dataset.RUSH_WAITLIST} waiting, {runs.students} students"
            )
        elif isinstance(runs, dataset.QueueCourse):
            facts[scenario] = (
                f"{scenario}: a course of {runs.seats:,} seats taken, {runs.waiting:,} waiting"
            )
        elif isinstance(runs, dataset.HotCourse):
            facts[scenario] = (
                f"{scenario}: {runs.enrolled:,} enrolled at the start, "
                f"{runs.students:,} students to enroll"
            )
        elif isinstance(runs, dataset.DropCourses):
            facts[scenario] = (
                f"{scenario}: {runs.courses:,} full courses of {runs.seats} seats, "
                f"{runs.seats} waiting for each, {runs.drops:,} seats to drop"
            )
    return "".join(f"; {fact} per run" for fact in facts.values())


def memory_lines(sampler: RssSampler) -> list[str]:
    lines = []
    for name, workers in sampler.samples.items():
        peaks = ", ".join(f"{rss.peak:.1f}" for rss in workers.values())
        lines.append(f"max RSS per worker, {name}: {peaks or '-'} MiB")
    return lines


async def _server_facts(url: str) -> tuple[int, str]:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("show max_connections")), await conn.fetchval(
            "show server_version"
        )
    finally:
        await conn.close()


def _embedded_server(stack: ExitStack) -> str:
    cluster = EmbeddedPostgres(datadir=PG_DATA, port=free_port(), durable=False)
    if cluster.is_running():
        # Left over from an interrupted run, on a port we no longer know.
        cluster.stop()
    cluster.start()
    stack.callback(cluster.stop)
    return cluster.dsn


def start_servers(
    args: argparse.Namespace, url: str, token: str, stack: ExitStack
) -> tuple[Server | None, Server]:
    pool = math.ceil(args.connections / args.workers)
    reference = None
    if not args.soak and set(args.scenarios) - set(WITHOUT_WRK):
        port = free_port()
        reference = servers.start(
            "reference",
            servers.python_module(
                "bench.reference",
                f"--dsn={url}",
                f"--port={port}",
                f"--workers={args.workers}",
                f"--pool-size={pool}",
            ),
            servers.child_env(),
            port,
            args.out / "reference.log",
        )
        stack.callback(servers.stop, reference)
    port = free_port()
    service = servers.start(
        "service",
        servers.python_module("service", "serve"),
        servers.child_env(
            DATABASE_URL=url,
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY=str(args.workers),
            ACCESS_LOG="true",
            DB_POOL_MIN_SIZE=str(pool),
            DB_POOL_MAX_SIZE=str(pool),
            API_TOKENS=f"bench:write:{token}",
            # wrk's connections are one client (one token): its limits must
            # not refuse what the bench measures, which is throughput.
            LIMIT_BATCHES=str(LIMIT_FOR_WRK),
            LIMIT_SEARCHES=str(LIMIT_FOR_WRK),
            LIMIT_LONG_POLLS=str(LIMIT_FOR_WRK),
        ),
        port,
        args.out / "service.log",
    )
    stack.callback(servers.stop, service)
    headers = {"Authorization": f"Bearer {token}"}
    if reference:
        servers.wait_ready(reference, "/healthz", headers)
    servers.wait_ready(service, "/readyz", headers)
    return reference, service


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.soak or set(args.scenarios) - set(WITHOUT_WRK)) and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = dataset.Sizes(
        args.students, args.courses, args.per_student, reserved=args.reserved_students
    )
    plan = (
        {}
        if args.soak
        else dataset.plan_runs(
            sizes,
            args.scenarios,
            ("reference", "service"),
            args.rounds,
            hot_enrolled=args.hot_enrolled,
            warmup_share=args.warmup / args.duration,
            seconds=args.duration,
        )
    )
    token = secrets.token_hex(16)
    seeds = iter(range(1, 1_000_000))

    with ExitStack() as stack:
        server_url = os.environ.get("BENCH_DATABASE_URL") or _embedded_server(stack)
        url = asyncio.run(dataset.prepare(server_url, sizes))
        asyncio.run(dataset.prepare_runs(url, sizes, plan))
        max_connections, version = asyncio.run(_server_facts(url))
        needed = (1 if args.soak else 2) * math.ceil(args.connections / args.workers) * args.workers
        if needed + 5 > max_connections:
            print(
                f"the servers' pools need {needed} connections; PostgreSQL allows {max_connections}",
                file=sys.stderr,
            )
            return 2
        reference, service = start_servers(args, url, token, stack)
        sampler = RssSampler([s for s in (reference, service) if s])
        sampler.start()
        stack.callback(sampler.stop)

        def measure(row: Row, server: Server, seconds: float, round_: int = 0) -> None:
            options = dict(
                students=sizes.students,
                courses=sizes.courses,
                threads=args.threads,
                connections=args.connections,
                token=token,
            )

            def data(warmup: bool) -> list[str]:
                runs = plan.get((row.scenario, server.name, round_, warmup))
                return runs.wrk_args() if runs else []

            # The feed scenario is the enroll load with a follower of the feed.
            load = feed.LOAD if row.scenario == feed.SCENARIO else row.scenario

            def run() -> wrk.Result:
                return wrk.run(
                    server.url,
                    load,
                    seed=next(seeds),
                    seconds=seconds,
                    data=data(False),
                    statuses=row.scenario in COUNTED,
                    **options,
                )

            if args.warmup > 0:
                wrk.run(
                    server.url,
                    load,
                    seed=next(seeds),
                    seconds=args.warmup,
                    data=data(True),
                    statuses=row.scenario in COUNTED,
                    **options,
                )
            cpu_before = server.cpu_seconds()
            followed = None
            if row.scenario == feed.SCENARIO:
                result, followed = feed.measure(server.url, token, url, run)
                row.followed.append(followed)
            else:
                result = run()
            runs = plan.get((row.scenario, server.name, round_, False))
            if isinstance(runs, dataset.BulkCourses):
                row.stored.append(asyncio.run(dataset.count_enrollments(url, runs)))
            if isinstance(runs, dataset.RushTerm):
                row.violations.append(asyncio.run(dataset.rush_violations(url, runs)))
            cpu_us = (server.cpu_seconds() - cpu_before) / max(result.requests, 1) * 1e6
            row.results.append(result)
            row.cpu_us.append(cpu_us)
            line = (
                f"  {row.scenario:<20} {server.name:<9} {result.requests_per_sec:>10,.0f} req/s"
                f"  p99 {_latency(result.p99)}  CPU {cpu_us:.0f} us/req"
            )
            if row.violations and isinstance(runs, dataset.RushTerm):
                line += f"  {sum(row.violations[-1].values())} invariant violations"
            if followed is not None:
                lags = followed.lags
                line += (
                    f"  followed {len(lags):,} of {followed.recorded:,} events, lag p99 "
                    f"{_latency(feed.percentile(lags, 0.99)) if lags else '-'}, "
                    f"{followed.pages_per_sec:,.0f} page reads/s"
                )
            print(line, flush=True)

        # The queue scenario's rounds (bench/queue.py).
        queued: list[queue.Measured] = []
        if args.soak:
            print(f"soak: student-courses against the service for {args.soak_seconds:g} s")
            sampler.sample()
            rows = [Row("student-courses", "service", [], [])]
            measure(rows[0], service, args.soak_seconds)
            sampler.sample()
            memory = [
                f"service worker {pid}: {rss.first:.1f} MiB at start, "
                f"{rss.peak:.1f} MiB max, {rss.last:.1f} MiB at the end"
                for pid, rss in sampler.samples["service"].items()
            ]
            peak = max(rss.peak for rss in sampler.samples["service"].values())
            verdict = "met" if peak < SOAK_TARGET_MIB else "NOT met"
            memory.append(f"target < {SOAK_TARGET_MIB} MiB per worker: {verdict}")
            report = args.out / "soak.md"
        else:
            duration = f"{args.duration:g} s per run after {args.warmup:g} s warm-up"
            print(f"running {len(args.scenarios)} scenario(s), {duration}")
            # The reference has no feed, no batches and no GET /students: those run on
            # the service alone.
            servers_of = {
                scenario: [service]
                if scenario in (*SERVICE_ONLY, *WITHOUT_WRK)
                else [reference, service]
                for scenario in args.scenarios
            }
            by_key = {
                (scenario, server.name): Row(scenario, server.name, [], [])
                for scenario, measured in servers_of.items()
                for server in measured
                if scenario not in WITHOUT_WRK
            }
            for block in run_order(args.scenarios):
                for round_ in range(args.rounds):
                    for scenario in block:
                        if scenario == queue.SCENARIO:
                            runs = plan[scenario, service.name, round_, False]
                            assert isinstance(runs, dataset.QueueCourse)
                            queued.append(queue.measure(service.url, token, runs))
                            m = queued[-1]
                            print(
                                f"  {scenario:<20} {service.name:<9} batch {m.batch:.3f} s"
                                f"  promotion {m.promotion:.3f} s  single max {m.single_max:.3f} s"
                                f" ({len(m.singles)} singles)  {len(m.wrong)} wrong",
                                flush=True,
                            )
                            continue
                        # Reference first in even rounds, service first in odd ones.
                        order = [(by_key[scenario, s.name], s) for s in servers_of[scenario]]
                        for row, server in order if round_ % 2 == 0 else order[::-1]:
                            measure(row, server, args.duration, round_)
            rows = list(by_key.values())
            sampler.sample()
            memory = memory_lines(sampler) + verdicts(rows)
            if queued:
                memory.append(queue.verdict(queued))
            report = args.out / "last.md"

    cells = table(rows)
    feed_cells = feed_table(rows)
    queue_cells = queue.table(queued)
    print()
    if cells:
        print(text_table(cells))
    if feed_cells:
        print(f"\n{feed_caption(rows)}\n{text_table(feed_cells, FEED_HEADER)}")
    if queue_cells:
        print(f"\n{queue.caption()}\n{text_table(queue_cells, queue.HEADER)}")
    print()
    print("\n".join(memory))
    facts = (
        f"cpu_count {os.cpu_count()}; {args.workers} worker(s) per server, pool "
        f"{math.ceil(args.connections / args.workers)} per worker; "
        f"wrk -t{args.threads} -c{args.connections}; "
        f"{args.soak_seconds if args.soak else args.duration:g} s per run after "
        f"{args.warmup:g} s warm-up, {args.rounds} round(s), medians (ratios: of per-round ratios); "
        f"PostgreSQL {version}; {sizes.describe()}{runs_facts(plan)}"
    )
    tables = markdown_table(cells) if cells else ""
    if feed_cells:
        tables += f"\n\n{feed_caption(rows)}\n\n{markdown_table(feed_cells, FEED_HEADER)}"
    if queue_cells:
        tables += f"\n\n{queue.caption()}\n\n{markdown_table(queue_cells, queue.HEADER)}"
    report.write_text(
        f"Benchmark of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{command}`\n\n"
        f"{facts}\n\n{tables}\n\n" + "".join(f"- {m}\n" for m in memory),
        encoding="utf-8",
    )
    shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
    print(f"\nwritten to {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
