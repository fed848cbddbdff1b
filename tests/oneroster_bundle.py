"""OneRoster 1.2 CSV bundles written from Python rows: a folder or a zip, streamed.

    write_bundle(tmp_path / "roster.zip", {
        "academicSessions.csv": [session("t1", "Fall 2026")],
        "classes.csv": [klass("c1", "MATH101", course="k1", terms=["t1"])],
        "courses.csv": [course("k1", "MATH101")],
        "users.csv": [user("u1", "Ada", "Lovelace", "ada@example.org")],
        "roles.csv": [role("u1")],
        "enrollments.csv": [enrollment("e1", "u1", "c1")],
    }, zip=True)

A row is a dict of the binding's column names (missing ones are empty);
keys the binding does not have are extension columns, on the right, in the
order the first row gives them. Values may be str, int, bool ("true"/"false"),
a date, a list (written comma-separated, as the binding writes lists) or
None (empty). Files are written row by row from any iterable, so a
generator of 500,000 enrollments (`school()`) never sits in memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import IO, Any

from enrollment_import.bundle import COLUMNS, NOT_KEPT

Row = Mapping[str, Any]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _write_rows(stream: IO[str], name: str, rows: Iterable[Row], header: list[str] | None) -> None:
    writer = csv.writer(stream, lineterminator="\r\n")
    rows = iter(rows)
    first = next(rows, None)
    if header is None:
        columns = list(COLUMNS.get(name, ()))
        if first is not None:
            columns += [key for key in first if key not in columns]
        if not columns:
            raise ValueError(f"{name}: give its header, or a first row")
    else:
        columns = header
    writer.writerow(columns)
    known = set(columns)
    for row in itertools.chain([first] if first is not None else [], rows):
        extra = set(row) - known
        if extra and header is None:
            raise ValueError(f"{name}: columns not in the header: {sorted(extra)}")
        writer.writerow([_cell(row.get(column)) for column in columns])


def manifest_rows(
    files: Iterable[str], modes: Mapping[str, str], properties: Mapping[str, str | None]
) -> list[dict[str, str]]:
    """manifest.csv's rows: versions, then file.X for every file of the binding."""
    given = set(files)
    values: dict[str, str | None] = {
        "manifest.version": "1.0",
        "oneroster.version": "1.2",
    }
    for name in sorted(set(COLUMNS) | set(NOT_KEPT) | given):
        mode = modes.get(name, "bulk" if name in given else "absent")
        values[f"file.{name.removesuffix('.csv')}"] = mode
    values["source.systemName"] = "tests/oneroster_bundle.py"
    values.update(properties)
    return [{"propertyName": k, "value": v} for k, v in values.items() if v is not None]


def write_bundle(
    path: Path,
    files: Mapping[str, Iterable[Row]],
    *,
    modes: Mapping[str, str] | None = None,
    zip: bool = False,
    folder: str = "",
    bom: bool = False,
    manifest: Mapping[str, str | None] | None = None,
    headers: Mapping[str, list[str]] | None = None,
    raw: Mapping[str, str | bytes] | None = None,
) -> Path:
    """A bundle at `path`: a folder, or with zip=True a zip file (its files under `folder`).

    `modes`: a file's mode in the manifest (default bulk for each file given,
    absent for the others); `manifest`: properties to set (None removes
    one); `headers`: a file's header, written as given instead of the
    binding's (a row's other values left out); `raw`: files written byte for byte (a manifest.csv here
    replaces the one written); `bom`: every CSV file starts with a BOM.
    """
    modes = modes or {}
    raw = dict(raw or {})
    headers = headers or {}
    encoding = "utf-8-sig" if bom else "utf-8"
    tables: dict[str, Iterable[Row]] = {}
    if "manifest.csv" not in raw:
        tables["manifest.csv"] = manifest_rows(files, modes, manifest or {})
    tables.update(files)

    def write_all(open_: Any) -> None:
        for name, rows in tables.items():
            with open_(name) as binary, io.TextIOWrapper(binary, encoding, newline="") as text:
                _write_rows(text, name, rows, headers.get(name))
        for name, content in raw.items():
            with open_(name) as binary:
                binary.write(content.encode() if isinstance(content, str) else content)

    if zip:
        prefix = f"{folder.strip('/')}/" if folder else ""
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            write_all(lambda name: archive.open(prefix + name, "w"))
    else:
        path.mkdir(parents=True, exist_ok=True)
        write_all(lambda name: (path / name).open("wb"))
    return path


