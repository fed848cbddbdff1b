"""How fast `python -m service import` loads a registrar's files, against COPY.

    .venv/bin/python -m bench.import_load [--students 100000] [--enrollments 500000]
        [--courses 2000] [--batch-size 500]

Writes students.csv, courses.csv (no capacity limits) and enrollments.csv
(each student's enrollments/students distinct courses on consecutive rows) to a temporary
folder, starts a throw-away embedded PostgreSQL (fsync off, as make bench) and
`python -m service serve` on a migrated database, and times each
`python -m service import` end to end as a registrar runs it (interpreter
start, the file read twice, every batch sent and answered), with its peak
memory. Then the same school as a OneRoster 1.2 bundle (users, roles,
classes, courses, terms, enrollments: tests/oneroster_bundle.py's school())
through `python -m service import oneroster` on a fresh database, beside the
CSV files' total. Then, on a fresh migrated database of the same cluster, it times a
bare COPY of the same rows into the same tables: once with the tables'
triggers (the events recorded and the seats counted, as through the
API), once without them (session_replication_role = replica), the physical
limit.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil

from service import migrations
from service.embedded import EmbeddedPostgres, free_port
from tests.oneroster_bundle import school, write_bundle

from .servers import MIB, ROOT, Server, child_env, python_module, start, stop, wait_ready


@dataclass(frozen=True)
class Files:
    students: Path
    courses: Path
    enrollments: Path


def course_code(i: int) -> str:
    return f"C{i:05d}"


def enrollment_pairs(students: int, enrollments: int, courses: int) -> list[tuple[int, int]]:
    """(student, course) indexes: each student's courses in a row, distinct, spread over courses."""
    per_student = -(-enrollments // students)
    pairs = []
    for n in range(enrollments):
        student, k = divmod(n, per_student)
        # 401 is prime to the course counts used, so a student's courses differ.
        pairs.append((student, (student * 7 + k * 401) % courses))
    return pairs


def write_files(folder: Path, students: int, enrollments: int, courses: int) -> Files:
    files = Files(folder / "students.csv", folder / "courses.csv", folder / "enrollments.csv")
    with files.students.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["name", "email"])
        out.writerows((f"Student {i}", f"student{i}@bench.example") for i in range(students))
    with files.courses.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["code", "title", "capacity"])
        out.writerows((course_code(i), f"Course {i}", "") for i in range(courses))
    with files.enrollments.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["email", "code"])
        out.writerows(
            (f"student{s}@bench.example", course_code(c))
            for s, c in enrollment_pairs(students, enrollments, courses)
        )
    return files


@dataclass
class Timed:
    what: str
    rows: int
    seconds: float
    peak_rss_mib: float | None = None
    importer_cpu: float | None = None
    service_cpu: float | None = None
    database_cpu: float | None = None

    def line(self) -> str:
        text = (
            f"{self.what:<40} {self.rows:>9,} rows {self.seconds:>8.1f} s "
            f"{self.rows / self.seconds:>10,.0f} rows/s"
        )
        if self.peak_rss_mib is None:
            text += f", database CPU {self.database_cpu:.1f} s"
        else:
            text += (
                f", importer peak RSS {self.peak_rss_mib:.0f} MiB, CPU {self.importer_cpu:.1f} s"
                f", service CPU {self.service_cpu:.1f} s, database CPU {self.database_cpu:.1f} s"
            )
        return text


def database_cpu(cluster: EmbeddedPostgres) -> float:
    """CPU seconds used so far by the cluster's processes, ended backends included."""
    postmaster = psutil.Process(int((cluster.datadir / "postmaster.pid").read_text().split()[0]))
    times = postmaster.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children():
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        total += child_times.user + child_times.system
    return total


def run_import(
    kind: str, file: Path, server: Server, cluster: EmbeddedPostgres, batch_size: int, rows: int
) -> Timed:
    command = python_module(
        "service", "import", kind, str(file), "--url", server.url, "--batch-size", str(batch_size)
    )
    service_cpu, db_cpu = server.cpu_seconds(), database_cpu(cluster)
    started = time.perf_counter()
    log = file.with_suffix(".log")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=sink
        )
    # The importer's resident memory, sampled while it runs (ru_maxrss would
    # count the parent's memory at fork).
    peak = cpu = 0.0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            with watched.oneshot():
                peak = max(peak, watched.memory_info().rss / MIB)
                times = watched.cpu_times()
                cpu = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    service_cpu = server.cpu_seconds() - service_cpu
    db_cpu = database_cpu(cluster) - db_cpu
    summary = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"import {kind} exited {process.returncode}:\n{summary}")
    print(summary)
    retries = [line for line in log.read_text().splitlines() if "retrying batch" in line]
    if retries:
        print(f"{len(retries)} retries, the first: {retries[0]}")
    what = f"import {kind} (batches of {batch_size})"
    return Timed(what, rows, seconds, peak, cpu, service_cpu, db_cpu)


