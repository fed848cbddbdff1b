"""`python -m service import oneroster BUNDLE`: a OneRoster 1.2 bundle, as a school's SIS exports it.

Bundles are written by tests/oneroster_bundle.py, as a folder or a zip. The
importer runs as its own process, as a registrar would run it, against the
real app on a real socket and the test's own database; the tests check the
summary, the exit status, the rejected files, the database and the events.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from enrollment_import.bundle import Bundle, check, read_manifest
from enrollment_import.oneroster import APPLY_ORDER, COUNTS, entries, term_code
from enrollment_import.prune import Limit, limit
from service.embedded import free_port

from .oneroster_bundle import (
    course,
    enrollment,
    klass,
    org,
    role,
    session,
    user,
    write_bundle,
)
from .test_import import importer_env, only_line


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str

    def counts(self, file: str) -> dict[str, int]:
        """The summary's row of `file`: read, created, updated, ... rejected."""
        match = re.search(rf"^  {re.escape(file)}\s+(bulk|delta)\s+([\d ]+)$", self.stdout, re.M)
        assert match, self.stdout
        return dict(zip(COUNTS, map(int, match.group(2).split()), strict=True))


async def import_bundle(
    bundle: Path, url: str, *options: str, cwd: Path | None = None, within: float = 120
) -> Run:
    """`python -m service import oneroster BUNDLE --url URL OPTIONS`, as its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "import",
        "oneroster",
        str(bundle),
        "--url",
        url,
        *options,
        cwd=cwd or bundle.parent,
        env=importer_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=within)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the import did not end within {within}s")
    return Run(process.returncode or 0, out.decode(), err.decode())


def nowhere() -> str:
    """A URL nobody answers at: a bundle refused there was refused before anything was sent."""
    return f"http://127.0.0.1:{free_port()}"


# -- bundles that cannot be used -----------------------------------------------------------

USERS = {"users.csv": [user("u1", "Ada", "Lovelace", "ada@example.org")], "roles.csv": [role("u1")]}
USERS_HEADER = ["sourcedId", "status", "dateLastModified", "givenName", "familyName"]


@pytest.mark.parametrize(
    ("bundle", "said"),
    [
        # A folder without manifest.csv is no bundle.
        (
            lambda p: (p.mkdir(), (p / "users.csv").write_text("sourcedId\n"), p)[-1],
            "not a OneRoster bundle: no manifest.csv in it",
        ),
        # A file that is neither a zip nor a folder.
        (
            lambda p: (p.write_text("sourcedId\n"), p)[-1],
            "neither a folder nor a zip file",
        ),
        # OneRoster 1.1 is another binding.
        (
            lambda p: write_bundle(p, USERS, manifest={"oneroster.version": "1.1"}),
            "manifest.csv says oneroster.version 1.1: the importer reads OneRoster 1.2 bundles",
        ),
        (
            lambda p: write_bundle(p, USERS, manifest={"manifest.version": None}),
            "manifest.csv has no manifest.version",
        ),
        (
            lambda p: write_bundle(p, USERS, manifest={"file.users": "full"}),
            "manifest.csv: file.users is 'full', not one of bulk, delta, absent",
        ),
        # The manifest promises a file the bundle does not have.
        (
            lambda p: write_bundle(p, USERS, modes={"enrollments.csv": "delta"}),
            "manifest.csv marks enrollments.csv delta, and the bundle has no enrollments.csv",
        ),
        # A required column left out, and one spelled in another letter case.
        (
            lambda p: write_bundle(p, USERS, headers={"users.csv": USERS_HEADER}),
            "users.csv: missing column(s) email; a users.csv file needs "
            "sourcedId,status,dateLastModified,givenName,familyName,email",
        ),
        (
            lambda p: write_bundle(
                p, USERS, headers={"users.csv": [*USERS_HEADER, "EMAIL"]}, zip=True
            ),
            "users.csv: missing column(s) email (EMAIL should be email: the binding's spelling)",
        ),
        (
            lambda p: write_bundle(
                p, USERS, headers={"users.csv": [*USERS_HEADER, "email", "email"]}
            ),
            "users.csv: column(s) named twice: email",
        ),
        # A quote that never closes, at the end of the last file checked.
        (
            lambda p: write_bundle(
                p,
                USERS,
                modes={"enrollments.csv": "bulk"},
                raw={
                    "enrollments.csv": "sourcedId,status,dateLastModified,classSourcedId,"
                    'userSourcedId,role\ne1,,,c1,u1,student\ne2,,,"c1,u1,student\n'
                },
            ),
            "enrollments.csv: line 3: not CSV: unexpected end of data",
        ),
    ],
)
async def test_a_bundle_that_cannot_be_used_exits_2_with_one_line_before_anything_is_sent(
    tmp_path, bundle, said
):
    path = bundle(tmp_path / "roster")

    run = await import_bundle(path, nowhere())

    assert run.status == 2, run
    line = only_line(run.stderr)
    assert line.startswith("import: "), line
    assert said in line
    assert "cannot reach" not in line
    assert run.stdout == ""


async def test_a_missing_bundle_and_standard_input_exit_2(tmp_path):
    missing = await import_bundle(tmp_path / "nothing.zip", nowhere())
    stdin = await import_bundle(Path("-"), nowhere(), cwd=tmp_path)

    assert (missing.status, stdin.status) == (2, 2)
    assert "nothing.zip: no such file or folder" in only_line(missing.stderr)
    assert "not standard input" in only_line(stdin.stderr)


async def test_prune_options_are_for_bundles_only(tmp_path):
    file = tmp_path / "students.csv"
    file.write_text("name,email\nAda,ada@example.org\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "import", "students", str(file), "--prune",
        env=importer_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()

    assert process.returncode == 2
    assert (
        only_line(err.decode()) == "import: --prune and --max-prune are for oneroster bundles only"
    )


# -- reading a bundle: what each row becomes -----------------------------------------------


def mapped(path: Path) -> dict[str, list[tuple[int, str, str, dict | None]]]:
    """Each file's rows as the import decides them, before asking the service anything:
    (line, outcome or "send", reason, item)."""
    import orjson

    found: dict[str, list[tuple[int, str, str, dict | None]]] = {}
    copies = path.parent / "copies"
    copies.mkdir()
    with Bundle(path) as bundle:
        roster = check(bundle, read_manifest(bundle), copies, prune=False)
        for name in APPLY_ORDER:
            if name in roster.sources:
                found[name] = [
                    (
                        e.line,
                        e.outcome or ("delete" if e.delete else "send"),
                        e.reason,
                        orjson.loads(e.item) if e.item else None,
                    )
                    for deleting in (True, False)
                    for e in entries(roster.sources[name], roster, deleting)
                ]
    return found


LONG_ID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


def a_school() -> dict[str, list[dict]]:
    return {
        "academicSessions.csv": [
            session("y2027", "2026-2027", "schoolYear", "2026-09-01", "2027-06-30"),
            session("t1", "Fall 2026", "term", parent="y2027"),
            session(LONG_ID, "Spring 2027", "semester", "2027-01-11", "2027-05-07"),
            session("gp1", "Quarter 1", "gradingPeriod", parent="t1"),
        ],
        "orgs.csv": [org()],
        "courses.csv": [course("k1", "MATH101"), course("k2", "POE201")],
        "classes.csv": [
            # The first of its sessions that is a term: t1.
            klass("c1", "MATH101-1", "Calculus I", course="k1", terms=["y2027", "t1"]),
            # No classCode: its course's code.
            klass("c2", "", "Poetry", course="k2", terms=[LONG_ID]),
            klass("c3", "", "Nothing", course="k9", terms=["t1"]),
            klass("c4", "ART1", "Art", course="k1", terms=[]),
        ],
        "users.csv": [
            user("u1", "Ada", "Lovelace", "ada@example.org", **{"metadata.house": "Blue"}),
            user("u2", "Grace", "", "grace@example.org"),
            user("u3", "No", "Email", ""),
            user("t9", "Theo", "Teacher", "theo@example.org"),
            user("u1", "Ada", "Again", "ada2@example.org"),
        ],
        "roles.csv": [
            role("u1"),
            role("u2"),
            role("u3"),
            role("t9", "teacher"),
            role("t9", "aide"),
        ],
        "enrollments.csv": [
            enrollment("e1", "u1", "c1"),
            enrollment("e2", "t9", "c1", "teacher"),
            enrollment("e3", "u2", "c2", ""),
            enrollment("e4", "", "c2"),
        ],
    }


@pytest.mark.parametrize("form", ["folder", "zip"])
async def test_each_row_maps_to_an_item_a_skip_or_its_reason(tmp_path, form):
    # A zip with its files in a folder, BOMs, and extension columns on the right.
    path = write_bundle(
        tmp_path / ("roster.zip" if form == "zip" else "roster"),
        a_school(),
        zip=form == "zip",
        folder="export-2026-12-01",
        bom=True,
    )

    rows = mapped(path)

    assert rows["academicSessions.csv"] == [
        (2, "skipped", "schoolYear sessions", None),
        (3, "send", "", {
            "sourced_id": "t1", "code": "t1", "title": "Fall 2026",
            "starts_on": "2026-09-01", "ends_on": "2026-12-20",
        }),
        (4, "send", "", {
            "sourced_id": LONG_ID, "code": term_code(LONG_ID), "title": "Spring 2027",
            "starts_on": "2027-01-11", "ends_on": "2027-05-07",
        }),
        (5, "skipped", "gradingPeriod sessions", None),
    ]  # fmt: skip
    assert rows["orgs.csv"] == [(2, "skipped", "orgs (the school is the service's one org)", None)]
    assert [r[:2] for r in rows["courses.csv"]] == [(2, "used"), (3, "used")]
    assert rows["classes.csv"] == [
        (2, "send", "", {"sourced_id": "c1", "code": "MATH101-1", "title": "Calculus I"}),
        (3, "send", "", {"sourced_id": "c2", "code": "POE201", "title": "Poetry"}),
        (4, "invalid", "classCode is empty, and courses.csv gives no courseCode for course k9", None),
        (5, "invalid", "termSourcedIds is empty", None),
    ]  # fmt: skip
    assert rows["users.csv"] == [
        (2, "send", "", {"sourced_id": "u1", "name": "Ada Lovelace", "email": "ada@example.org"}),
        (3, "send", "", {"sourced_id": "u2", "name": "Grace", "email": "grace@example.org"}),
        (4, "invalid", "email is empty (the service knows a student by email)", None),
        (5, "skipped", "users without the student role", None),
        (6, "duplicate", "duplicate of line 2", None),
    ]  # fmt: skip
    assert [r[:3] for r in rows["roles.csv"]] == [
        (2, "used", ""),
        (3, "used", ""),
        (4, "used", ""),
        (5, "skipped", "teacher roles"),
        (6, "skipped", "aide roles"),
    ]
    assert rows["enrollments.csv"] == [
        (2, "send", "", {"sourced_id": "e1", "student_sourced_id": "u1", "course_sourced_id": "c1"}),
        (3, "skipped", "teacher enrollments", None),
        (4, "invalid", "role is empty", None),
        (5, "invalid", "userSourcedId is empty", None),
    ]  # fmt: skip


async def test_a_delta_files_tobedeleted_rows_are_deletions_and_a_bulk_files_are_skipped(
    tmp_path,
):
    path = write_bundle(
        tmp_path / "delta",
        {
            "academicSessions.csv": [
                session("t1", "Fall", status="tobedeleted"),
                session("y1", "Year", "schoolYear", status="tobedeleted"),
                session("t2", "Spring", status="active"),
            ],
            "classes.csv": [klass("c1", "", course="k1", terms=[], status="tobedeleted")],
            # No roles.csv: whether a user is a student is the service's to say.
            "users.csv": [
                user("u1", "", "", "", status="tobedeleted"),
                user("u2", "Grace", "Hopper", "grace@example.org", status="active"),
                user("u3", "Alan", "Turing", "alan@example.org", status="inactive"),
            ],
            "enrollments.csv": [
                enrollment("e1", "u1", "c1", status="tobedeleted"),
                enrollment("e2", "u2", "c1", "teacher", status="tobedeleted"),
                enrollment("e3", "", "c1", status="tobedeleted"),
            ],
            "orgs.csv": [org(status="tobedeleted")],
        },
        modes={
            "academicSessions.csv": "delta",
            "classes.csv": "delta",
            "users.csv": "delta",
            "enrollments.csv": "delta",
            "orgs.csv": "bulk",
        },
    )

    rows = mapped(path)

    # The deletions come first, whatever their line.
    assert [r[:3] for r in rows["academicSessions.csv"]] == [
        (2, "delete", ""),
        (3, "skipped", "schoolYear sessions"),
        (4, "send", ""),
    ]
    assert [r[:2] for r in rows["classes.csv"]] == [(2, "delete")]
    assert [r[:3] for r in rows["users.csv"]] == [
        (2, "delete", ""),
        (3, "send", ""),
        (4, "invalid", "status: 'inactive' is not active or tobedeleted"),
    ]
    assert rows["enrollments.csv"] == [
        (2, "send", "", {"action": "drop", "student_sourced_id": "u1", "course_sourced_id": "c1"}),
        (3, "skipped", "teacher enrollments", None),
        (4, "invalid", "userSourcedId is empty", None),
    ]  # fmt: skip
    assert rows["orgs.csv"] == [
        (2, "skipped", "tobedeleted rows of a bulk file (--prune deletes what it leaves out)", None)
    ]


def test_a_terms_code_is_its_sourced_id_or_made_of_it_when_longer_than_32():
    assert term_code("2027-SPRING") == "2027-SPRING"
    assert term_code("x" * 32) == "x" * 32
    made = term_code(LONG_ID)
    assert len(made) == 32
    assert made.startswith(LONG_ID[:23] + "~")
    assert made == term_code(LONG_ID)  # the same on every import
    assert made != term_code(LONG_ID[:-1] + "7")


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("10%", {0: 0, 9: 0, 10: 1, 1000: 100}),  # a share of what the service holds
        ("0%", {1000: 0}),
        ("100%", {7: 7}),
        ("12.5%", {80: 10}),
        ("25", {0: 25, 1000: 25}),  # a number of records
        ("0", {1000: 0}),
    ],
)
def test_max_prune_is_a_share_or_a_number(text, allowed):
    parsed = limit(text)
    assert {total: parsed.allowed(total) for total in allowed} == allowed
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["", "ten", "-1", "101%", "2.5", "10 %%"])
def test_max_prune_refuses_what_is_neither(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        limit(text)
    assert Limit(percent=10.0).allowed(10) == 1