# --- Rows ----------------------------------------------------------------------------------

SCHOOL = "school-1"


def session(
    sourced_id: str,
    title: str,
    type: str = "term",
    start: str | date = "2026-09-01",
    end: str | date = "2026-12-20",
    *,
    school_year: str = "2027",
    parent: str = "",
    **more: Any,
) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "title": title,
        "type": type,
        "startDate": start,
        "endDate": end,
        "parentSourcedId": parent,
        "schoolYear": school_year,
        **more,
    }


def org(sourced_id: str = SCHOOL, name: str = "Example School", **more: Any) -> dict[str, Any]:
    return {"sourcedId": sourced_id, "name": name, "type": "school", **more}


def course(sourced_id: str, code: str, title: str = "", **more: Any) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "title": title or code,
        "courseCode": code,
        "orgSourcedId": SCHOOL,
        **more,
    }


def klass(
    sourced_id: str,
    code: str,
    title: str = "",
    *,
    course: str,
    terms: list[str],
    **more: Any,
) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "title": title or code,
        "courseSourcedId": course,
        "classCode": code,
        "classType": "scheduled",
        "schoolSourcedId": SCHOOL,
        "termSourcedIds": terms,
        **more,
    }


def user(sourced_id: str, given: str, family: str, email: str, **more: Any) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "enabledUser": True,
        "username": email or sourced_id,
        "givenName": given,
        "familyName": family,
        "email": email,
        "primaryOrgSourcedId": SCHOOL,
        **more,
    }


def role(user: str, role: str = "student", **more: Any) -> dict[str, Any]:
    return {
        "sourcedId": f"role-{user}-{role}",
        "userSourcedId": user,
        "roleType": "primary",
        "role": role,
        "orgSourcedId": SCHOOL,
        **more,
    }


def enrollment(
    sourced_id: str, user: str, klass: str, role: str = "student", **more: Any
) -> dict[str, Any]:
    return {
        "sourcedId": sourced_id,
        "classSourcedId": klass,
        "schoolSourcedId": SCHOOL,
        "userSourcedId": user,
        "role": role,
        "primary": "false",
        **more,
    }


def school(
    students: int, classes: int, per_student: int, *, terms: int = 2, teachers: int = 0
) -> dict[str, Iterable[Row]]:
    """A whole school's bulk bundle, as generators: `students` students enrolled in
    `per_student` classes each (out of `classes`, spread over `terms` terms), and
    `teachers` teachers, each teaching classes in turn.

    Deterministic: the same arguments give the same files. Classes have no
    meetings and no capacity, so every enrollment is accepted.
    """

    def sessions() -> Iterator[Row]:
        yield session("year-2027", "2026-2027", "schoolYear", "2026-09-01", "2027-06-30")
        for t in range(terms):
            yield session(f"term-{t}", f"Term {t + 1}", "term", parent="year-2027")

    def catalog() -> Iterator[Row]:
        for c in range(classes):
            yield course(f"course-{c}", f"C{c:05d}")

    def sections() -> Iterator[Row]:
        for c in range(classes):
            yield klass(
                f"class-{c}",
                f"C{c:05d}-1",
                f"Class {c}",
                course=f"course-{c}",
                terms=[f"term-{c % terms}"],
            )

    def people() -> Iterator[Row]:
        for s in range(students):
            yield user(f"student-{s}", f"Given{s}", f"Family{s}", f"student{s}@example.org")
        for t in range(teachers):
            yield user(f"teacher-{t}", f"Teacher{t}", "Staff", f"teacher{t}@example.org")

    def roles() -> Iterator[Row]:
        for s in range(students):
            yield role(f"student-{s}")
        for t in range(teachers):
            yield role(f"teacher-{t}", "teacher")

    def seats() -> Iterator[Row]:
        for s in range(students):
            for k in range(per_student):
                c = (s * per_student + k) % classes
                yield enrollment(f"enrollment-{s}-{k}", f"student-{s}", f"class-{c}")
        for t in range(teachers):
            c = t % classes
            yield enrollment(f"teaching-{t}", f"teacher-{t}", f"class-{c}", "teacher")

    return {
        "academicSessions.csv": sessions(),
        "orgs.csv": [org()],
        "courses.csv": catalog(),
        "classes.csv": sections(),
        "users.csv": people(),
        "roles.csv": roles(),
        "enrollments.csv": seats(),
    }
