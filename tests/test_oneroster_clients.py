"""A OneRoster client nobody here wrote reads what a bundle import put in.

timeback-oneroster 0.4.0, installed from PyPI into a venv of its own
(tests/oneroster/clients.py: Python >= 3.12, the lock checked by hash),
reads a running instance after `python -m service import oneroster` of a
generated bundle, as an LMS would: a token by client credentials, then every
collection with the client's own paging at seven records a page, the nested
collections of every parent, one record of each collection by sourcedId,
and an unknown sourcedId. The test compares what the client parsed record for
record with the bundle: every student, class, term and enrollment, with its
mapped fields, nothing missing and nothing extra. Then a student is deleted
and a delta read (`dateLastModified>` the time before) sees them, and their
enrollments, as `tobedeleted`.

Without a Python >= 3.12 the tests are skipped saying why; CI sets
REQUIRE_ONEROSTER_CLIENT=1 and they fail instead (.ci/run).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .oneroster import clients
from .oneroster.instance import REGISTRAR, SCHOOL_NAME, Roster, running
from .oneroster_bundle import (
    SCHOOL,
    enrollment,
    klass,
    org,
    role,
    session,
    user,
    write_bundle,
)

pytestmark = pytest.mark.slow

PAGE = 7  # records a page: every collection below takes several

# Names a client must carry through intact: an apostrophe (doubled in a
# filter), letters outside ASCII, given and family names of several words.
NAMES = [
    ("Ada", "Lovelace"),
    ("Siobhán", "O'Brien"),
    ("Zoë", "Müller"),
    ("Mary Ann", "Smith"),
    ("Jean", "de la Cruz"),
    ("Nguyễn", "Thị Minh"),
]
STUDENTS = 38
TERMS = {
    # sourcedId: (title, type in the bundle, start, end)
    "term-fall": ("Fall 2026", "term", "2026-09-01", "2026-12-18"),
    "term-spring": ("Spring 2027", "semester", "2027-01-11", "2027-05-28"),
}
CLASSES = {
    # sourcedId: (classCode, title, term)
    f"class-{n}": (f"C{n:02d}-{term[5:9].upper()}", f"Class {n}", term)
    for n, term in enumerate(["term-fall"] * 6 + ["term-spring"] * 5)
}


def bundle_rows() -> dict[str, list[dict[str, Any]]]:
    """A school's bulk bundle: what the service keeps, and what it skips beside it.

    Kept: 38 students, 11 classes over a term and a semester, each student in
    three classes. Skipped: the school year and a grading period, two
    teachers with their roles and enrollments, the courses (kept only as the
    codes of their classes).
    """
    students = [
        user(
            f"student-{s}",
            *(NAMES[s] if s < len(NAMES) else (f"Given{s}", f"Family{s}")),
            f"student{s}@example.org",
        )
        for s in range(STUDENTS)
    ]
    teachers = [user(f"teacher-{t}", f"Teacher{t}", "Staff", f"t{t}@example.org") for t in (1, 2)]
    classes = list(CLASSES)
    return {
        "academicSessions.csv": [
            session("year-2027", "2026-2027", "schoolYear", "2026-09-01", "2027-06-30"),
            *(
                session(s, title, kind, start, end, parent="year-2027")
                for s, (title, kind, start, end) in TERMS.items()
            ),
            session(
                "gp-1", "Fall 1", "gradingPeriod", "2026-09-01", "2026-10-30", parent="term-fall"
            ),
        ],
        "orgs.csv": [org()],
        "courses.csv": [
            {"sourcedId": f"course-{n}", "title": f"Course {n}", "courseCode": code[:3]}
            for n, (code, _, _) in enumerate(CLASSES.values())
        ],
        "classes.csv": [
            klass(c, code, title, course=f"course-{n}", terms=[term])
            for n, (c, (code, title, term)) in enumerate(CLASSES.items())
        ],
        "users.csv": students + teachers,
        "roles.csv": [role(u["sourcedId"]) for u in students]
        + [role(t["sourcedId"], "teacher") for t in teachers],
        "enrollments.csv": [
            enrollment(f"enrollment-{s}-{k}", f"student-{s}", classes[(s * 3 + k) % len(classes)])
            for s in range(STUDENTS)
            for k in range(3)
        ]
        + [
            enrollment(f"teaching-{t}", f"teacher-{t}", classes[t], "teacher", primary="true")
            for t in (1, 2)
        ],
    }


@pytest.fixture(scope="module")
def client_python() -> Path:
    try:
        return clients.client_python()
    except clients.Unavailable as why:
        clients.unavailable(str(why))
        raise


@pytest.fixture
def roster(database_url: str, tmp_path: Path) -> Iterator[Roster]:
    """An instance with the bundle imported through the real importer."""
    rows = bundle_rows()
    with running(database_url) as instance:
        instance.import_bundle(write_bundle(tmp_path / "roster.zip", rows, zip=True))
        yield instance


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {r["sourcedId"]: r for r in records}
    assert len(found) == len(records), "a sourcedId came twice"
    return found


def offsets(requests_seen: list[str], path: str) -> list[int]:
    """The offsets of the GETs of `path` the client sent, in order."""
    found = []
    for line in requests_seen:
        method, url = line.split(" ", 1)
        parts = urlsplit(url)
        if method == "GET" and parts.path.endswith(path):
            query = parse_qs(parts.query)
            assert query["limit"] == [str(PAGE)], url
            found.append(int(query["offset"][0]))
    return found


def as_served(given: str, family: str) -> tuple[str, str]:
    """The names a student imported with `given` and `family` is served with.

    The service keeps one name, "given family"; the provider gives its last
    word (split at spaces) as familyName and the rest as givenName
    (docs/oneroster.md).
    """
    name = f"{given} {family}".strip()
    last = name.rsplit(" ", 1)[-1]
    return name[: -len(last)].rstrip(), last


def test_the_client_reads_every_collection_record_for_record(roster, client_python):
    rows = bundle_rows()
    seen = clients.read_with_client(client_python, *roster.client_arguments(), "--limit", str(PAGE))
    collections = {name: by_id(records) for name, records in seen["collections"].items()}

    students = {
        u["sourcedId"]: u for u in rows["users.csv"] if u["sourcedId"].startswith("student")
    }
    # Users and students: the bundle's students, no teacher, each with its names and email.
    assert collections["users"].keys() == students.keys()
    assert collections["students"] == collections["users"]
    for sourced_id, expected in students.items():
        got = collections["users"][sourced_id]
        assert got["status"] == "active"
        assert got["enabledUser"] is True
        assert (got["givenName"], got["familyName"]) == as_served(
            expected["givenName"], expected["familyName"]
        )
        assert got["email"] == got["username"] == expected["email"]
        assert [(r["role"], r["roleType"]) for r in got["roles"]] == [("student", "primary")]
        assert [r["org"]["sourcedId"] for r in got["roles"]] == [SCHOOL]
    # A name of one word in each part comes back as it went in.
    assert (
        collections["users"]["student-0"]["givenName"],
        collections["users"]["student-0"]["familyName"],
    ) == ("Ada", "Lovelace")

    # Terms: the term and the semester (both of type term: the service keeps no
    # type), not the school year nor the grading period.
    for name in ("academicSessions", "terms"):
        assert collections[name].keys() == TERMS.keys(), name
        for sourced_id, (title, _, start, end) in TERMS.items():
            got = collections[name][sourced_id]
            assert (got["title"], got["startDate"], got["endDate"]) == (title, start, end)
            assert (got["type"], got["schoolYear"], got["status"]) == (
                "term",
                int(end[:4]),
                "active",
            )

    # Classes: code, title and term as the bundle gave them, in the school;
    # each is its own course (the service keeps the bundle's courses only as
    # their classes' codes).
    assert collections["classes"].keys() == CLASSES.keys()
    assert collections["courses"].keys() == CLASSES.keys()
    for sourced_id, (code, title, term) in CLASSES.items():
        got = collections["classes"][sourced_id]
        assert (got["classCode"], got["title"], got["classType"]) == (code, title, "scheduled")
        assert [t["sourcedId"] for t in got["terms"]] == [term]
        assert got["school"]["sourcedId"] == SCHOOL
        assert got["course"]["sourcedId"] == sourced_id
        course = collections["courses"][sourced_id]
        assert (course["courseCode"], course["title"]) == (code, title)
        assert course["org"]["sourcedId"] == SCHOOL

    # Enrollments: the students' (not the teachers'), each with its user and class.
    expected_enrollments = {
        e["sourcedId"]: e for e in rows["enrollments.csv"] if e["role"] == "student"
    }
    assert collections["enrollments"].keys() == expected_enrollments.keys()
    for sourced_id, expected in expected_enrollments.items():
        got = collections["enrollments"][sourced_id]
        assert got["user"]["sourcedId"] == expected["userSourcedId"]
        assert got["class"]["sourcedId"] == expected["classSourcedId"]
        assert (got["role"], got["primary"], got["status"]) == ("student", False, "active")
        assert got["school"]["sourcedId"] == SCHOOL

    # The institution: one org, the school as configured, and the same under /schools.
    assert list(collections["orgs"]) == [SCHOOL]
    assert collections["orgs"][SCHOOL]["type"] == "school"
    assert collections["orgs"][SCHOOL]["name"] == SCHOOL_NAME
    assert collections["schools"] == collections["orgs"]

    # Nested collections, for every parent, agree with the enrollments.
    members: dict[str, set[str]] = {c: set() for c in CLASSES}
    taking: dict[str, set[str]] = {s: set() for s in students}
    for e in expected_enrollments.values():
        members[e["classSourcedId"]].add(e["userSourcedId"])
        taking[e["userSourcedId"]].add(e["classSourcedId"])
    nested = seen["nested"]
    assert {c: set(u) for c, u in nested["classes/{id}/students"].items()} == members
    assert {s: set(c) for s, c in nested["students/{id}/classes"].items()} == taking
    assert {t: set(c) for t, c in nested["terms/{id}/classes"].items()} == {
        t: {c for c, (_, _, term) in CLASSES.items() if term == t} for t in TERMS
    }
    assert {s: set(c) for s, c in nested["schools/{id}/classes"].items()} == {SCHOOL: set(CLASSES)}

    # One record of each collection by its sourcedId: the same as in the collection.
    assert seen["single"].keys() == collections.keys()
    for name, record in seen["single"].items():
        assert record == collections[name][record["sourcedId"]], name
    assert seen["unknown_user"] == "NotFoundError"

    # Paging: the client's own, seven records a page, up to the last page and no further.
    for path, count in (("/users", STUDENTS), ("/enrollments", len(expected_enrollments))):
        assert offsets(seen["requests"], path) == list(range(0, count, PAGE)), path
    assert math.ceil(STUDENTS / PAGE) > 5
    # One token for the whole read: it lives long enough, and the client keeps it.
    assert sum(line.startswith("POST ") for line in seen["requests"]) == 1

    # What the client itself gets wrong, held in place (docs/oneroster.md ("Checked with clients")):
    # client.terms reads /terms under a `terms` key, where the binding has academicSessions.
    assert seen["client"]["terms_found_by_client_terms"] == 0


def test_a_delta_sync_sees_a_deleted_student_as_tobedeleted(roster, client_python):
    since = datetime.now(UTC).isoformat()
    gone = "student-1"  # Siobhán O'Brien, in three classes
    headers = {"Authorization": f"Bearer {REGISTRAR.secret}"}
    found = requests.get(
        f"{roster.url}/students", params={"sourced_id": gone}, headers=headers, timeout=10
    )
    assert found.status_code == 200, found.text
    (student,) = found.json()["items"]
    deleted = requests.delete(f"{roster.url}/students/{student['id']}", headers=headers, timeout=10)
    assert deleted.status_code == 204, deleted.text

    seen = clients.read_with_client(
        client_python, *roster.client_arguments(), "--limit", str(PAGE), "--changed-since", since
    )
    changes = {name: by_id(records) for name, records in seen["changes"].items()}

    # The student, in users and students, and nothing else changed.
    for name in ("users", "students"):
        assert changes[name].keys() == {gone}, name
        record = changes[name][gone]
        assert record["status"] == "tobedeleted"
        # No personal field: a deletion says which record, not whose.
        assert not {"givenName", "familyName", "email"} & {k for k, v in record.items() if v}
    # Their three enrollments, deleted with them.
    assert changes["enrollments"].keys() == {f"enrollment-1-{k}" for k in range(3)}
    assert {e["status"] for e in changes["enrollments"].values()} == {"tobedeleted"}
    assert changes["classes"] == {}
    assert changes["academicSessions"] == {}
    # The client's models cannot hold a deleted record: they require a user's
    # names and an enrollment's user, which a tombstone leaves out, so the
    # driver read those three again as plain records (docs/oneroster.md ("Checked with clients")).
    refused = seen["client"]["model_refused"]
    assert refused.keys() == {"users", "students", "enrollments"}
    assert "givenName" in refused["users"]
    assert "user" in refused["enrollments"]


def fake_python(path: Path, says: str, status: int = 0) -> Path:
    """A program that answers the version question as a Python of version `says` would."""
    path.write_text(f"#!/bin/sh\necho {says}\nexit {status}\n")
    path.chmod(0o755)
    return path


def test_the_client_is_run_only_by_a_python_it_supports(monkeypatch, tmp_path):
    old = fake_python(tmp_path / "python-old", "3.11")
    fake_python(tmp_path / "python3.13", "", status=127)  # a pyenv shim of another version
    newer = fake_python(tmp_path / "python3.12", "3.12")
    monkeypatch.setenv("ONEROSTER_CLIENT_PYTHON", str(old))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))

    assert clients.find_python() == str(newer)

    newer.unlink()
    with pytest.raises(clients.Unavailable) as refused:
        clients.find_python()
    said = str(refused.value)
    assert "needs Python >= 3.12" in said
    assert f"{old} (3.11)" in said
    assert f"{tmp_path / 'python3.13'} (does not run)" in said


def test_a_missing_client_is_a_skip_except_where_it_is_required(monkeypatch):
    monkeypatch.delenv("REQUIRE_ONEROSTER_CLIENT", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Python"):
        clients.unavailable("no Python")
    monkeypatch.setenv("REQUIRE_ONEROSTER_CLIENT", "1")
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_ONEROSTER_CLIENT=1 and no Python"):
        clients.unavailable("no Python")
