"""Running wrk with bench/scenarios.lua and reading its report."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("scenarios.lua")
SCENARIOS = (
    "student-courses",
    "enroll",
    "course-students",
    "hot-course-empty",
    "hot-course-prefilled",
    "drop-promote",
    "bulk",
    "enroll-rules",
    "bulk-rules",
    "rush",
    "lookup",
    "lookup-common",
    "lookup-late",
    "students-page",
    "roster-users",
    "students-page-500",
    "healthz",
)

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class Result:
    requests: int
    requests_per_sec: float
    p50: float  # seconds
    p99: float
    non_2xx: int
    # connect, read, write, timeout
    socket_errors: tuple[int, int, int, int] = (0, 0, 0, 0)
    # Requests a scenario that never repeats one had nothing left for: sent
    # to a path that answers 404, so they count in non_2xx too.
    past_end: int = 0
    # With statuses=True: the answers by status, 4xx and 5xx by the
    # problem's type too ("201", "409 time-conflict").
    statuses: dict[str, int] = field(default_factory=dict)


def _seconds(text: str) -> float:
    match = re.fullmatch(_DURATION, text)
    if not match:
        raise WrkError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _search(pattern: str, output: str) -> re.Match[str] | None:
    return re.search(pattern, output, re.MULTILINE)


def parse(output: str) -> Result:
    """Read wrk's text report (run with --latency); missing error lines mean zero errors."""
    rate = _search(r"^Requests/sec:\s+([\d.]+)", output)
    total = _search(r"^\s*(\d+) requests in", output)
    p50 = _search(rf"^\s+50(?:\.0+)?%\s+{_DURATION}", output)
    p99 = _search(rf"^\s+99(?:\.0+)?%\s+{_DURATION}", output)
    if not (rate and total and p50 and p99):
        raise WrkError(f"unexpected wrk output:\n{output}")
    non_2xx = _search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = _search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    past_end = _search(r"^Past the prepared data:\s+(\d+)", output)
    statuses = {
        m[1]: int(m[2])
        for m in re.finditer(r"^Answered (\d{3}(?: [\w-]+)?): (\d+)$", output, re.MULTILINE)
    }
    return Result(
        requests=int(total[1]),
        requests_per_sec=float(rate[1]),
        p50=float(p50[1]) * _UNITS[p50[2]],
        p99=float(p99[1]) * _UNITS[p99[2]],
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=(int(errors[1]), int(errors[2]), int(errors[3]), int(errors[4]))
        if errors
        else (0, 0, 0, 0),
        past_end=int(past_end[1]) if past_end else 0,
        statuses=statuses,
    )


def run(
    url: str,
    scenario: str,
    *,
    students: int,
    courses: int,
    seed: int,
    threads: int,
    connections: int,
    seconds: float,
    token: str,
    data: Sequence[str] = (),
    statuses: bool = False,
) -> Result:
    """One wrk run; `data` is what the scenario works on beyond the random ids
    (the wrk_args of a bench.dataset.HotCourse, DropCourses, BulkCourses,
    RulesCourses or RushTerm); `statuses` counts the answers by status
    (Result.statuses), at some cost to wrk (see bench/scenarios.lua)."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        # Slow answers are measured as latency instead of counted as errors.
        "--timeout",
        "10s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        str(SCRIPT),
        url,
        "--",
        scenario,
        str(students),
        str(courses),
        str(seed),
        str(threads),
        *data,
    ]
    env = {**os.environ, "BENCH_WRK_STATUSES": "1" if statuses else "0"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False, env=env
    )
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse(done.stdout)