async def copy_rows(
    cluster: EmbeddedPostgres, database: str, files: Files, triggers: bool
) -> list[Timed]:
    conn = await asyncpg.connect(cluster.dsn_for(database))
    timed = []
    label = "with triggers" if triggers else "without triggers"
    try:
        if not triggers:
            await conn.execute("set session_replication_role = replica")
        for table, file, columns in (
            ("students", files.students, ["name", "email"]),
            ("courses", files.courses, ["code", "title", "capacity"]),
        ):
            started, cpu = time.perf_counter(), database_cpu(cluster)
            result = await conn.copy_to_table(
                table, source=file, columns=columns, format="csv", header=True
            )
            rows = int(result.split()[-1])
            took = Timed(f"COPY {table} {label}", rows, time.perf_counter() - started)
            took.database_cpu = database_cpu(cluster) - cpu
            timed.append(took)
        # The same pairs as ids, resolved outside the timing: COPY takes no lookups.
        students = {r["email"]: r["id"] for r in await conn.fetch("select id, email from students")}
        courses = {r["code"]: r["id"] for r in await conn.fetch("select id, code from courses")}
        with files.enrollments.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            records = [(students[email], courses[code]) for email, code in reader]
        started, cpu = time.perf_counter(), database_cpu(cluster)
        await conn.copy_records_to_table(
            "student_courses", records=records, columns=["student_id", "course_id"]
        )
        took = Timed(f"COPY student_courses {label}", len(records), time.perf_counter() - started)
        took.database_cpu = database_cpu(cluster) - cpu
        timed.append(took)
    finally:
        await conn.close()
    return timed


def serve(cluster: EmbeddedPostgres, database: str, folder: Path) -> Server:
    port = free_port()
    server = start(
        "service",
        python_module("service", "serve"),
        child_env(
            DATABASE_URL=cluster.dsn_for(database),
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY="1",
            LOG_LEVEL="WARNING",
            ACCESS_LOG="false",
        ),
        port,
        folder / f"service-{database}.log",
    )
    wait_ready(server, "/readyz", {})
    return server


def import_bundle(
    cluster: EmbeddedPostgres, folder: Path, bundle: Path, args: argparse.Namespace, per: int
) -> Timed:
    """The bundle through `import oneroster` on a database of its own."""
    server = serve(cluster, "through_oneroster", folder)
    try:
        rows = args.students * 2 + args.courses * 2 + args.students * per
        return run_import("oneroster", bundle, server, cluster, args.batch_size, rows)
    finally:
        stop(server)


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_load", description=__doc__)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--enrollments", type=int, default=500_000)
    parser.add_argument("--courses", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    # Stopped with SIGTERM, still stop the cluster and the service (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.enrollments > args.students * min(5, args.courses):
        parser.error("at most 5 enrollments per student (and no more than the courses)")

    folder = Path(tempfile.mkdtemp(prefix="enrollment-import-bench-"))
    cluster = EmbeddedPostgres(datadir=folder / "pg", port=free_port(), durable=False)
    results: list[Timed] = []
    try:
        started = time.perf_counter()
        files = write_files(folder, args.students, args.enrollments, args.courses)
        print(f"files written in {time.perf_counter() - started:.1f} s to {folder}")
        cluster.start()
        for name in ("through_api", "through_oneroster", "copy_triggers", "copy_bare"):
            asyncio.run(create_database(cluster.dsn, name))
            migrations.apply(cluster.dsn_for(name))
        server = serve(cluster, "through_api", folder)
        try:
            for kind, file, rows in (
                ("courses", files.courses, args.courses),
                ("students", files.students, args.students),
                ("enrollments", files.enrollments, args.enrollments),
            ):
                results.append(run_import(kind, file, server, cluster, args.batch_size, rows))
        finally:
            stop(server)
        per_student = -(-args.enrollments // args.students)
        started = time.perf_counter()
        bundle = folder / "roster"
        write_bundle(bundle, school(args.students, args.courses, per_student))
        print(f"OneRoster bundle written in {time.perf_counter() - started:.1f} s to {bundle}")
        results.append(import_bundle(cluster, folder, bundle, args, per_student))
        results += asyncio.run(copy_rows(cluster, "copy_triggers", files, True))
        results += asyncio.run(copy_rows(cluster, "copy_bare", files, False))
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; service: 1 worker")
    for timed in results:
        print(timed.line())
    through = {t.what.split()[1]: t for t in results if t.what.startswith("import")}
    for table, kind in (("students", "students"), ("student_courses", "enrollments")):
        for label in ("with triggers", "without triggers"):
            copy = next(t for t in results if t.what == f"COPY {table} {label}")
            print(f"import {kind} takes {through[kind].seconds / copy.seconds:.1f}x COPY {label}")
    csv_seconds = sum(
        t.seconds for t in results if t.what.startswith("import ") and "oneroster" not in t.what
    )
    bundle = next(t for t in results if "oneroster" in t.what)
    print(
        f"import oneroster: {args.students:,} users and {args.students * per_student:,} "
        f"enrollments (with {args.courses:,} classes, courses and roles) in {bundle.seconds:.1f} s; "
        f"the CSV files of the same school (courses, students, enrollments) {csv_seconds:.1f} s: "
        f"{bundle.seconds / csv_seconds:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
