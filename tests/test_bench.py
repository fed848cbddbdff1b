"""`make bench`: the harness runs end to end and judges a run by issues 4, 16, 17 and 27's targets.

The run here is tiny (1,000 students, 1 s per run) and proves the harness
works on a fresh clone, not the service's speed: speed is only ever judged
from a real `make bench` run, never from a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from bench import __main__ as bench
from bench import dataset, feed, wrk
from service import migrations
from service.embedded import free_port
from service.validation.cursors import cursor_scope, encode_cursor
from tests.cli import REPO_ROOT
from tests.migrating import connected

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed: apt-get install wrk"
)


def _markdown_rows(report: str, header: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    """The rows of the report's table with this header, by scenario and server."""
    rows: dict[tuple[str, str], list[str]] | None = None
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| "):
            if rows is not None:
                return rows
        elif tuple(cells) == header:
            rows = {}
        elif rows is not None and cells[1] in ("reference", "service"):
            rows[cells[0], cells[1]] = cells
    assert rows is not None, f"no table headed {header} in:\n{report}"
    return rows


@needs_wrk
async def test_a_small_run_measures_both_servers_in_every_scenario(pg_server, tmp_path: Path):
    """Both servers in every scenario, but the feed (the service alone, with its follower)
    and the lookups (the service alone: the reference has no GET /students)."""
    command = [
        sys.executable,
        "-m",
        "bench",
        "--students=1000",
        "--courses=50",
        "--workers=1",
        "--connections=8",
        "--duration=1",
        "--warmup=0",
        "--rounds=2",
        # 9,000 students to enroll into each hot course, 5,000 seats to drop
        # per drop-promote run: more than a 1 s run gets through here.
        "--reserved-students=10000",
        "--hot-enrolled=1000",
        f"--out={tmp_path}",
    ]
    env = {**os.environ, "BENCH_DATABASE_URL": pg_server.admin_url}
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

        # The dataset is what the arguments asked for, loaded into its own database.
        async with connected(pg_server.url_for(dataset.DATABASE)) as conn:
            assert await conn.fetchval("select count(*) from students") == 1000 + 10_000
            assert await conn.fetchval("select count(*) from courses where id <= 50") == 50
            # 5 per student, plus what the enroll runs added.
            assert (
                await conn.fetchval("select count(*) from student_courses where course_id <= 50")
                >= 5000
            )
            # The seat counters equal the rows, in loaded courses and the runs' own.
            assert (
                await conn.fetchval(
                    """
                select count(*) from courses c
                where enrolled <> (select count(*) from student_courses where course_id = c.id)
                   or waitlisted <> (select count(*) from course_waitlist where course_id = c.id)
                """
                )
                == 0
            )
            # Every hot-course request enrolled someone new: 2 rounds x 2
            # servers, one course each per variant (no warm-up runs).
            hot = await conn.fetch(
                "select enrolled from courses where id > 50 and code like 'H%' order by id"
            )
            assert len(hot) == 8
            assert all(r["enrolled"] > 0 for r in hot[:4]), hot
            assert all(r["enrolled"] > 1000 for r in hot[4:]), hot
            # Every drop promoted the head of the queue: the courses are
            # still full, and as many left the queues as seats were dropped.
            drops = await conn.fetchrow(
                """
                select count(*) filter (where enrolled < capacity) as free,
                       sum(waitlist_capacity - waitlisted) as promoted
                from courses where capacity = $1
                """,
                dataset.DROP_SEATS,
            )
            assert drops["free"] == 0 and drops["promoted"] > 0, drops
            # A term per run of the rules scenarios: enroll-rules on both
            # servers, bulk-rules and rush on the service, 2 rounds each.
            terms = await conn.fetch("select id from terms order by id")
            assert len(terms) == 2 * (2 + 1 + 1)
            # Every enroll-rules and bulk-rules run enrolled someone new
            # (enroll-rules: beyond the 2 courses each of its students, those
            # with a time ticket, held before).
            runs = await conn.fetch(
                """
                select t.id, bool_or(c.code like 'S%') as rush,
                       count(e.*) filter (where c.code like 'R%') as rules,
                       count(e.*) filter (where c.code like 'BR%') as bulk,
                       (select count(*) from student_terms st
                        where st.term_id = t.id and st.registration_opens_at is not null)
                           as ticketed
                from terms t
                join courses c on c.term_id = t.id
                left join student_courses e on e.course_id = c.id
                group by t.id
                """
            )
            for run in runs:
                if run["ticketed"]:
                    assert run["rules"] > run["ticketed"] * dataset.RULES_PREFILLED, run
                elif not run["rush"]:
                    assert run["bulk"] > 0, run
            # Whatever the runs did, the rules' invariants hold in every term.
            for term in terms:
                violations = await dataset.rush_violations(
                    pg_server.url_for(dataset.DATABASE), dataset.RushTerm(term["id"], 0, 0)
                )
                assert set(violations.values()) == {0}, (term, violations)
    finally:
        async with connected(pg_server.admin_url) as admin:
            await admin.execute(f"drop database if exists {dataset.DATABASE} with (force)")

    report = (tmp_path / "last.md").read_text(encoding="utf-8")
    assert "1 worker(s) per server" in report and "2 round(s)" in report
    rows = _markdown_rows(report, bench.HEADER)
    assert set(rows) == {
        *(
            (s, server)
            for s in wrk.SCENARIOS
            for server in ("reference", "service")
            if s not in bench.SERVICE_ONLY
        ),
        *((s, "service") for s in bench.SERVICE_ONLY),
    }
    for (scenario, server), cells in rows.items():
        requests_per_sec, non_2xx, socket_errors = cells[2], cells[5], cells[6]
        assert float(requests_per_sec.replace(",", "")) > 0, cells
        # The harness sends valid tokens, ids and bodies: every answer is 2xx,
        # but in the rush, where 409s are expected (its verdict below).
        assert socket_errors == "0/0/0/0", cells
        assert non_2xx == "0" or scenario == dataset.RUSH_SCENARIO, cells
        if scenario in bench.SERVICE_ONLY:
            # No reference to compare with.
            assert (cells[7], cells[8], cells[10]) == ("-", "-", "-"), cells
            continue
        ratios = [float(c) for c in (cells[7], cells[8], cells[10])]
        if server == "reference":
            assert ratios == [1.0, 1.0, 1.0]
        else:
            assert all(r > 0 for r in ratios), cells
    # The follower saw the enrollments, each some time after its transaction began.
    ((_, _, followed, *lags, pages_per_sec, requests_per_sec, vs_enroll),) = _markdown_rows(
        report, bench.FEED_HEADER
    ).values()
    assert int(followed.replace(",", "")) > 0
    assert all(_seconds(lag) > 0 for lag in lags), lags
    assert _seconds(lags[0]) <= _seconds(lags[1]) <= _seconds(lags[2]), lags
    assert float(pages_per_sec.replace(",", "")) > 0
    assert requests_per_sec == rows["feed", "service"][2] and float(vs_enroll) > 0
    verdicts = [line for line in report.splitlines() if line.endswith("met")]
    assert [line.split(":")[0].lstrip("- ") for line in verdicts] == [
        *bench.TARGET_SCENARIOS,
        "hot-course-prefilled",
        "drop-promote",
        "enroll-rules",
        "bulk",
        "bulk-rules",
        "feed",
        *bench.LOOKUPS,
        "roster-users",
        "rush",
    ]
    (rules_verdict,) = (line for line in verdicts if line.startswith("- enroll-rules: "))
    assert " of the reference's enroll (target >= 0.85), p99 " in rules_verdict
    assert " of the reference's enroll-rules, which is " in rules_verdict
    assert "; 0 non-2xx and socket errors (target 0): " in rules_verdict
    (bulk_rules_verdict,) = (line for line in verdicts if line.startswith("- bulk-rules: "))
    assert "(target: bulk-rules enrollments/s >= 10x enroll-rules's)" in bulk_rules_verdict
    assert "(target: all); 0 non-2xx and socket errors (target 0)" in bulk_rules_verdict
    # The rush: answers of several kinds, none unexpected, the invariants held.
    (rush_verdict,) = (line for line in verdicts if line.startswith("- rush: "))
    assert "; answered " in rush_verdict and " 201 " in rush_verdict
    assert " 0 answers other than 200, 201, 202, 204, 409 course-full, " in rush_verdict
    assert " and 0 socket errors (target 0); 0 invariant violations in 2 run(s) " in rush_verdict
    # Every batch enrolled its 500 (the report checks the database against the answers).
    (bulk_verdict,) = (line for line in verdicts if line.startswith("- bulk: "))
    assert " enrollments/s (500 per POST /enrollments/batch), " in bulk_verdict
    assert " enrollments stored for " in bulk_verdict
    assert "(target: all); 0 non-2xx and socket errors (target 0)" in bulk_verdict
    # Speed is not judged here, but whether the follower got every event
    # exactly once, in order, and every page it asked for, is.
    (feed_verdict,) = (line for line in verdicts if line.startswith("- feed: lag p99 "))
    assert " ms (target < 1000 ms); " in feed_verdict
    assert f"{followed} enrollment.created events followed of the {followed} recorded, " in (
        feed_verdict
    )
    assert "0 out of order (target: all, in order); 0 non-2xx, socket errors and failed " in (
        feed_verdict
    )
    assert "; enroll req/s " in feed_verdict and " of enroll's (no target): " in feed_verdict
    assert "hot-course-prefilled: req/s " in report and " of hot-course-empty's" in report
    assert "drop-promote: req/s " in report and " of enroll's (target >= 0.7" in report
    for hot in dataset.HOT_SCENARIOS:
        assert f"- {hot}: req/s " in report and " of enroll's (the reference's " in report
    assert "hot-course-prefilled: 1,000 enrolled at the start, 9,000 students to enroll" in report
    assert "drop-promote: 100 full courses of 50 seats, 50 waiting for each" in report
    assert "enroll-rules: a term with 600 courses of 13 seats, 1,250 students holding 2" in report
    assert "rush: a term with 20 sections of 25 seats and 10 waiting, 400 students" in report
    assert "max RSS per worker, service:" in report
    # Each server's output is kept next to the report.
    assert (tmp_path / "service.log").stat().st_size > 0
    assert (tmp_path / "reference.log").exists()


