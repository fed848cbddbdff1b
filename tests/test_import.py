"""`python -m service import`, run as a registrar would: a subprocess, a CSV file, a real server.

Every test writes real files to tmp_path and runs the importer as its own
process against `python -m service serve` (also a subprocess) on the test's
database, then checks the summary, the exit status, the rejected file, the
database and the events.
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from service.embedded import PROJECT_ROOT, free_port

from .test_shutdown import (
    HOST,
    SERVICE_VARIABLES,
    Server,
    _kill_tree,
    eventually,
    serving,
)

pytestmark = pytest.mark.slow

WRITER = "registrar:write:4c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"
READER = "dashboard:read:0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str

    def count(self, label: str) -> int:
        """The number the summary gives for `label` (0 when it has no such line)."""
        match = re.search(rf"^\s+{re.escape(label)}\s+(\d+)$", self.stdout, re.MULTILINE)
        return int(match.group(1)) if match else 0


def importer_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", *SERVICE_VARIABLES)}
    return {**env, "PYTHONPATH": str(PROJECT_ROOT), **settings}


async def run_import(
    kind: str,
    file: str | Path,
    url: str,
    *options: str,
    cwd: Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    within: float = 120,
) -> Run:
    """`python -m service import KIND FILE --url URL OPTIONS`, from the registrar's folder `cwd`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "import",
        kind,
        str(file),
        "--url",
        url,
        *options,
        cwd=cwd,
        env=env or importer_env(),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=within)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the import did not end within {within}s")
    return Run(process.returncode, out.decode(), err.decode())


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rejected_rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(2**20)  # a rejected file may hold values as long as a row
    text = path.read_text(encoding="utf-8-sig")
    delimiter = ";" if ";" in text.splitlines()[0] else ","
    return list(csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter))


def only_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


async def events(url: str) -> list[tuple[str, int | None, int | None]]:
    """Every event the feed serves, as (type, student_id, course_id)."""
    found: list[tuple[str, int | None, int | None]] = []
    params: dict[str, str | int] = {"limit": 1000}
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{url}/events", params=params) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            if not page["items"]:
                return found
            found += [(e["type"], e["student_id"], e["course_id"]) for e in page["items"]]
            params["cursor"] = page["next_cursor"]


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    async with serving(database_url, tmp_path) as server:
        yield server


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The registrar's working folder, where files are and rejected files go."""
    path = tmp_path / "registrar"
    path.mkdir()
    return path


# -- files as spreadsheets write them ------------------------------------------------------