def _seconds(latency: str) -> float:
    """A latency as the report shows it (12us, 3.45ms, 1.20s), in seconds."""
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if latency.endswith(unit):
            return float(latency.removesuffix(unit)) * scale
    raise AssertionError(f"not a latency: {latency!r}")


def test_a_load_on_other_migrations_is_not_reused(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", tmp_path)
    (tmp_path / "0001_a.sql").write_text("create table a ();")
    loaded_on = dataset.schema()
    (tmp_path / "0001_a.rollback.sql").write_text("drop table a;")
    assert dataset.schema() == loaded_on
    (tmp_path / "0002_b.sql").write_text("create table b ();")
    assert dataset.schema() != loaded_on
    (tmp_path / "0002_b.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("create table a (id int);")
    assert dataset.schema() != loaded_on


def test_without_wrk_it_says_how_to_install_it(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bench.main([f"--out={tmp_path}"]) == 2
    assert "wrk is not installed: apt-get install wrk" in capsys.readouterr().err


def _row(
    scenario: str, server: str, rates: list[float], p99s: list[float], non_2xx: int = 0, **errors
) -> bench.Row:
    results = [
        wrk.Result(1000, rate, p50=p99 / 2, p99=p99, non_2xx=non_2xx, **errors)
        for rate, p99 in zip(rates, p99s, strict=True)
    ]
    return bench.Row(scenario, server, results, [100.0] * len(results))


def _verdict(service: bench.Row) -> str:
    reference = _row(service.scenario, "reference", [1000, 2000], [0.010, 0.020])
    (line,) = bench.verdicts([reference, service])
    return line


def test_verdict_takes_the_median_of_per_round_ratios():
    # Round ratios 0.90 and 0.84: median 0.87, met, though one round missed.
    line = _verdict(_row("enroll", "service", [900, 1680], [0.010, 0.020]))
    assert line.startswith("enroll: req/s 0.870 of the reference") and line.endswith(": met")
    line = _verdict(_row("enroll", "service", [840, 1680], [0.010, 0.020]))
    assert "req/s 0.840" in line and line.endswith("NOT met")


def test_verdict_fails_on_a_slow_p99_or_any_error():
    slow = _row("student-courses", "service", [1000, 2000], [0.016, 0.032])
    assert "p99 1.600x" in _verdict(slow) and _verdict(slow).endswith("NOT met")
    refused = _row("student-courses", "service", [1000, 2000], [0.01, 0.02], non_2xx=1)
    assert "2 non-2xx and socket errors" in _verdict(refused)  # one in each round
    assert _verdict(refused).endswith("NOT met")
    dropped = _row(
        "student-courses", "service", [1000, 2000], [0.01, 0.02], socket_errors=(0, 0, 0, 2)
    )
    assert _verdict(dropped).endswith("NOT met")


def test_the_constant_endpoint_is_a_ceiling_not_a_target():
    rows = [
        _row("healthz", "reference", [1000], [0.01]),
        _row("healthz", "service", [500], [0.05]),
    ]
    assert bench.verdicts(rows) == []


def test_hot_course_is_judged_against_the_empty_course_and_drops_against_enroll():
    rows = [
        _row("enroll", "reference", [1000, 1000], [0.01, 0.01]),
        _row("enroll", "service", [1000, 1200], [0.01, 0.01]),
        _row("hot-course-empty", "reference", [800, 800], [0.01, 0.01]),
        _row("hot-course-empty", "service", [900, 1000], [0.01, 0.01]),
        _row("hot-course-prefilled", "reference", [800, 400], [0.01, 0.01]),
        # Round ratios 0.9 and 0.75 of the empty course: median 0.825, met.
        _row("hot-course-prefilled", "service", [810, 750], [0.01, 0.01]),
        # 0.72 and 0.6 of enroll: median 0.66, not met.
        _row("drop-promote", "reference", [700, 700], [0.01, 0.01]),
        _row("drop-promote", "service", [720, 720], [0.01, 0.01]),
    ]
    lines = bench.verdicts(rows)
    assert lines[1:] == [
        "hot-course-prefilled: req/s 0.825 of hot-course-empty's (target >= 0.8; the "
        "reference's 0.750), 0 non-2xx and socket errors in the two (target 0): met",
        "drop-promote: req/s 0.660 of enroll's (target >= 0.7; the reference's 0.700), "
        "0 non-2xx and socket errors in the two (target 0): NOT met",
        "hot-course-empty: req/s 0.867 of enroll's (the reference's 0.800; no target)",
        "hot-course-prefilled: req/s 0.718 of enroll's (the reference's 0.600; no target)",
    ]
    # An error in either scenario of a comparison fails it: the ratio may not
    # measure what it says.
    rows[3] = _row("hot-course-empty", "service", [900, 1000], [0.01, 0.01], non_2xx=1)
    assert bench.verdicts(rows)[1].endswith(
        "2 non-2xx and socket errors in the two (target 0): NOT met"
    )


def test_a_run_past_its_data_is_reported():
    rows = [
        _row("drop-promote", "reference", [700], [0.01]),
        bench.Row(
            "drop-promote", "service", [wrk.Result(10, 700, 0.005, 0.01, 3, past_end=3)], [1.0]
        ),
    ]
    assert bench.verdicts(rows) == [
        "drop-promote, service: 3 requests found no data left for them (answered 404, "
        "counted as non-2xx): raise --reserved-students"
    ]


def test_compared_scenarios_run_interleaved_and_the_others_alone():
    assert bench.run_order(list(bench.SCENARIOS)) == [
        ["student-courses"],
        [
            "enroll",
            "hot-course-empty",
            "hot-course-prefilled",
            "drop-promote",
            "bulk",
            "enroll-rules",
            "bulk-rules",
            "feed",
        ],
        ["course-students"],
        ["rush"],
        ["lookup", "lookup-common", "lookup-late", "students-page"],
        ["roster-users", "students-page-500"],
        ["healthz"],
    ]
    assert bench.run_order(["feed", "healthz", "enroll"]) == [["feed", "enroll"], ["healthz"]]
    assert bench.run_order(["drop-promote", "hot-course-prefilled", "enroll"]) == [
        ["drop-promote", "hot-course-prefilled", "enroll"]
    ]
    assert bench.run_order(["healthz", "drop-promote"]) == [["healthz"], ["drop-promote"]]
    # bulk-rules is measured against enroll-rules, and that against enroll.
    assert bench.run_order(["bulk-rules", "rush", "enroll", "enroll-rules"]) == [
        ["bulk-rules", "enroll", "enroll-rules"],
        ["rush"],
    ]


def _feed_row(lags: list[list[float]], rates: list[float], **followed) -> bench.Row:
    row = _row("feed", "service", rates, [0.01] * len(rates))
    row.followed = [
        feed.Followed(
            lags=round_lags, pages=100, seconds=10.0, recorded=len(round_lags), **followed
        )
        for round_lags in lags
    ]
    return row


def test_the_feed_is_judged_by_the_p99_of_every_event_and_shown_against_enroll():
    enroll = _row("enroll", "service", [1000, 2000], [0.01, 0.01])
    # 200 events over two rounds: the 198th of them in order is p99.
    lags = [[0.001 * i for i in range(1, 101)], [0.5 + 0.001 * i for i in range(1, 101)]]
    row = _feed_row(lags, [900, 1600])
    (line,) = bench.verdicts([row, enroll])
    assert line == (
        "feed: lag p99 598.0 ms (target < 1000 ms); 200 enrollment.created events followed of "
        "the 200 recorded, 0 out of order (target: all, in order); 0 non-2xx, socket errors and "
        "failed page reads (target 0); enroll req/s 0.850 of enroll's (no target): met"
    )
    ((*_, followed, p50, p99, lag_max, pages, rate, vs_enroll),) = bench.feed_table([enroll, row])
    assert (followed, p50, p99, lag_max) == ("200", "100.00ms", "598.00ms", "600.00ms")
    assert (pages, rate, vs_enroll) == ("10", "1,250", "0.85")
    row = _feed_row([[0.5] * 98 + [1.0, 1.2]], [900])
    assert bench.feed_verdict(row, None).startswith("feed: lag p99 1000.0 ms (target < 1000 ms)")
    assert bench.feed_verdict(row, None).endswith("(target 0): NOT met")


def test_the_feed_fails_on_a_missed_event_a_failed_read_or_no_events_at_all():
    missed = _feed_row([[0.01] * 10], [1000])
    missed.followed[0].recorded = 11
    assert "10 enrollment.created events followed of the 11 recorded" in bench.feed_verdict(
        missed, None
    )
    assert bench.feed_verdict(missed, None).endswith("NOT met")
    for trouble in ({"out_of_order": 1}, {"failed_reads": 1}, {"caught_up": False}):
        assert bench.feed_verdict(_feed_row([[0.01] * 10], [1000], **trouble), None).endswith(
            "NOT met"
        ), trouble
    behind = bench.feed_verdict(_feed_row([[0.01]], [1000], caught_up=False), None)
    assert ", 1 run(s) not caught up 30 s after the load (target: all, in order)" in behind
    nothing = _feed_row([[]], [1000])
    assert bench.feed_verdict(nothing, None).startswith("feed: lag p99 inf ms")
    assert bench.feed_verdict(nothing, None).endswith("NOT met")
    assert bench.feed_table([nothing])[0][2:6] == ("0", "-", "-", "-")


async def test_the_follower_times_each_enrollment_and_reads_on_until_the_load_is_over():
    """The follower against a scripted /events: retries, next_cursor, the drain's empty page."""
    load_over = asyncio.Event()
    asked: list[dict[str, str]] = []
    # The database's clock 10 s ahead of ours: taken out of every lag.
    followed = feed.Followed(clock_offset=10.0)

    def event(id_: int, type_: str, age: float) -> dict:
        at = datetime.fromtimestamp(time.time() + 10.0 - age, UTC).isoformat()
        return {"id": id_, "type": type_, "at": at, "student_id": 1, "course_id": 2}

    async def events(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        match len(asked):
            case 1:
                return web.Response(status=503)
            case 2:
                page = [event(11, "enrollment.created", 0.25), event(12, "waitlist.joined", 0)]
                return web.json_response({"items": page, "next_cursor": "c1"})
            case 3:
                load_over.set()
                page = [event(12, "enrollment.created", 0.5), event(13, "enrollment.created", 0)]
                return web.json_response({"items": page, "next_cursor": "c2"})
            case _:
                return web.json_response({"items": [], "next_cursor": "c3"})

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            await feed._follow(session, f"http://127.0.0.1:{port}", 10, followed, load_over)
    finally:
        await runner.cleanup()

    start = encode_cursor(10, cursor_scope("/events", ()))
    assert [(q["cursor"], q["wait"], q["limit"]) for q in asked] == [
        (start, "5", "1000"),
        (start, "5", "1000"),  # the failed read again
        ("c1", "5", "1000"),
        ("c2", "1", "1000"),  # the load is over: the first empty page ends it
    ]
    assert (followed.failed_reads, followed.pages, followed.out_of_order) == (1, 2, 1)
    assert followed.caught_up
    # The enrollments only, each from its `at` to its page's receipt.
    assert len(followed.lags) == 3
    for lag, age in zip(followed.lags, (0.25, 0.5, 0), strict=True):
        assert age <= lag < age + 0.2, followed.lags


def test_every_run_gets_courses_of_its_own_and_students_no_other_scenario_uses():
    sizes = dataset.Sizes(students=1000, courses=50, per_student=5, reserved=1000)
    plan = dataset.plan_runs(
        sizes,
        wrk.SCENARIOS,
        ("reference", "service"),
        2,
        hot_enrolled=400,
        warmup_share=0.3,
    )
    # 3 scenarios x 2 rounds x 2 servers x (warm-up, measured), and bulk on the
    # service alone; enroll-rules on both servers, bulk-rules and rush on the
    # service alone.
    assert len(plan) == 24 + 4 + 8 + 4 + 4
    courses = []
    terms = []
    for (scenario, server, _, warmup), runs in plan.items():
        if isinstance(runs, dataset.BulkCourses) and runs.term is not None:
            assert (scenario, server) == ("bulk-rules", "service")
            terms.append(runs.term)
            courses += range(runs.first_course, runs.first_course + runs.courses)
            # 1,000 students make 2 requests a pass: the passes a limit of
            # 99.9 credits allows at 3 a course, 33, are 66 requests.
            assert runs.courses == 66
            assert (runs.first_student, runs.students, runs.items) == (1001, 1000, 500)
        elif isinstance(runs, dataset.BulkCourses):
            assert server == "service"
            courses += range(runs.first_course, runs.first_course + runs.courses)
            # BULK_RATE requests a second for 10 s, a warm-up 30% of that.
            assert runs.courses == (600 if warmup else 2000)
            assert (runs.first_student, runs.students, runs.items) == (1001, 1000, 500)
        elif isinstance(runs, dataset.RulesCourses):
            terms.append(runs.term)
            courses += range(runs.first_course, runs.first_course + runs.courses)
            # RULES_RATE requests a second for 10 s, 4 per student, or a
            # warm-up's 30% of that: more than the 1,000 reserved.
            assert (runs.first_student, runs.students) == (1001, 1000)
            assert (runs.courses, runs.seats, runs.items) == (600, 10, 4000)
        elif isinstance(runs, dataset.RushTerm):
            assert server == "service"
            terms.append(runs.term)
            courses += range(runs.first_course, runs.first_course + runs.sections)
            assert (runs.first_student, runs.students) == (1001, 400)
        elif isinstance(runs, dataset.HotCourse):
            courses.append(runs.course)
            assert (runs.first_student, runs.students) == (1001, 600)
            prefilled = scenario == "hot-course-prefilled" and not warmup
            assert runs.enrolled == (400 if prefilled else 0)
        else:
            assert isinstance(runs, dataset.DropCourses)
            courses += range(runs.first_course, runs.first_course + runs.courses)
            # 10 courses of 50 seats, 50 waiting each, in 1,000 students;
            # a warm-up 30% of that.
            assert runs.courses == (3 if warmup else 10)
            students = [runs.seated(i, r) for i in range(runs.courses) for r in range(50)]
            students += [runs.waiting(i, p) for i in range(runs.courses) for p in range(50)]
            assert len(set(students)) == len(students)
            assert min(students) == 1001 and max(students) <= 2000
    assert len(set(courses)) == len(courses) and min(courses) == 51
    assert sorted(terms) == list(range(1, 17))
    # The prefilled students come after those the runs enroll.
    enrolled = set(dataset._run_enrollments(plan))
    for (scenario, _, _, warmup), runs in plan.items():
        if scenario == "hot-course-prefilled" and not warmup:
            assert {(1601, runs.course), (2000, runs.course)} <= enrolled
            assert (1600, runs.course) not in enrolled


def _rules_items(runs: dataset.RulesCourses) -> list[tuple[int, int]]:
    """enroll-rules' (student, course) of every item, as bench/scenarios.lua computes them."""
    return [
        (
            runs.first_student + i % runs.students,
            runs.course(i % runs.students, runs.prefilled + i // runs.students),
        )
        for i in range(runs.items)
    ]


def _bulk_items(runs: dataset.BulkCourses) -> list[list[tuple[int, int]]]:
    """A bulk run's requests, each its (student, course) items, as bench/scenarios.lua does."""
    return [
        [
            (runs.first_student + (r * runs.items + k) % runs.students, runs.first_course + r)
            for k in range(runs.items)
        ]
        for r in range(runs.courses)
    ]


def test_no_request_of_the_rules_scenarios_breaks_a_rule_by_construction():
    """What every enroll-rules and bulk-rules student takes: no pair twice, no
    two courses in one slot (slots never overlap), credits within the limit."""
    sizes = dataset.Sizes(students=100, courses=10, per_student=1, reserved=2000)
    plan = dataset.plan_runs(
        sizes,
        ["enroll-rules", "bulk-rules"],
        ("reference", "service"),
        1,
        hot_enrolled=1,
        warmup_share=0,
        seconds=1,
    )
    slots = {course[0]: json.loads(course[7]) for course in dataset._run_courses(plan)}
    for runs in plan.values():
        if isinstance(runs, dataset.RulesCourses):
            limit = dataset.RULES_MAX_CREDITS
            taken = [*dataset._run_enrollments({("x", "x", 0, False): runs}), *_rules_items(runs)]
        else:
            assert isinstance(runs, dataset.BulkCourses)
            limit = dataset.BULK_RULES_MAX_CREDITS
            taken = [pair for request in _bulk_items(runs) for pair in request]
        assert len(set(taken)) == len(taken)
        by_student: dict[int, list[int]] = {}
        for student, course in taken:
            by_student.setdefault(student, []).append(course)
        for courses in by_student.values():
            meetings = [json.dumps(slots[c]) for c in courses]
            assert len(set(meetings)) == len(meetings)
            assert len(courses) * dataset.RULES_CREDITS <= limit
    # Slots: no two share a day and an hour.
    times = [
        (day, meeting["starts"])
        for slot in range(dataset.SLOTS)
        for meeting in dataset.slot_meetings(slot)
        for day in meeting["days"]
    ]
    assert len(set(times)) == len(times)


async def _recording_server(seen: list[tuple[str, str]]) -> tuple[web.AppRunner, str]:
    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        if request.path.startswith("/bench/"):
            return web.Response(status=404)
        return web.Response(status=204 if request.method == "DELETE" else 201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@needs_wrk
@pytest.mark.parametrize(
    "scenario, runs, expected",
    [
        (
            "hot-course-empty",
            dataset.HotCourse(course=7, first_student=101, students=300, enrolled=0),
            [("POST", f"/students/{101 + i}/courses") for i in range(300)],
        ),
        (
            "drop-promote",
            dataset.DropCourses(first_course=11, courses=7, first_student=1001, seats=30),
            [
                ("DELETE", f"/students/{1001 + i * 30 + r}/courses/{11 + i}")
                for i in range(7)
                for r in range(30)
            ],
        ),
    ],
)
async def test_wrk_takes_each_item_once_then_says_it_ran_out(scenario, runs, expected):
    seen: list[tuple[str, str]] = []
    runner, url = await _recording_server(seen)
    try:
        result = await asyncio.to_thread(
            wrk.run,
            url,
            scenario,
            students=1,
            courses=1,
            seed=1,
            threads=2,
            connections=8,
            seconds=1,
            token="t",
            data=runs.wrk_args(),
        )
    finally:
        await runner.cleanup()
    taken = [request for request in seen if request[1] != "/bench/past-the-prepared-data"]
    # wrk asks thread 1 for a request once before the run, to check the
    # script, and never sends it: the first item may be missing, no other.
    assert len(set(taken)) == len(taken)
    assert set(expected[1:]) <= set(taken) <= set(expected)
    assert result.past_end > 0 and result.non_2xx > 0


def test_bulk_is_judged_by_enrollments_per_second_against_enroll_and_what_was_stored():
    enroll = _row("enroll", "service", [1000, 2000], [0.01, 0.01])
    # 25 and 30 batches a second of 500: 12.5x and 7.5x enroll's, median 10x.
    bulk = _row("bulk", "service", [25, 30], [0.5, 0.5])
    bulk.stored = [500_000, 500_000]

    (line,) = (v for v in bench.verdicts([enroll, bulk]) if v.startswith("bulk"))
    assert line.startswith("bulk: 13,750 enrollments/s (500 per POST /enrollments/batch), 10.0x")
    assert "1,000,000 enrollments stored for 1,000,000 answered" in line
    assert line.endswith(": met")

    bulk.stored = [500_000, 499_999]
    (line,) = (v for v in bench.verdicts([enroll, bulk]) if v.startswith("bulk"))
    assert line.endswith(": NOT met")


async def _scripted_server(answer) -> tuple[web.AppRunner, str]:
    """A server whose every answer is `answer(request)`'s."""

    async def handle(request: web.Request) -> web.Response:
        return await answer(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _run_wrk(url: str, scenario: str, data: list[str], statuses: bool = False) -> wrk.Result:
    return wrk.run(
        url,
        scenario,
        students=1,
        courses=1,
        seed=1,
        threads=2,
        connections=8,
        seconds=1,
        token="t",
        data=data,
        statuses=statuses,
    )


@needs_wrk
async def test_wrk_enrolls_each_pair_of_enroll_rules_once_then_says_it_ran_out():
    runs = dataset.RulesCourses(
        term=1, first_course=11, first_student=101, students=30, sections=7, prefilled=2, new=3
    )
    seen: list[tuple[int, int]] = []

    async def record(request: web.Request) -> web.Response:
        if request.path.startswith("/bench/"):
            return web.Response(status=404)
        student = int(request.path.split("/")[2])
        seen.append((student, (await request.json())["course_id"]))
        return web.Response(status=201)

    runner, url = await _scripted_server(record)
    try:
        result = await asyncio.to_thread(_run_wrk, url, "enroll-rules", runs.wrk_args())
    finally:
        await runner.cleanup()
    expected = _rules_items(runs)
    # Item 0 may be missing (wrk's check of the script), no other; none twice.
    assert len(set(seen)) == len(seen)
    assert set(expected[1:]) <= set(seen) <= set(expected)
    assert result.past_end > 0 and result.non_2xx > 0
    # Statuses are counted only when asked for.
    assert result.statuses == {}


@needs_wrk
async def test_the_rush_counts_answers_by_kind_and_drops_only_what_it_enrolled():
    runs = dataset.RushTerm(term=1, first_course=11, first_student=101, sections=4, students=6)
    enrolled: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    dropped: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        if request.method == "DELETE":
            dropped.append(request.path)
            answered["204"] += 1
            return web.Response(status=204)
        assert request.method == "POST"
        body = await request.json()
        assert 11 <= body["course_id"] <= 14 and isinstance(body["waitlist"], bool)
        student = int(request.path.split("/")[2])
        assert 101 <= student <= 106
        if body["course_id"] % 2:
            answered["409 time-conflict"] += 1
            return web.json_response(
                {"type": "/problems/time-conflict", "title": "Conflict", "status": 409},
                status=409,
                content_type="application/problem+json",
            )
        location = f"{request.path}/{body['course_id']}"
        enrolled[location] += 1
        answered["201"] += 1
        return web.json_response({}, status=201, headers={"Location": location})

    runner, url = await _scripted_server(answer)
    try:
        result = await asyncio.to_thread(_run_wrk, url, "rush", runs.wrk_args(), True)
    finally:
        await runner.cleanup()
    assert set(result.statuses) == {"201", "204", "409 time-conflict"}, result.statuses
    assert sum(result.statuses.values()) == result.requests
    # Answers to requests still in flight when wrk stopped are not counted.
    for kind, count in result.statuses.items():
        assert 0 <= answered[kind] - count <= 8, (kind, answered, result.statuses)
    # A drop only of what a thread was answered 201 for, never more often.
    assert dropped and all(dropped.count(p) <= enrolled[p] for p in set(dropped))
    assert result.non_2xx == result.statuses["409 time-conflict"]


def test_enroll_rules_is_judged_against_the_reference_enroll():
    rows = [
        _row("enroll", "reference", [1000, 2000], [0.01, 0.02]),
        _row("enroll", "service", [1000, 2000], [0.01, 0.02]),
        _row("enroll-rules", "reference", [800, 1600], [0.01, 0.02]),
        # 0.95 and 0.8 of the reference's enroll: median 0.875, met.
        _row("enroll-rules", "service", [950, 1600], [0.02, 0.02]),
    ]
    (line,) = (v for v in bench.verdicts(rows) if v.startswith("enroll-rules"))
    assert line == (
        "enroll-rules: req/s 0.875 of the reference's enroll (target >= 0.85), p99 1.500x its "
        "(no target); 1.094 of the reference's enroll-rules, which is 0.800 of its enroll "
        "(no target); 0 non-2xx and socket errors (target 0): met"
    )
    # 0.9 and 0.75: median 0.825, not met; and any error fails it.
    rows[3] = _row("enroll-rules", "service", [900, 1500], [0.02, 0.02])
    (line,) = (v for v in bench.verdicts(rows) if v.startswith("enroll-rules"))
    assert line.startswith("enroll-rules: req/s 0.825 ") and line.endswith("NOT met")
    rows[3] = _row("enroll-rules", "service", [2000, 4000], [0.02, 0.02], non_2xx=1)
    (line,) = (v for v in bench.verdicts(rows) if v.startswith("enroll-rules"))
    assert "; 2 non-2xx and socket errors (target 0): NOT met" in line
    # Without the reference's enroll, no verdict.
    assert not [v for v in bench.verdicts(rows[1:]) if v.startswith("enroll-rules")]


def test_bulk_rules_is_judged_against_enroll_rules():
    rules = _row("enroll-rules", "service", [1000, 2000], [0.01, 0.01])
    bulk = _row("bulk-rules", "service", [25, 30], [0.5, 0.5])
    bulk.stored = [500_000, 500_000]
    (line,) = (v for v in bench.verdicts([rules, bulk]) if v.startswith("bulk-rules"))
    assert line.startswith("bulk-rules: 13,750 enrollments/s (500 per POST /enrollments/batch)")
    assert "10.0x enroll-rules's 1,500 req/s (target: bulk-rules enrollments/s >= 10x " in line
    assert line.endswith(": met")
    (line,) = (v for v in bench.verdicts([bulk]) if v.startswith("bulk-rules"))
    assert line.endswith("(enroll-rules not run: no target)")


def _rush_row(statuses: list[dict[str, int]], violations: list[dict[str, int]]) -> bench.Row:
    row = _row("rush", "service", [1000] * len(statuses), [0.05] * len(statuses))
    row.results = [wrk.Result(1000, 1000, 0.01, 0.05, non_2xx=0, statuses=s) for s in statuses]
    row.violations = violations
    return row


def test_the_rush_expects_its_409s_but_nothing_else_and_no_broken_invariant():
    fine = {name: 0 for name in dataset.RUSH_INVARIANTS}
    statuses = [
        {"201": 500, "202": 10, "409 time-conflict": 300, "409 course-full": 190},
        {"201": 400, "204": 100, "409 credit-limit": 500},
    ]
    (line,) = bench.verdicts([_rush_row(statuses, [fine, fine])])
    assert line == (
        "rush: 1,000 req/s, p99 50.00ms; answered 201 900, 202 10, 204 100, 409 course-full "
        "190, 409 credit-limit 500, 409 time-conflict 300; 0 answers other than 200, 201, 202, "
        "204, 409 course-full, 409 waitlist-full, 409 prerequisite-missing, 409 time-conflict, "
        "409 credit-limit and 0 socket errors (target 0); 0 invariant violations in 2 run(s) "
        "(target 0): met"
    )
    # A 503, a 404 or a rule the data never breaks is an error there.
    for unexpected in ("503 busy", "404 not-found", "409 registration-hold"):
        (line,) = bench.verdicts([_rush_row([{**statuses[0], unexpected: 1}], [fine])])
        assert "; 1 answers other than " in line and line.endswith("NOT met"), unexpected
    broken = {**fine, "overlapping enrollments": 2}
    (line,) = bench.verdicts([_rush_row(statuses, [fine, broken])])
    assert "; 2 invariant violations (2 overlapping enrollments) in 2 run(s) " in line
    assert line.endswith("NOT met")
    # Nothing answered at all is no rush.
    assert bench.verdicts([_rush_row([{}], [fine])])[0].endswith("NOT met")


async def _copy_students(conn: asyncpg.Connection, count: int) -> None:
    await conn.copy_records_to_table(
        "students",
        records=[(i, f"Student {i}", f"s{i}@bench.example") for i in range(1, count + 1)],
        columns=["id", "name", "email"],
    )


async def _enroll(conn: asyncpg.Connection, course: int, students: list[int]) -> list[str]:
    rows = await conn.fetch(
        "select outcome from enroll_run($1, null, null, $2, $3, $4, 'bench')",
        course,
        students,
        [False] * len(students),
        [None] * len(students),
    )
    return [row["outcome"] for row in rows]


async def test_every_request_of_enroll_rules_and_bulk_rules_enrolls(database_url: str, db):
    """The data the harness builds lets each request pass every rule, in the order sent."""
    await _copy_students(db, 100)
    rules = dataset.RulesCourses(term=1, first_course=1, first_student=1, students=30, sections=7)
    bulk = dataset.BulkCourses(
        first_course=rules.courses + 1, courses=12, first_student=31, students=30, items=10, term=2
    )
    plan = {("enroll-rules", "service", 0, False): rules, ("bulk-rules", "service", 0, False): bulk}
    await dataset.prepare_runs(database_url, dataset.Sizes(0, 0, 1, reserved=100), plan)
    # Before: the prefilled seats, their credits kept, the window open.
    assert await db.fetchval("select count(*) from student_courses") == 30 * 2
    assert await db.fetchval("select sum(credits) from student_terms") == 30 * 2 * 3
    assert await db.fetchval("select bool_and(enrolled <= capacity) from courses")
    for student, course in _rules_items(rules):
        assert await _enroll(db, course, [student]) == ["enrolled"], (student, course)
    for request in _bulk_items(bulk):
        course = request[0][1]
        assert await _enroll(db, course, [s for s, _ in request]) == ["enrolled"] * 10
    # Each student of bulk-rules took a course in each of its 4 passes.
    assert (
        await db.fetchval(
            "select count(*) from student_courses e join courses c on c.id = e.course_id"
            " where c.term_id = 2"
        )
        == 120
    )
    for term in (1, 2):
        violations = await dataset.rush_violations(database_url, dataset.RushTerm(term, 0, 0))
        assert set(violations.values()) == {0}, violations


# The rush term of the next test: sections 1..20, students 1..400 (student
# s is number s - 1 of the run: student 1 has a limit of 8 credits of their
# own and lacks RUSH100). Section j + 1 meets like rush_meetings(j): 1 and
# 4 overlap; 2, 3 and 7 overlap none of one another.
_RUSH = dataset.RushTerm(term=1, first_course=1, first_student=1)


@pytest.mark.parametrize(
    "statements, broken",
    [
        # Two overlapping courses, the counts kept as the triggers would.
        (
            [
                "insert into student_courses (student_id, course_id) values (2, 1), (2, 4)",
                "update courses set enrolled = enrolled + 1 where id in (1, 4)",
                "insert into student_terms (student_id, term_id, credits) values (2, 1, 8)",
            ],
            {"overlapping enrollments": 1},
        ),
        # The same, one of them admitted by a registrar's override: no violation.
        (
            [
                "insert into student_courses (student_id, course_id, overrides)"
                " values (2, 1, null), (2, 4, '{time-conflict}')",
                "update courses set enrolled = enrolled + 1 where id in (1, 4)",
                "insert into student_terms (student_id, term_id, credits) values (2, 1, 8)",
            ],
            {},
        ),
        # 12 credits for student 1, whose own limit is 8.
        (
            [
                "insert into student_courses (student_id, course_id) values (1, 2), (1, 3), (1, 7)",
                "update courses set enrolled = enrolled + 1 where id in (2, 3, 7)",
                "update student_terms set credits = 12 where student_id = 1",
            ],
            {"students over their credit limit": 1},
        ),
        (
            ["update student_terms set credits = 4 where student_id = 1"],
            {"kept credits unequal to the enrollments'": 1},
        ),
        (["update courses set enrolled = 1 where id = 5"], {"courses with wrong seat counts": 1}),
        # Waiting for a course with free seats that student 2 may take; and
        # enrolled in it besides.
        (
            [
                "insert into course_waitlist (student_id, course_id) values (2, 1)",
                "update courses set waitlisted = 1 where id = 1",
            ],
            {"free seats while a student who may take one waits": 1},
        ),
        (
            [
                "insert into student_courses (student_id, course_id) values (2, 1)",
                "insert into course_waitlist (student_id, course_id) values (2, 1)",
                "update courses set enrolled = 1, waitlisted = 1 where id = 1",
                "insert into student_terms (student_id, term_id, credits) values (2, 1, 4)",
            ],
            {
                "students both enrolled and waiting": 1,
                "free seats while a student who may take one waits": 1,
            },
        ),
        # Student 1 lacks the prerequisite of section 5 (4 + 1): waiting
        # there with seats free is no violation.
        (
            [
                "insert into course_waitlist (student_id, course_id) values (1, 5)",
                "update courses set waitlisted = 1 where id = 5",
            ],
            {},
        ),
    ],
)
async def test_the_rush_invariants_count_what_breaks_them(
    database_url: str, db, statements, broken
):
    await _copy_students(db, 400)
    plan = {("rush", "service", 0, False): _RUSH}
    await dataset.prepare_runs(database_url, dataset.Sizes(0, 0, 1, reserved=400), plan)
    assert set((await dataset.rush_violations(database_url, _RUSH)).values()) == {0}
    # Past the triggers and their guards, as a bug would.
    async with db.transaction():
        await db.execute("set local session_replication_role = replica")
        for statement in statements:
            await db.execute(statement)
    violations = await dataset.rush_violations(database_url, _RUSH)
    assert {name: n for name, n in violations.items() if n} == broken