async def test_a_spreadsheet_export_with_bom_semicolons_quotes_crlf_and_blank_lines(
    service, db, folder
):
    # Excel in a locale with decimal commas: BOM, semicolons, CRLF, quoted
    # fields holding the separator, a comma and a line break (in a column the
    # importer does not know, so it warns and ignores it), blank lines and an
    # empty row of separators.
    file = write(
        folder / "students.csv",
        "\ufeffName;Email;Notes\r\n"
        "Ada Lovelace;ada@example.org;\r\n"
        '"Turing; Alan";alan@example.org;"first line\r\nsecond, line"\r\n'
        "\r\n"
        ";;\r\n"
        '"Hopper, Grace";"grace@example.org";\r\n'
        "José Núñez;JOSE@example.org;\r\n",
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 0, run
    assert "ignoring unknown column(s): Notes" in run.stderr
    assert run.count("created") == 4
    assert run.count("not applied") == 0
    rows = await db.fetch("select name, email from students order by id")
    assert [(r["name"], r["email"]) for r in rows] == [
        ("Ada Lovelace", "ada@example.org"),
        ("Turing; Alan", "alan@example.org"),
        ("Hopper, Grace", "grace@example.org"),
        ("José Núñez", "JOSE@example.org"),
    ]
    assert not (folder / "students.csv.rejected.csv").exists()


async def test_courses_with_and_without_capacity_then_enrollments_with_actions(service, db, folder):
    courses = write(
        folder / "courses.csv",
        "code,title,capacity,waitlist_capacity\n"
        "MATH1,Maths,,\n"  # no limit, no waitlist
        "POE1,Poetry,1,1\n"
        "LOG1,Logic,2\n",  # a short row: waitlist_capacity empty
    )
    run = await run_import("courses", courses, service.url, cwd=folder)
    assert run.status == 0, run
    assert run.count("created") == 3
    stored = await db.fetch("select code, capacity, waitlist_capacity from courses order by id")
    assert [tuple(r) for r in stored] == [("MATH1", None, 0), ("POE1", 1, 1), ("LOG1", 2, 0)]

    students = write(
        folder / "students.csv",
        "name,email\nAda,ada@example.org\nAlan,alan@example.org\nGrace,grace@example.org\n",
    )
    assert (await run_import("students", students, service.url, cwd=folder)).status == 0

    enrollments = write(
        folder / "enrollments.csv",
        "email,code,action,waitlist\n"
        "ada@example.org,MATH1,,\n"  # action defaults to enroll
        "ADA@example.org,math1,enroll,\n"  # the same pair in other letter case
        "alan@example.org,POE1,Enroll,\n"
        "grace@example.org,POE1,enroll,yes\n"  # full: onto the waitlist
        "ada@example.org,POE1,enroll,\n"  # full, no waitlist asked
        "alan@example.org,LOG1,drop,\n"  # not enrolled: nothing to drop
        "ada@example.org,MATH1,DROP,\n",  # the same pair again: not sent
    )
    run = await run_import("enrollments", enrollments, service.url, cwd=folder)

    assert run.status == 1, run
    assert run.count("enrolled") == 2
    assert run.count("waitlisted") == 1
    assert run.count("not enrolled (nothing to drop)") == 1
    assert run.count("applied") == 4
    assert run.count("refused: course-full") == 1
    assert run.count("refused: duplicate") == 2
    rejected = rejected_rows(folder / "enrollments.csv.rejected.csv")
    assert [(r["email"], r["code"], r["line"], r["outcome"], r["reason"]) for r in rejected] == [
        ("ADA@example.org", "math1", "3", "duplicate", "duplicate of line 2"),
        ("ada@example.org", "POE1", "6", "course-full", "course POE1 is full"),
        ("ada@example.org", "MATH1", "8", "duplicate", "duplicate of line 2"),
    ]

    # Dropping a student the first file enrolled takes a second file.
    changes = write(
        folder / "changes.csv",
        "email,code,action\nADA@example.org,math1,enroll\nalan@example.org,POE1,drop\n",
    )
    run = await run_import("enrollments", changes, service.url, cwd=folder)

    assert run.status == 0, run
    assert (run.count("already enrolled"), run.count("dropped")) == (1, 1)
    pairs = await db.fetch(
        "select s.email, c.code from student_courses e"
        " join students s on s.id = e.student_id join courses c on c.id = e.course_id"
    )
    # Alan's seat went to Grace, first on the waitlist.
    assert {tuple(p) for p in pairs} == {
        ("ada@example.org", "MATH1"),
        ("grace@example.org", "POE1"),
    }


# -- rows that are not applied -------------------------------------------------------------


async def test_bad_rows_go_to_the_rejected_file_with_their_line_and_reason(service, db, folder):
    file = write(
        folder / "students.csv",
        "name,email\n"
        "Ada Lovelace,ada@example.org\n"
        '"Bad, Email",not-an-email\n'  # line 3
        '"Two\nLines",two@example.org\n'  # lines 4-5: a line break inside a name
        "\n"
        ",empty@example.org\n"  # line 7: no name
        "Too,many@example.org,fields\n"  # line 8: more fields than the header
        "Grace Hopper,grace@example.org\n",
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert run.count("created") == 2
    assert run.count("not applied") == 4
    assert run.count("rejected as invalid") == 4
    assert f"rejected rows (line and reason of each): {file}.rejected.csv" in run.stdout
    rows = rejected_rows(folder / "students.csv.rejected.csv")
    assert [(r["line"], r["outcome"]) for r in rows] == [
        ("3", "invalid"),
        ("4", "invalid"),
        ("7", "invalid"),
        ("8", "invalid"),
    ]
    assert list(rows[0]) == ["name", "email", "line", "outcome", "reason"]
    assert (rows[0]["name"], rows[0]["email"]) == ("Bad, Email", "not-an-email")
    assert rows[0]["reason"].startswith("email: ")
    assert rows[1]["name"] == "Two\nLines"
    assert rows[1]["reason"].startswith("name: ")
    assert rows[2]["reason"] == "name is empty"
    assert rows[3]["reason"] == "the row has 3 fields, the header 2"
    emails = await db.fetch("select email from students order by id")
    assert [r["email"] for r in emails] == ["ada@example.org", "grace@example.org"]


async def test_unknown_students_and_courses_are_rejected_and_a_fixed_file_imports(
    service, db, folder
):
    await run_import(
        "students",
        write(folder / "s.csv", "name,email\nAda,ada@example.org\n"),
        service.url,
        cwd=folder,
    )
    await run_import(
        "courses", write(folder / "c.csv", "code,title\nMATH1,Maths\n"), service.url, cwd=folder
    )
    file = write(
        folder / "enrollments.csv",
        "email;code\nada@example.org;MATH1\nnobody@example.org;MATH1\nada@example.org;CS999\n",
    )

    run = await run_import("enrollments", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert run.count("enrolled") == 1
    assert run.count("refused: student-not-found") == 1
    assert run.count("refused: course-not-found") == 1
    rows = rejected_rows(folder / "enrollments.csv.rejected.csv")
    assert [(r["email"], r["code"], r["line"], r["outcome"]) for r in rows] == [
        ("nobody@example.org", "MATH1", "3", "student-not-found"),
        ("ada@example.org", "CS999", "4", "course-not-found"),
    ]
    assert all(r["reason"] for r in rows)

    # The registrar creates the missing course and imports the rejected file as it is
    # (its line, outcome and reason columns are ignored).
    await run_import(
        "courses", write(folder / "c2.csv", "code,title\nCS999,Late\n"), service.url, cwd=folder
    )
    again = await run_import(
        "enrollments", folder / "enrollments.csv.rejected.csv", service.url, cwd=folder
    )
    assert again.status == 1, again
    assert "ignoring" not in again.stderr
    assert again.count("enrolled") == 1
    assert again.count("refused: student-not-found") == 1
    [left] = rejected_rows(folder / "enrollments.csv.rejected.csv.rejected.csv")
    assert (left["email"], left["line"]) == ("nobody@example.org", "2")


INVALID_EMAIL = "email: must contain exactly one @ with text on both sides"


async def test_cells_a_spreadsheet_would_run_are_quoted_in_the_rejected_file_only(
    service, db, folder
):
    file = write(
        folder / "students.csv",
        "name,email,Notes\n"
        '"=HYPERLINK(""http://evil.example/"",""click"")",one,\n'
        "+cmd|' /C calc'!A0,two,\n"
        '"@SUM(1,2)",three,\n'
        "Dash,-2+3,\n"
        "Tab,four,\t=1\n"
        'CR,five,"\r=1"\n'  # lines 7-8: a quoted carriage return
        "=Ada Lovelace,ada@example.org,\n"
        "-Grace Hopper,grace@example.org,=1+1\n"
        "@Alan,alan@example.org,\n",
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert (run.count("created"), run.count("rejected as invalid")) == (3, 6)
    # What the service stored is each cell as written.
    names = await db.fetch("select name from students order by id")
    assert [r["name"] for r in names] == ["=Ada Lovelace", "-Grace Hopper", "@Alan"]
    # In the rejected file, every cell that starts with =, +, -, @, tab or
    # carriage return has a ' before it, so a spreadsheet shows it as text.
    rejected = folder / "students.csv.rejected.csv"
    expected = [
        "\ufeffname,email,Notes,line,outcome,reason",
        f""""'=HYPERLINK(""http://evil.example/"",""click"")",one,,2,invalid,{INVALID_EMAIL}""",
        f"'+cmd|' /C calc'!A0,two,,3,invalid,{INVALID_EMAIL}",
        f""""'@SUM(1,2)",three,,4,invalid,{INVALID_EMAIL}""",
        f"Dash,'-2+3,,5,invalid,{INVALID_EMAIL}",
        f"Tab,four,'\t=1,6,invalid,{INVALID_EMAIL}",
        f'CR,five,"\'\r=1",7,invalid,{INVALID_EMAIL}',
    ]
    assert rejected.read_bytes() == "".join(line + "\r\n" for line in expected).encode()

    # The registrar fixes the emails in a spreadsheet and imports the
    # rejected file: the quotes the importer added come off again.
    with rejected.open(encoding="utf-8-sig", newline="") as stream:
        header, *rows = list(csv.reader(stream))
    with rejected.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows([row[0], f"fixed{row[3]}@example.org", *row[2:]] for row in rows)
    again = await run_import("students", rejected, service.url, cwd=folder)

    assert again.status == 0, again
    assert again.count("created") == 6
    names = await db.fetch("select name from students order by id offset 3")
    assert [r["name"] for r in names] == [
        '=HYPERLINK("http://evil.example/","click")',
        "+cmd|' /C calc'!A0",
        "@SUM(1,2)",
        "Dash",
        "Tab",
        "CR",
    ]


# -- running it twice ----------------------------------------------------------------------


async def test_the_same_files_twice_change_nothing_the_second_time(service, db, folder):
    students = write(
        folder / "students.csv",
        "name,email\n" + "".join(f"Student {i},s{i}@example.org\n" for i in range(30)),
    )
    courses = write(folder / "courses.csv", "code,title,capacity\nC1,One,\nC2,Two,40\n")
    enrollments = write(
        folder / "enrollments.csv",
        "email,code\n" + "".join(f"s{i}@example.org,C{1 + i % 2}\n" for i in range(30)),
    )
    first = [
        await run_import(kind, file, service.url, "--batch-size", "7", cwd=folder)
        for kind, file in [
            ("students", students),
            ("courses", courses),
            ("enrollments", enrollments),
        ]
    ]
    assert [r.status for r in first] == [0, 0, 0], first
    assert [r.count("created") for r in first[:2]] == [30, 2]
    assert first[2].count("enrolled") == 30
    before = await events(service.url)
    assert len(before) == 30 + 2 + 30
    stored = await db.fetchval("select count(*) from events")

    second = [
        await run_import(kind, file, service.url, "--batch-size", "7", cwd=folder)
        for kind, file in [
            ("students", students),
            ("courses", courses),
            ("enrollments", enrollments),
        ]
    ]

    assert [r.status for r in second] == [0, 0, 0], second
    assert [r.count("unchanged") for r in second[:2]] == [30, 2]
    assert second[2].count("already enrolled") == 30
    for run in second:
        assert "nothing changed: every row was already in place" in run.stdout
        assert run.count("created") == run.count("updated") == run.count("enrolled") == 0
    assert await events(service.url) == before
    assert await db.fetchval("select count(*) from events") == stored


async def test_a_changed_name_or_title_is_an_update(service, db, folder):
    file = write(
        folder / "students.csv", "name,email\nAda,ada@example.org\nAlan,alan@example.org\n"
    )
    await run_import("students", file, service.url, cwd=folder)
    write(file, "name,email\nAda King,ADA@example.org\nAlan,alan@example.org\n")

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 0, run
    assert (run.count("updated"), run.count("unchanged")) == (1, 1)
    assert await db.fetchval("select name from students where email = 'ada@example.org'") == (
        "Ada King"
    )
    assert [e[0] for e in await events(service.url)] == [
        "student.created",
        "student.created",
        "student.updated",
    ]


async def test_a_key_repeated_in_another_letter_case_is_that_rows_error_and_reruns_change_nothing(
    service, db, folder
):
    # The service compares emails and codes ignoring letter case (Unicode
    # simple case folding: STRASSE and straße differ, ẞ and ß do not), so a
    # second row for the same student or course would rename the first one
    # on every run.
    students = write(
        folder / "students.csv",
        "name,email\n"
        "Ada,student00010@school.example.edu\n"
        "Grete,grete@straße.example\n"
        "Ada Again,STUDENT00010@School.Example.EDU\n"  # line 4: duplicate of line 2
        "Greta,grete@STRAẞE.example\n"  # line 5: ẞ folds to ß, duplicate of line 3
        "Hans,grete@strasse.example\n",  # another address: ß is not ss
    )
    courses = write(
        folder / "courses.csv", "code,title,capacity\nTINY,Tiny,1\nMATH1,Maths,\ntiny,Small,2\n"
    )
    enrollments = write(
        folder / "enrollments.csv",
        "email,code,action\n"
        "student00010@school.example.edu,MATH1,enroll\n"
        "Student00010@School.Example.Edu,math1,drop\n",  # line 3: the same pair again
    )

    first = [
        await run_import(kind, file, service.url, cwd=folder)
        for kind, file in (
            ("students", students),
            ("courses", courses),
            ("enrollments", enrollments),
        )
    ]

    assert [r.status for r in first] == [1, 1, 1], first
    assert (first[0].count("created"), first[0].count("updated")) == (3, 0)
    assert first[0].count("refused: duplicate") == 2
    assert [
        (r["line"], r["outcome"], r["reason"])
        for r in rejected_rows(Path(f"{students}.rejected.csv"))
    ] == [
        ("4", "duplicate", "duplicate of line 2"),
        ("5", "duplicate", "duplicate of line 3"),
    ]
    assert [(r["line"], r["reason"]) for r in rejected_rows(Path(f"{courses}.rejected.csv"))] == [
        ("4", "duplicate of line 2")
    ]
    assert [
        (r["line"], r["reason"]) for r in rejected_rows(Path(f"{enrollments}.rejected.csv"))
    ] == [("3", "duplicate of line 2")]
    stored = await db.fetch("select name, email from students order by id")
    assert [tuple(r) for r in stored] == [
        ("Ada", "student00010@school.example.edu"),
        ("Grete", "grete@straße.example"),
        ("Hans", "grete@strasse.example"),
    ]
    assert [tuple(r) for r in await db.fetch("select code, capacity from courses order by id")] == [
        ("TINY", 1),
        ("MATH1", None),
    ]
    recorded = len(await events(service.url))

    for kind, file in (("students", students), ("courses", courses), ("enrollments", enrollments)):
        again = await run_import(kind, file, service.url, cwd=folder)
        assert again.status == 1, again
        assert again.count("updated") == again.count("created") == 0, again
        assert again.count("enrolled") == again.count("dropped") == 0, again
    assert len(await events(service.url)) == recorded


async def test_every_reason_speaks_in_the_files_terms(service, db, folder):
    await run_import(
        "courses",
        write(folder / "courses.csv", "code,title,capacity,waitlist_capacity\nTINY,Tiny,1,\n"),
        service.url,
        cwd=folder,
    )
    students = write(
        folder / "students.csv",
        "name,email\nAda,ada@example.org\nGrace,grace@example.org\nNo Email,\n,x@example.org\n",
    )
    enrollments = write(
        folder / "enrollments.csv",
        "email,code,waitlist\n"
        "ada@example.org,TINY,no\n"
        "grace@example.org,TINY,\n"  # line 3: full
        "grace@example.org,NOPE,\n"  # line 4
        "nobody@example.org,TINY,\n"  # line 5
        ",TINY,\n"  # line 6
        "grace@example.org,,\n"  # line 7
        "ada@example.org,NOPE,maybe\n",  # line 8: a boolean the importer does not know
    )

    said = await run_import("students", students, service.url, cwd=folder)
    enrolled = await run_import("enrollments", enrollments, service.url, cwd=folder)

    assert [(r["line"], r["reason"]) for r in rejected_rows(Path(f"{students}.rejected.csv"))] == [
        ("4", "email is empty"),
        ("5", "name is empty"),
    ]
    assert [
        (r["line"], r["reason"]) for r in rejected_rows(Path(f"{enrollments}.rejected.csv"))
    ] == [
        ("3", "course TINY is full"),
        ("4", "no course has code NOPE"),
        ("5", "no student has email nobody@example.org"),
        ("6", "email is empty"),
        ("7", "code is empty"),
        (
            "8",
            "waitlist: 'maybe' is not yes or no "
            "(yes, y, true, 1; no, n, false, 0 or empty; any letter case)",
        ),
    ]
    assert (said.status, enrolled.status) == (1, 1)


# -- terms, holds and completions; courses and enrollments in terms ------------------------


TERMS_HEADER = (
    "code,title,starts_on,ends_on,registration_opens_at,registration_closes_at,"
    "drop_deadline,max_credits\n"
)


async def test_terms_are_created_updated_by_code_and_a_rerun_changes_nothing(service, db, folder):
    file = write(
        folder / "terms.csv",
        TERMS_HEADER + "2027-SPRING,Spring 2027,2027-01-11,2027-05-07,"
        "2026-11-02T09:00:00Z,2027-01-22T17:00:00Z,2027-02-05T17:00:00+01:00,18\n"
        "2027-fall,Fall 2027,2027-08-30,2027-12-17,,,,12.5\n"  # empty limits: none
        "2027-SUMMER,Summer,2027-07-01,2027-06-01,,,,\n"  # line 4: ends before it starts
        "2028-SPRING,Spring 2028,11/01/2028,2028-05-05,,,,\n"  # line 5: not YYYY-MM-DD
        "2028-FALL,Fall 2028,2028-08-28,2028-12-15,2028-05-01 09:00,,,\n"  # line 6: no offset
        "2029-SPRING,Spring 2029,2029-01-08,2029-05-04,,,,12.25\n"  # line 7: two decimals
        "2029-FALL,,2029-08-27,2029-12-14,,,,\n"  # line 8: no title
        "2027-spring,Again,2027-01-11,2027-05-07,,,,\n",  # line 9: the same code
    )

    run = await run_import("terms", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert (run.count("created"), run.count("rejected as invalid")) == (2, 5)
    assert run.count("refused: duplicate") == 1
    rejected = rejected_rows(folder / "terms.csv.rejected.csv")
    assert [(r["line"], r["outcome"]) for r in rejected] == [
        ("4", "invalid"),
        ("5", "invalid"),
        ("6", "invalid"),
        ("7", "invalid"),
        ("8", "invalid"),
        ("9", "duplicate"),
    ]
    reasons = [r["reason"] for r in rejected]
    assert reasons[0].startswith("ends_on: ")
    assert reasons[1] == "starts_on: must be a date as YYYY-MM-DD"
    assert reasons[2].startswith("registration_opens_at: must be an RFC 3339 timestamp")
    assert reasons[3].startswith("max_credits: ")
    assert reasons[4] == "title is empty"
    assert reasons[5] == "duplicate of line 2"
    stored = await db.fetch(
        "select code, title, registration_opens_at is not null as opens, drop_deadline,"
        " max_credits from terms order by id"
    )
    assert [tuple(r) for r in stored] == [
        ("2027-SPRING", "Spring 2027", True, datetime(2027, 2, 5, 16, tzinfo=UTC), 18),
        ("2027-fall", "Fall 2027", False, None, 12.5),
    ]
    recorded = await events(service.url)
    assert [e[0] for e in recorded] == ["term.created", "term.created"]

    again = await run_import("terms", file, service.url, cwd=folder)

    assert again.status == 1, again
    assert (again.count("unchanged"), again.count("created"), again.count("updated")) == (2, 0, 0)
    assert await events(service.url) == recorded

    # Without a column the term keeps its own; an empty cell is no limit.
    write(
        file,
        "code,title,starts_on,ends_on,max_credits\n"
        "2027-spring,Spring term 2027,2027-01-11,2027-05-07,18\n"
        "2027-FALL,Fall 2027,2027-08-30,2027-12-17,\n",
    )
    changed = await run_import("terms", file, service.url, cwd=folder)

    assert changed.status == 0, changed
    assert changed.count("updated") == 2
    stored = await db.fetch(
        "select code, title, registration_opens_at is not null as opens, max_credits"
        " from terms order by id"
    )
    assert [tuple(r) for r in stored] == [
        ("2027-SPRING", "Spring term 2027", True, 18),
        ("2027-fall", "Fall 2027", False, None),
    ]


async def test_holds_by_id_or_email_and_a_rerun_places_no_second_hold(service, db, folder):
    students = write(
        folder / "students.csv",
        "name,email\nAda,ada@example.org\nAlan,alan@example.org\nGrace,grace@example.org\n",
    )
    assert (await run_import("students", students, service.url, cwd=folder)).status == 0
    ids = {r["email"]: r["id"] for r in await db.fetch("select id, email from students")}
    async with aiohttp.ClientSession() as session:
        # Grace has a hold already: the same reason in another letter case is hers.
        path = f"{service.url}/students/{ids['grace@example.org']}/holds"
        async with session.post(path, json={"reason": "Library fine"}) as response:
            assert response.status == 201
    file = write(
        folder / "holds.csv",
        "student_email,student_id,reason\n"
        "ADA@example.org,,Unpaid fees\n"
        f",{ids['alan@example.org']},Unpaid fees\n"
        "ada@example.org,,Missing documents\n"  # a second reason for Ada
        "grace@example.org,,library FINE \n"  # line 5: already held
        "nobody@example.org,,Unpaid fees\n"  # line 6
        ",999999,Unpaid fees\n"  # line 7: no such student
        "not-an-email,,Unpaid fees\n"  # line 8
        "ada@example.org,,\n"  # line 9: no reason
        ",x,Unpaid fees\n"  # line 10: not an id
        f"alan@example.org,{ids['alan@example.org']},Fees\n"  # line 11: both
        "ada@example.org,,unpaid fees\n",  # line 12: the same as line 2
    )

    run = await run_import("holds", file, service.url, "--batch-size", "4", cwd=folder)

    assert run.status == 1, run
    assert (run.count("placed"), run.count("already held")) == (3, 1)
    assert run.count("refused: student-not-found") == 2
    assert run.count("rejected as invalid") == 4
    assert run.count("refused: duplicate") == 1
    rejected = rejected_rows(folder / "holds.csv.rejected.csv")
    assert [(r["line"], r["outcome"], r["reason"]) for r in rejected] == [
        ("6", "student-not-found", "no student has email nobody@example.org"),
        ("7", "student-not-found", "no student has id 999999"),
        ("8", "invalid", f"student_{INVALID_EMAIL}"),
        ("9", "invalid", "reason is empty"),
        ("10", "invalid", "student_id: 'x' is not an id (a whole number from 1)"),
        ("11", "invalid", "student_id and student_email: give only one of them"),
        ("12", "duplicate", "duplicate of line 2"),
    ]
    held = await db.fetch(
        "select s.email, h.reason from student_holds h join students s on s.id = h.student_id"
        " order by h.id"
    )
    # Each student's rows in the file's order, the students side by side.
    assert sorted(tuple(r) for r in held) == [
        ("ada@example.org", "Missing documents"),
        ("ada@example.org", "Unpaid fees"),
        ("alan@example.org", "Unpaid fees"),
        ("grace@example.org", "Library fine"),
    ]
    recorded = await events(service.url)
    assert [e[0] for e in recorded].count("hold.placed") == 4

    again = await run_import("holds", file, service.url, "--batch-size", "4", cwd=folder)

    assert again.status == 1, again
    assert (again.count("placed"), again.count("already held")) == (0, 4)
    assert await db.fetchval("select count(*) from student_holds") == 4
    assert await events(service.url) == recorded


async def test_holds_of_many_students_go_a_few_at_a_time_and_each_once(service, db, folder):
    students = write(
        folder / "students.csv",
        "name,email\n" + "".join(f"S {i},s{i}@example.org\n" for i in range(60)),
    )
    assert (await run_import("students", students, service.url, cwd=folder)).status == 0
    # Two holds for each student, the second ones far from the first.
    file = write(
        folder / "holds.csv",
        "student_email,reason\n"
        + "".join(f"s{i}@example.org,Fees\n" for i in range(60))
        + "".join(f"S{i}@EXAMPLE.ORG,Library\n" for i in range(60)),
    )

    run = await run_import("holds", file, service.url, "--batch-size", "50", cwd=folder)
    again = await run_import("holds", file, service.url, "--batch-size", "7", cwd=folder)

    assert (run.status, run.count("placed")) == (0, 120), run
    assert (again.status, again.count("already held")) == (0, 120), again
    assert "nothing changed: every row was already in place" in again.stdout
    pairs = await db.fetch("select student_id, reason from student_holds")
    assert len({tuple(p) for p in pairs}) == len(pairs) == 120


async def test_a_row_over_the_tokens_stored_keys_is_retried_then_the_import_stops(
    database_url, tmp_path, folder
):
    # Each hold goes with an Idempotency-Key of its own; the service keeps two.
    async with serving(database_url, tmp_path, LIMIT_IDEMPOTENCY_KEYS="2") as server:
        async with aiohttp.ClientSession() as session:
            for n in range(3):
                body = {"name": f"S {n}", "email": f"s{n}@example.org"}
                async with session.post(f"{server.url}/students", json=body) as response:
                    assert response.status == 201
        file = write(
            folder / "holds.csv",
            "student_email,reason\n" + "".join(f"s{n}@example.org,Fees\n" for n in range(3)),
        )
        run = await run_import(
            "holds", file, server.url, "--batch-size", "1", "--retry-for", "1", cwd=folder
        )

    assert run.status == 2, run
    assert "the service answered 429 (" in run.stderr
    assert "retrying line 4 in " in run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith("the rows up to line 3 were applied or rejected (2 rows); run it again to finish")
    )
    assert run.stdout.startswith("INCOMPLETE: import holds")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("select count(*) from student_holds") == 2
    finally:
        await conn.close()


async def test_completions_and_a_rerun_changes_nothing(service, db, folder):
    students = write(folder / "students.csv", "name,email\nAda,ada@example.org\nAlan,a@x.org\n")
    assert (await run_import("students", students, service.url, cwd=folder)).status == 0
    alan = await db.fetchval("select id from students where email = 'a@x.org'")
    file = write(
        folder / "completions.csv",
        "student_email;student_id;code;completed_at\n"
        "ada@example.org;;MATH101;2026-06-30T12:00:00Z\n"
        "ada@example.org;;CS101;\n"  # empty: now
        f";{alan};math101;2026-01-15T09:00:00+01:00\n"
        "ada@example.org;;POE1;30/06/2026\n"  # line 5: not RFC 3339
        "ada@example.org;;HIST 1;\n"  # line 6: a code with a space
        "ADA@example.org;;Math101;\n",  # line 7: the same as line 2
    )

    run = await run_import("completions", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert run.count("added") == 3
    rejected = rejected_rows(folder / "completions.csv.rejected.csv")
    assert [(r["line"], r["outcome"]) for r in rejected] == [
        ("5", "invalid"),
        ("6", "invalid"),
        ("7", "duplicate"),
    ]
    assert rejected[0]["reason"].startswith("completed_at: must be an RFC 3339 timestamp")
    assert rejected[1]["reason"] == "code: must not contain white space"
    stored = await db.fetch(
        "select s.email, c.code, c.completed_at from student_completions c"
        " join students s on s.id = c.student_id order by s.email, c.code"
    )
    assert [(r["email"], r["code"]) for r in stored] == [
        ("a@x.org", "math101"),
        ("ada@example.org", "CS101"),
        ("ada@example.org", "MATH101"),
    ]
    assert stored[0]["completed_at"] == datetime(2026, 1, 15, 8, tzinfo=UTC)
    # An empty completed_at is the moment the service added it.
    assert datetime.now(UTC) - stored[1]["completed_at"] < timedelta(minutes=5)
    assert stored[2]["completed_at"] == datetime(2026, 6, 30, 12, tzinfo=UTC)
    recorded = await events(service.url)

    # A completion already there is left as it is, whatever the file says of its date.
    write(file, "student_email,code,completed_at\nada@example.org,math101,2020-01-01T00:00:00Z\n")
    again = await run_import("completions", file, service.url, cwd=folder)

    assert again.status == 0, again
    assert (again.count("already completed"), again.count("added")) == (1, 0)
    assert "nothing changed: every row was already in place" in again.stdout
    assert await db.fetchval("select count(*) from student_completions") == 3
    assert await events(service.url) == recorded


async def test_courses_of_terms_and_enrollments_that_name_their_term(service, db, folder):
    terms = write(
        folder / "terms.csv",
        "code,title,starts_on,ends_on\n"
        "2027-SPRING,Spring,2027-01-11,2027-05-07\n"
        "2027-FALL,Fall,2027-08-30,2027-12-17\n",
    )
    assert (await run_import("terms", terms, service.url, cwd=folder)).status == 0
    fall = await db.fetchval("select id from terms where code = '2027-FALL'")
    courses = write(
        folder / "courses.csv",
        "code;title;term_code;term_id;credits;meetings;prerequisites\n"
        "MATH101;Calculus;2027-spring;;4,5;Mon wed 09:00-10:00; \n"
        f'MATH101;Calculus;;{fall};4;"mon wed 09:00-10:00; fri 13:00-14:00";\n'
        "MATH201;Analysis;2027-SPRING;;3;tue 09:00-10:00;MATH101, CS101\n"
        "MATH101;Calculus without a term;;;;;\n"  # the same code, no term
        "POE1;Poetry;NOPE;;;;\n"  # line 6: no such term
        "POE2;Poetry;2027-SPRING;;;mon 10:00-09:00;\n"  # line 7: ends before it starts
        "POE3;Poetry;2027-SPRING;;;9-10;\n"  # line 8: no days
        f"POE4;Poetry;2027-SPRING;;4.55;;MATH101 {'X' * 33}\n"  # line 9
        "math101;Again;2027-Spring;;;;\n",  # line 10: the same course as line 2
    )

    run = await run_import("courses", courses, service.url, cwd=folder)

    assert run.status == 1, run
    assert run.count("created") == 4
    rejected = rejected_rows(folder / "courses.csv.rejected.csv")
    assert [(r["line"], r["outcome"], r["reason"]) for r in rejected] == [
        ("6", "term-not-found", "no term has code NOPE"),
        (
            "7",
            "invalid",
            "meetings, meeting 1, ends: must be later than starts, on the same day",
        ),
        (
            "8",
            "invalid",
            "meetings: meeting 1 '9-10' is not days and times "
            "as in mon wed 09:00-10:00; fri 13:00-14:00",
        ),
        ("9", "invalid", rejected[3]["reason"]),
        ("10", "duplicate", "duplicate of line 2"),
    ]
    assert rejected[3]["reason"].startswith("credits: ")
    assert "prerequisites, code 2: " in rejected[3]["reason"]
    stored = await db.fetch(
        "select c.code, t.code as term, c.credits, c.meetings, c.prerequisites"
        " from courses c left join terms t on t.id = c.term_id order by c.id"
    )
    assert [(r["code"], r["term"], float(r["credits"]), r["prerequisites"]) for r in stored] == [
        ("MATH101", "2027-SPRING", 4.5, []),
        ("MATH101", "2027-FALL", 4.0, []),
        ("MATH201", "2027-SPRING", 3.0, ["MATH101", "CS101"]),
        ("MATH101", None, 0.0, []),
    ]
    assert [json.loads(r["meetings"]) for r in stored[:2]] == [
        [{"days": ["mon", "wed"], "starts": "09:00", "ends": "10:00"}],
        [
            {"days": ["mon", "wed"], "starts": "09:00", "ends": "10:00"},
            {"days": ["fri"], "starts": "13:00", "ends": "14:00"},
        ],
    ]
    again = await run_import("courses", courses, service.url, cwd=folder)
    assert (again.count("unchanged"), again.count("created"), again.count("updated")) == (4, 0, 0)

    students = write(folder / "students.csv", "name,email\nAda,ada@example.org\n")
    assert (await run_import("students", students, service.url, cwd=folder)).status == 0
    enrollments = write(
        folder / "enrollments.csv",
        "email,code,term_code,term_id\n"
        "ada@example.org,math101,2027-SPRING,\n"
        f"ada@example.org,MATH101,,{fall}\n"
        "ada@example.org,MATH101,,\n"  # the course without a term
        "ada@example.org,MATH201,2027-SPRING,\n"  # line 5: MATH101 not completed
        "ada@example.org,MATH201,2027-FALL,\n"  # line 6: no MATH201 in the fall
        "ada@example.org,MATH101,2027-WINTER,\n",  # line 7
    )

    enrolled = await run_import("enrollments", enrollments, service.url, cwd=folder)

    assert enrolled.status == 1, enrolled
    assert enrolled.count("enrolled") == 3
    rejected = rejected_rows(folder / "enrollments.csv.rejected.csv")
    assert [(r["line"], r["outcome"]) for r in rejected] == [
        ("5", "prerequisite-missing"),
        ("6", "course-not-found"),
        ("7", "term-not-found"),
    ]
    assert "MATH101" in rejected[0]["reason"]
    assert rejected[1]["reason"] == "no course has code MATH201 in term 2027-FALL"
    assert rejected[2]["reason"] == "no term has code 2027-WINTER"
    pairs = await db.fetch(
        "select c.code, t.code as term from student_courses e join courses c on c.id = e.course_id"
        " left join terms t on t.id = c.term_id order by e.course_id"
    )
    assert [tuple(p) for p in pairs] == [
        ("MATH101", "2027-SPRING"),
        ("MATH101", "2027-FALL"),
        ("MATH101", None),
    ]


async def test_a_holds_file_without_a_student_column_exits_2_with_one_line(service, folder):
    file = write(folder / "holds.csv", "email,reason\nada@example.org,Fees\n")

    run = await run_import("holds", file, service.url, cwd=folder)

    assert run.status == 2, run
    assert only_line(run.stderr).endswith(
        "holds.csv: missing column(s) student_id or student_email: a holds file needs "
        "student_id or student_email,reason; its header is: email,reason"
    )


# -- files that cannot be used -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        # a binary file
        ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a CSV file"),
        # Latin-1 text, not UTF-8
        ("latin1.csv", "name,email\nJosé,jose@example.org\n".encode("latin-1"), "not UTF-8"),
        # UTF-8 up to a Latin-1 row further down: refused before any row is sent
        (
            "late.csv",
            b"name,email\nAda,ada@example.org\n" + "José,j@example.org\n".encode("latin-1"),
            "not UTF-8",
        ),
        # a text file that is not CSV of students at all
        ("notes.csv", b'{"name": "Ada"}\n', "missing column(s) name, email"),
        # one required column missing
        ("half.csv", b"name,mail\nAda,ada@example.org\n", "missing column(s) email"),
        # nothing in it
        ("empty.csv", b"", "the file is empty"),
        # a quote that never closes
        ("quote.csv", b'name,email\n"Ada,ada@example.org\n', "line 2: not CSV"),
    ],
)
async def test_a_file_that_is_not_a_usable_csv_exits_2_with_one_line(
    service, db, folder, name, content, says
):
    (folder / name).write_bytes(content)

    run = await run_import("students", folder / name, service.url, cwd=folder)

    assert run.status == 2, run
    assert says in only_line(run.stderr)
    assert run.stdout == ""
    assert await db.fetchval("select count(*) from students") == 0


async def test_a_missing_file_exits_2_with_one_line(folder):
    run = await run_import("courses", folder / "nope.csv", "http://127.0.0.1:9", cwd=folder)
    assert run.status == 2
    assert "nope.csv: cannot open: No such file or directory" in only_line(run.stderr)


async def test_an_unreachable_service_is_said_at_once_when_nothing_was_sent(folder):
    # The default --retry-for is 120 s: it is for a service that goes away
    # mid-import, not for a wrong URL or a service never started.
    file = write(folder / "students.csv", "name,email\nAda,ada@example.org\n")
    url = f"http://{HOST}:{free_port()}"
    started = time.monotonic()

    run = await run_import("students", file, url, cwd=folder, within=30)

    assert run.status == 2, run
    assert time.monotonic() - started < 10
    assert only_line(run.stderr) == (
        f"import stopped: cannot reach the service at {url}: cannot connect to "
        f"{url.removeprefix('http://')} (connection refused); no row was sent; "
        "start the service, or name it with --url (the default is http://127.0.0.1:8080)"
    )


async def test_a_missing_or_read_only_token_exits_2_with_one_line(database_url, tmp_path, folder):
    file = write(folder / "students.csv", "name,email\nAda,ada@example.org\n")
    async with serving(database_url, tmp_path, API_TOKENS=f"{WRITER},{READER}") as server:
        anonymous = await run_import("students", file, server.url, cwd=folder)
        reader = await run_import(
            "students",
            file,
            server.url,
            cwd=folder,
            env=importer_env(API_TOKEN=READER.split(":")[2]),
        )
        writer = await run_import(
            "students",
            file,
            server.url,
            cwd=folder,
            env=importer_env(API_TOKEN=WRITER.split(":")[2]),
        )
    # A re-run alone cannot help: each says what to do instead.
    assert anonymous.status == 2
    line = only_line(anonymous.stderr)
    assert "refused the request (401" in line
    assert line.endswith(
        "no row was sent; set API_TOKEN to a token the service accepts, with write access, "
        "then run it again"
    )
    assert reader.status == 2
    line = only_line(reader.stderr)
    assert "refused the request (403" in line
    assert line.endswith("set it to one with write access, then run it again")
    assert "run it again to finish" not in anonymous.stderr + reader.stderr
    assert writer.status == 0, writer
    assert writer.count("created") == 1


# -- long lines, and files that change while they are imported ---------------------------


# Runs the importer as its only child and reports its peak memory with its output.
PEAK_RSS = """
import json, resource, subprocess, sys
done = subprocess.run(
    [sys.executable, "-m", "service", "import", *sys.argv[1:]], capture_output=True, text=True
)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
print(json.dumps({"status": done.returncode, "stderr": done.stderr, "peak": peak}))
"""


@pytest.mark.parametrize("given", ["file", "stdin"])
async def test_a_200_mb_line_exits_2_before_anything_is_sent_in_bounded_memory(
    service, db, folder, given
):
    file = folder / "students.csv"
    with file.open("wb") as stream:
        stream.write(b"name,email\nAda,ada@example.org\n")
        for _ in range(200):  # line 3: a name of 200 MB, and no line break in it
            stream.write(b"x" * 1_000_000)
        stream.write(b",long@example.org\nGrace,grace@example.org\n")
    try:
        with file.open("rb") as stdin:
            wrapper = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PEAK_RSS,
                "students",
                str(file) if given == "file" else "-",
                "--url",
                service.url,
                cwd=folder,
                env=importer_env(),
                stdin=stdin if given == "stdin" else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(wrapper.communicate(), timeout=120)
    finally:
        file.unlink()
    run = json.loads(out)

    assert run["status"] == 2, run
    assert only_line(run["stderr"]).endswith(
        "students.csv: line 3: the row is longer than 1 MiB, the most the importer reads as one row"
        if given == "file"
        else "-: line 3: the row is longer than 1 MiB, the most the importer reads as one row"
    )
    # The line is refused after 1 MiB of it: it is never held whole (the
    # importer held 440 MiB of it when it was).
    assert run["peak"] < 150 * 2**20, f"peak RSS {run['peak'] / 2**20:.0f} MiB"
    assert await db.fetchval("select count(*) from students") == 0


async def test_a_quote_that_runs_on_for_more_than_1_mib_exits_2_before_anything_is_sent(
    service, db, folder
):
    file = write(
        folder / "students.csv",
        # line 3 (28 bytes) opens a quote; 100-byte lines follow, the
        # 10,486th of them takes the row past 1 MiB.
        "name,email\nAda,ada@example.org\n"
        '"Never closed,x@example.org\n' + ("x" * 99 + "\n") * 20_000,
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 2, run
    assert only_line(run.stderr).endswith(
        "line 3: the row is longer than 1 MiB, the most the importer reads as one row "
        "(it runs on past line 10488: a quote never closed?)"
    )
    assert await db.fetchval("select count(*) from students") == 0


async def test_a_value_too_long_for_the_service_is_its_rows_error(service, db, folder):
    # Longer than csv's default field limit (128 KiB), shorter than a row may be.
    huge = "N" * 300_000
    file = write(
        folder / "students.csv",
        "name,email,Notes\n"
        f"{huge},huge@example.org,\n"
        f"{'N' * 201},long@example.org,\n"
        f"Ada,ada@example.org,{'n' * 500_000}\n",  # a column not sent may be long
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert (run.count("created"), run.count("rejected as invalid")) == (1, 2)
    rows = rejected_rows(folder / "students.csv.rejected.csv")
    assert [(r["name"], r["line"], r["reason"]) for r in rows] == [
        (huge, "2", "name: 300000 characters, more than the service takes"),
        ("N" * 201, "3", "name: must be 1 to 200 characters long"),
    ]
    assert await db.fetchval("select email from students") == "ada@example.org"


@pytest.mark.parametrize("change", ["appended", "cut"])
async def test_a_file_changed_while_it_is_imported_is_imported_as_it_was_checked(
    service, db, database_url, folder, change
):
    file = many_students(folder)
    locker = await asyncpg.connect(database_url)
    try:
        async with locker.transaction():
            # Every batch waits on this lock: once the first one waits, the
            # file has been read and checked, and the import has begun.
            await locker.execute("lock table students in access exclusive mode")
            importer = asyncio.create_task(
                run_import("students", file, service.url, "--batch-size", "20", cwd=folder)
            )

            async def first_batch_waits() -> bool:
                return await locker.fetchval(
                    "select count(*) > 0 from pg_locks"
                    " where relation = 'students'::regclass and not granted"
                )

            await eventually(first_batch_waits, 30, "the first batch is sent")
            if change == "appended":
                with file.open("a", encoding="utf-8") as stream:
                    stream.writelines(f"Late {i},late{i}@example.org\n" for i in range(1000))
                    stream.write('"a quote never closed,bad@example.org\n')
            else:
                os.truncate(file, len("name,email\n"))
    finally:
        await locker.close()
    run = await importer

    assert run.status == 0, run
    assert run.count("created") == STUDENTS
    emails = await db.fetch("select email from students order by id")
    assert [r["email"] for r in emails] == [f"s{i}@example.org" for i in range(STUDENTS)]


# -- standard input and progress -----------------------------------------------------------


async def test_standard_input_with_its_rejected_file_in_the_current_folder(service, folder):
    run = await run_import(
        "students",
        "-",
        service.url,
        cwd=folder,
        stdin=b"name,email\nAda,ada@example.org\nBad,bad\n",
    )
    assert run.status == 1, run
    assert "import students from standard input:" in run.stdout
    [row] = rejected_rows(folder / "students-stdin.rejected.csv")
    assert (row["email"], row["line"]) == ("bad", "3")


async def test_progress_lines_on_stderr_when_it_is_not_a_terminal(service, folder):
    file = write(
        folder / "students.csv",
        "name,email\n" + "".join(f"S {i},s{i}@example.org\n" for i in range(40)),
    )
    run = await run_import(
        "students", file, service.url, "--batch-size", "10", "--progress-interval", "0", cwd=folder
    )
    assert run.status == 0, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 4, run.stderr
    for done, line in zip([10, 20, 30, 40], lines, strict=True):
        assert re.fullmatch(
            rf"students \(students\.csv\): {done}/40 rows \({done * 100 // 40}%\), \d+ rows/s, "
            r"\d\d:\d\d elapsed, ETA \d\d:\d\d",
            line,
        ), line
    assert "\r" not in run.stderr

    # Standard input is read to its end and checked before the first row is
    # sent, like a file: its total is known too.
    piped = await run_import(
        "students",
        "-",
        service.url,
        "--progress-interval",
        "0",
        cwd=folder,
        stdin=file.read_bytes(),
    )
    assert re.fullmatch(
        r"students \(stdin\): 40/40 rows \(100%\), \d+ rows/s, \d\d:\d\d elapsed, ETA \d\d:\d\d",
        piped.stderr.strip(),
    ), piped.stderr


async def test_a_progress_bar_on_a_terminal(service, folder):
    file = write(
        folder / "students.csv",
        "name,email\n" + "".join(f"S {i},s{i}@example.org\n" for i in range(20)),
    )
    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0x0; a registrar's is not.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "import",
        "students",
        str(file),
        "--url",
        service.url,
        "--batch-size",
        "5",
        cwd=folder,
        env=importer_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)

    def read_screen() -> bytes:
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                return screen
            if not chunk:
                return screen
            screen += chunk

    reading = asyncio.create_task(asyncio.to_thread(read_screen))
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    screen = await asyncio.wait_for(reading, timeout=10)
    os.close(leader)
    assert process.returncode == 0, out
    text = screen.decode()
    assert "\r" in text  # the bar redraws in place
    assert re.search(r"students \(students\.csv\): 100%.*20/20 \[.*rows/s\]", text), text


# -- the service goes away in the middle ---------------------------------------------------


STUDENTS = 3000


def many_students(folder: Path) -> Path:
    return write(
        folder / "students.csv",
        "name,email\n" + "".join(f"Student {i},s{i}@example.org\n" for i in range(STUDENTS)),
    )


async def assert_each_student_once(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        emails = await conn.fetchval("select count(distinct lower(email)) from students")
        students = await conn.fetchval("select count(*) from students")
        created = await conn.fetch(
            "select student_id, count(*) as n from events"
            " where type = 'student.created' group by student_id"
        )
        others = await conn.fetchval("select count(*) from events where type <> 'student.created'")
    finally:
        await conn.close()
    assert students == emails == STUDENTS
    assert len(created) == STUDENTS and {r["n"] for r in created} == {1}
    assert others == 0


async def students_stored(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("select count(*) from students")
    finally:
        await conn.close()


async def test_a_service_stopped_mid_import_and_restarted_the_import_completes(
    database_url, tmp_path, folder
):
    file = many_students(folder)
    port = free_port()
    log = tmp_path / "server.log"
    url = f"http://{HOST}:{port}"
    async with serving(database_url, tmp_path, port=port, log=log) as server:
        importer = asyncio.create_task(
            run_import("students", file, url, "--batch-size", "20", "--retry-for", "60", cwd=folder)
        )

        async def some_done() -> bool:
            return await students_stored(database_url) >= 300

        await eventually(some_done, 30, "the import has begun")
        await _kill_tree(server.process)  # SIGKILL: whatever was in flight gets no answer
    at_stop = await students_stored(database_url)
    assert at_stop < STUDENTS
    await asyncio.sleep(2)
    async with serving(database_url, tmp_path, port=port, log=log):
        run = await importer

    assert run.status == 0, run
    assert "retrying batch" in run.stderr
    assert run.count("applied") == STUDENTS
    # A batch applied whose answer was lost is answered again from what was
    # stored under its Idempotency-Key (or found unchanged): never applied twice.
    assert run.count("created") + run.count("unchanged") == STUDENTS
    await assert_each_student_once(database_url)


async def test_a_service_away_longer_than_retry_for_exits_2_and_the_rerun_completes(
    database_url, tmp_path, folder
):
    file = many_students(folder)
    port = free_port()
    log = tmp_path / "server.log"
    url = f"http://{HOST}:{port}"
    async with serving(database_url, tmp_path, port=port, log=log) as server:
        importer = asyncio.create_task(
            run_import("students", file, url, "--batch-size", "20", "--retry-for", "1", cwd=folder)
        )

        async def some_done() -> bool:
            return await students_stored(database_url) >= 300

        await eventually(some_done, 30, "the import has begun")
        server.process.send_signal(signal.SIGKILL)
        stopped = await importer

    assert stopped.status == 2, stopped
    last = stopped.stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        rf"import stopped: the service at {url} could not be used for 1 s \(.*\); "
        r"the rows up to line (\d+) were applied or rejected \((\d+) rows\); run it again to finish",
        last,
    )
    assert match, last
    assert int(match.group(2)) == int(match.group(1)) - 1 < STUDENTS
    assert stopped.stdout.startswith("INCOMPLETE: import students")

    async with serving(database_url, tmp_path, port=port, log=log):
        rerun = await run_import("students", file, url, cwd=folder)

    assert rerun.status == 0, rerun
    assert rerun.count("created") + rerun.count("unchanged") == STUDENTS
    assert rerun.count("unchanged") >= int(match.group(2))
    await assert_each_student_once(database_url)


async def test_a_database_busy_mid_import_is_503_and_the_importer_waits_retry_after(
    database_url, tmp_path, folder
):
    file = many_students(folder)
    async with serving(database_url, tmp_path, DB_STATEMENT_TIMEOUT="1") as server:
        importer = asyncio.create_task(
            run_import(
                "students", file, server.url, "--batch-size", "20", "--retry-for", "60", cwd=folder
            )
        )

        async def some_done() -> bool:
            return await students_stored(database_url) >= 300

        await eventually(some_done, 30, "the import has begun")
        # Every write to students waits on this lock until its statement times
        # out: the service answers 503 busy with Retry-After: 1.
        locker = await asyncpg.connect(database_url)
        try:
            async with locker.transaction():
                await locker.execute("lock table students in access exclusive mode")
                await asyncio.sleep(4)
        finally:
            await locker.close()
        run = await importer

    assert run.status == 0, run
    retries = re.findall(
        r"the service answered 503 \((.*)\); retrying batch \d+ in ([\d.]+) s", run.stderr
    )
    assert retries, run.stderr
    assert "the database is busy" in retries[0][0]
    # Retry-After: 1, give or take the jitter that keeps importers from retrying in step.
    assert all(0.8 <= float(delay) <= 1.2 for _, delay in retries), retries
    assert run.count("created") + run.count("unchanged") == STUDENTS
    await assert_each_student_once(database_url)


# -- sourced ids ----------------------------------------------------------------------------


async def test_sourced_id_columns_match_records_and_a_rerun_changes_nothing(service, db, folder):
    # A school's export: every record named by its SIS id; a student whose
    # email changed is the same student (their sourced_id), and an
    # enrollment names its student and course by theirs.
    terms = write(
        folder / "terms.csv",
        "sourced_id,code,title,starts_on,ends_on\nt-1,2027-SPRING,Spring,2027-01-11,2027-05-07\n",
    )
    students = write(
        folder / "students.csv",
        "sourced_id,name,email\ns-1,Ada,ada@example.org\ns-2,Alan,alan@example.org\n"
        ",Grace,grace@example.org\n",
    )
    courses = write(
        folder / "courses.csv",
        "sourced_id,code,title,term_code\nc-1,MATH101,Calculus,2027-SPRING\n",
    )
    enrollments = write(
        folder / "enrollments.csv",
        "sourced_id,student_sourced_id,email,course_sourced_id,code,term_code\n"
        "e-1,s-1,,c-1,,\n"
        "e-2,,alan@example.org,,MATH101,2027-SPRING\n"
        ",s-9,,c-1,,\n",
    )
    files = [("terms", terms), ("students", students), ("courses", courses)]
    files.append(("enrollments", enrollments))

    first = [await run_import(kind, file, service.url, cwd=folder) for kind, file in files]

    assert [r.status for r in first] == [0, 0, 0, 1], first
    assert first[3].count("enrolled") == 2
    assert [r["reason"] for r in rejected_rows(folder / "enrollments.csv.rejected.csv")] == [
        "no student has sourced_id s-9"
    ]
    rows = await db.fetch("select email, sourced_id from students order by id")
    assert [tuple(r) for r in rows[:2]] == [("ada@example.org", "s-1"), ("alan@example.org", "s-2")]
    assert len(rows[2]["sourced_id"]) == 36  # a UUID: the row gave none
    rows = await db.fetch(
        "select s.sourced_id as student, c.sourced_id as course, e.sourced_id"
        " from student_courses e join students s on s.id = e.student_id"
        " join courses c on c.id = e.course_id order by e.student_id"
    )
    assert [tuple(r) for r in rows] == [("s-1", "c-1", "e-1"), ("s-2", "c-1", "e-2")]
    stored = await db.fetchval("select count(*) from events")

    again = [await run_import(kind, file, service.url, cwd=folder) for kind, file in files[:3]]
    assert [r.status for r in again] == [0, 0, 0], again
    assert all("nothing changed" in r.stdout for r in again)
    assert await db.fetchval("select count(*) from events") == stored

    # Ada's new email: the same student, updated, not a second one.
    write(students, "sourced_id,name,email\ns-1,Ada King,ada.king@example.org\n")
    run = await run_import("students", students, service.url, cwd=folder)
    assert (run.status, run.count("updated")) == (0, 1), run
    assert await db.fetchval("select email from students where sourced_id = 's-1'") == (
        "ada.king@example.org"
    )
    assert await db.fetchval("select count(*) from students") == 3


async def test_a_sourced_id_repeated_is_that_rows_error_and_a_taken_email_is_refused(
    service, db, folder
):
    file = write(
        folder / "students.csv",
        "sourced_id,name,email\n"
        "s-1,Ada,ada@example.org\n"
        "s-1,Ada King,king@example.org\n"  # the same student again: not sent
        "S-1,Bob,bob@example.org\n"  # another sourced_id: letter case counts
        "s-3,Eve,ADA@example.org\n",  # Ada's email under another sourced_id
    )

    run = await run_import("students", file, service.url, cwd=folder)

    assert run.status == 1, run
    assert [
        (r["line"], r["outcome"], r["reason"])
        for r in rejected_rows(folder / "students.csv.rejected.csv")
    ] == [
        ("3", "duplicate", "duplicate of line 2"),
        ("5", "email-taken", "a student with email ADA@example.org already exists"),
    ]
    rows = await db.fetch("select name, sourced_id from students order by id")
    assert [tuple(r) for r in rows] == [("Ada", "s-1"), ("Bob", "S-1")]
