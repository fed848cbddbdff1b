"""enrollment-import KIND FILE: a CSV file of students, courses, enrollments, terms,
holds or completions through the service's API.

The same command is `python -m service import` where the whole service is
installed, and `python -m enrollment_import` where only the importer is.

The importer is a client of a running service, like any other: every row goes
through POST /students/batch, /courses/batch, /enrollments/batch or
/terms/batch, or, for holds and completions, which have no batch endpoint,
one POST /students/{id}/holds or /completions per row, a few at a time; so
every rule the service enforces and every event it records applies. It reads
the file (or standard input) once, checking it and copying it to a temporary
file, then sends the rows from that copy a batch at a time (memory stays flat
whatever the file's size or its lines' length), writes the rows that were
not applied to FILE.rejected.csv as it goes, and retries a request
whose answer was lost (a dropped connection, a timeout, a 503) with the same
Idempotency-Key, so nothing is applied twice. docs/import.md is the
registrar's guide.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import io
import itertools
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

import aiohttp
import orjson
import yarl
from tqdm import tqdm

DEFAULT_URL = "http://127.0.0.1:8080"
CONNECT_TIMEOUT = 5.0  # seconds
MAX_BATCH = 1000  # the batch endpoints' limit
# The service refuses bodies above 1 MiB; a batch is cut short before that.
MAX_BODY = 1_000_000
# Columns of our own rejected files: ignored on input, so a fixed rejected
# file can be imported as it is.
REJECT_COLUMNS = ("line", "outcome", "reason")
# A spreadsheet reads a cell starting with one of these as a formula, and runs
# it (OWASP's "CSV injection"): the rejected file, made to be opened in one,
# puts a ' before such a cell, and the importer takes it off again when it
# reads a rejected file back.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DELIMITERS = (",", ";", "\t")
# The longest row (all its physical lines) the importer reads, in bytes: a
# longer one ends the import before anything is sent, having held no more
# than this of it, so memory stays bounded whatever a line's length.
MAX_RECORD = 1024 * 1024
# The longest value sent: far more than any field the service takes (254
# characters for an email), and short enough that a row always fits in a body.
MAX_VALUE = 1000

T = TypeVar("T")

EXIT_APPLIED = 0
EXIT_REJECTED = 1
EXIT_UNUSABLE = 2


RERUN = "run it again to finish"


class Unusable(Exception):
    """The file or the service cannot be used at all: one line on stderr, exit 2.

    `advice` is what to do next when the import stopped part way: running it
    again, unless a re-run cannot help (a token refused, a wrong URL).
    """

    def __init__(self, message: str, advice: str = RERUN):
        super().__init__(message)
        self.advice = advice


class RowError(Exception):
    """One row cannot be sent as it is: its reason, in the file's terms."""


@dataclass(frozen=True)
class Outcome:
    slug: str
    label: str
    changed: bool  # the row changed something (an event was recorded)


@dataclass(frozen=True)
class Kind:
    """What one `import` subcommand reads and where it sends it.

    `path` is a batch endpoint; for a kind with `each`, the endpoint a row is
    POSTed to alone, `{student_id}` its student. `key` names what a row is
    about, once per file: each part a column, or columns of which the row
    gives one (`student_id|student_email`), or, ending in `?`, columns that
    may all be empty (the courses without a term). A row that gives the
    `sourced_id` of a kind that has `matched` is about the record with that
    sourced_id instead, as the service matches it.
    """

    name: str
    path: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    item: Callable[[dict[str, str]], dict[str, Any]]
    applied: tuple[Outcome, ...]  # in the summary's order
    key: tuple[str, ...]
    # Groups of columns of which the header has at least one.
    either: tuple[tuple[str, ...], ...] = ()
    # No batch endpoint: one request per row (holds, completions).
    each: bool = False
    # The service matches an item with a sourced_id by it (students, courses, terms).
    matched: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + tuple(c for group in self.either for c in group) + self.optional


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
# A number as a spreadsheet writes it: 3, 4.5, or 4,5 where the decimal mark is a comma.
_NUMBER = re.compile(r"[+-]?[0-9]{1,9}(?:[.,][0-9]{1,9})?")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})
MAX_ID = 2**63 - 1


def _integer(text: str) -> int | str:
    """A cell as an integer; anything else goes as it is, for the service to refuse by name."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else text


def _number(text: str) -> int | float | str:
    """A cell as a JSON number (4.5 and 4,5 alike); anything else as it is, for the service to refuse."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return text
    text = text.replace(",", ".")
    return float(text) if "." in text else int(text)


def _id(column: str, text: str) -> int:
    """An id the file gives: the importer puts it in a path, so it checks it itself."""
    value = _integer(text)
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    raise RowError(f"{column}: {text.strip()!r} is not an id (a whole number from 1)")


def _boolean(column: str, text: str) -> bool:
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise RowError(
        f"{column}: {text.strip()!r} is not yes or no "
        "(yes, y, true, 1; no, n, false, 0 or empty; any letter case)"
    )


def _one_of(row: dict[str, str], first: str, second: str) -> tuple[str, str] | None:
    """(column, value) of the one of two columns the row gives; None when it gives neither."""
    given = [(c, row[c].strip()) for c in (first, second) if row.get(c, "").strip()]
    if len(given) > 1:
        raise RowError(f"{first} and {second}: give only one of them")
    return given[0] if given else None


def _term(row: dict[str, str], item: dict[str, Any]) -> None:
    """The row's term, by id or by code (the importer looks the code up): no term when neither."""
    given = _one_of(row, "term_id", "term_code")
    if given is not None:
        column, value = given
        item[column] = _id(column, value) if column == "term_id" else value


def _student(row: dict[str, str], item: dict[str, Any]) -> None:
    given = _one_of(row, "student_id", "student_email")
    if given is None:
        # The header has one of them: the row's is empty.
        raise RowError("student_id is empty" if "student_id" in row else "student_email is empty")
    column, value = given
    item[column] = _id(column, value) if column == "student_id" else value


_MEETING = re.compile(r"(?P<days>.*?)\s*(?P<starts>[^\s,-]+)\s*-\s*(?P<ends>[^\s,-]+)")


def _meetings(text: str) -> list[dict[str, Any]]:
    """`mon wed 09:00-10:00; fri 13:00-14:00`: meetings apart by `;`, days by spaces or commas.

    Days and times go as written (days in lower case), for the service to
    check and name: `meetings[1].ends`.
    """
    meetings = []
    for n, part in enumerate((p.strip() for p in text.split(";")), 1):
        if not part:
            continue
        match = _MEETING.fullmatch(part)
        days = re.split(r"[\s,]+", match["days"].strip(" ,")) if match else []
        if not match or not days[0]:
            raise RowError(
                f"meetings: meeting {n} {part!r} is not days and times "
                "as in mon wed 09:00-10:00; fri 13:00-14:00"
            )
        meetings.append(
            {"days": [d.lower() for d in days], "starts": match["starts"], "ends": match["ends"]}
        )
    return meetings


def _sourced_id(row: dict[str, str], item: dict[str, Any], column: str = "sourced_id") -> None:
    """The row's sourced_id, when it gives one (an empty cell: none, the service assigns one)."""
    if row.get(column, "").strip():
        item[column] = row[column].strip()


def student_item(row: dict[str, str]) -> dict[str, Any]:
    item = {"name": row["name"], "email": row["email"].strip()}
    _sourced_id(row, item)
    return item


def course_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"code": row["code"].strip(), "title": row["title"]}
    _sourced_id(row, item)
    # The file states the whole course: an empty capacity is no limit, an
    # empty waitlist_capacity no waitlist, empty credits 0, empty meetings
    # and prerequisites none.
    if "capacity" in row:
        item["capacity"] = _integer(row["capacity"]) if row["capacity"].strip() else None
    if "waitlist_capacity" in row:
        text = row["waitlist_capacity"]
        item["waitlist_capacity"] = _integer(text) if text.strip() else 0
    # No term: the courses without one (the code is a course's key in its term).
    _term(row, item)
    if "credits" in row:
        item["credits"] = _number(row["credits"]) if row["credits"].strip() else 0
    if "meetings" in row:
        item["meetings"] = _meetings(row["meetings"])
    if "prerequisites" in row:
        item["prerequisites"] = [c for c in re.split(r"[\s,;]+", row["prerequisites"]) if c]
    return item


def _named(
    row: dict[str, str], columns: tuple[str, str], fields: tuple[str, str]
) -> dict[str, str]:
    """The student or course of an enrollment row: {field: value} of the one column it gives."""
    given = _one_of(row, *columns)
    if given is None:
        # The header has at least one of them: the row's are empty.
        named = [c for c in columns if c in row]
        raise RowError(
            f"{named[0]} is empty" if len(named) == 1 else " and ".join(named) + " are empty"
        )
    column, value = given
    return {fields[columns.index(column)]: value}


def enrollment_item(row: dict[str, str]) -> dict[str, Any]:
    action = row.get("action", "").strip().lower() or "enroll"
    item: dict[str, Any] = {
        "action": action,
        **_named(row, ENROLLED_STUDENT, ("student_email", "student_sourced_id")),
        **_named(row, ENROLLED_COURSE, ("course_code", "course_sourced_id")),
    }
    # The course with that code in that term; without one, the course without a term.
    _term(row, item)
    if action == "enroll" and "waitlist" in row:
        if _boolean("waitlist", row["waitlist"]):
            item["waitlist"] = True
    if action == "enroll":
        # The enrollment's own, when it makes one (a drop makes none).
        _sourced_id(row, item)
    return item


TERM_LIMITS = ("registration_opens_at", "registration_closes_at", "drop_deadline")


def term_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "code": row["code"].strip(),
        "title": row["title"],
        "starts_on": row["starts_on"].strip(),
        "ends_on": row["ends_on"].strip(),
    }
    # The file states the whole term: an empty limit is none (null); a
    # column the file does not have leaves the term's as it is.
    for name in TERM_LIMITS:
        if name in row:
            item[name] = row[name].strip() or None
    if "max_credits" in row:
        text = row["max_credits"]
        item["max_credits"] = _number(text) if text.strip() else None
    _sourced_id(row, item)
    return item


def hold_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"reason": row["reason"]}
    _student(row, item)
    return item


def completion_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"code": row["code"].strip()}
    _student(row, item)
    # Empty: now, as the service has it.
    if row.get("completed_at", "").strip():
        item["completed_at"] = row["completed_at"].strip()
    return item


_CREATED = Outcome("created", "created", True)
_UPDATED = Outcome("updated", "updated", True)
_UNCHANGED = Outcome("unchanged", "unchanged", False)
STUDENT = ("student_id", "student_email")
TERM = ("term_id", "term_code")
# An enrollment's student and course: by email and code, or by sourced_id.
ENROLLED_STUDENT = ("email", "student_sourced_id")
ENROLLED_COURSE = ("code", "course_sourced_id")

KINDS: dict[str, Kind] = {
    "students": Kind(
        "students",
        "/students/batch",
        ("name", "email"),
        ("sourced_id",),
        student_item,
        (_CREATED, _UPDATED, _UNCHANGED),
        ("email",),
        matched=True,
    ),
    "courses": Kind(
        "courses",
        "/courses/batch",
        ("code", "title"),
        (
            *("capacity", "waitlist_capacity", *TERM, "credits", "meetings", "prerequisites"),
            "sourced_id",
        ),
        course_item,
        (_CREATED, _UPDATED, _UNCHANGED),
        ("code", "term_id|term_code?"),
        matched=True,
    ),
    "enrollments": Kind(
        "enrollments",
        "/enrollments/batch",
        (),
        ("action", "waitlist", *TERM, "sourced_id"),
        enrollment_item,
        (
            Outcome("enrolled", "enrolled", True),
            Outcome("already-enrolled", "already enrolled", False),
            Outcome("waitlisted", "waitlisted", True),
            Outcome("already-waiting", "already waiting", False),
            Outcome("dropped", "dropped", True),
            Outcome("not-enrolled", "not enrolled (nothing to drop)", False),
        ),
        ("email|student_sourced_id", "code|course_sourced_id", "term_id|term_code?"),
        either=(ENROLLED_STUDENT, ENROLLED_COURSE),
    ),
    "terms": Kind(
        "terms",
        "/terms/batch",
        ("code", "title", "starts_on", "ends_on"),
        (*TERM_LIMITS, "max_credits", "sourced_id"),
        term_item,
        (_CREATED, _UPDATED, _UNCHANGED),
        ("code",),
        matched=True,
    ),
    "holds": Kind(
        "holds",
        "/students/{student_id}/holds",
        ("reason",),
        (),
        hold_item,
        (
            Outcome("placed", "placed", True),
            # The student has a hold with that reason already: a re-run places no second one.
            Outcome("already-held", "already held", False),
        ),
        ("student_id|student_email", "reason"),
        either=(STUDENT,),
        each=True,
    ),
    "completions": Kind(
        "completions",
        "/students/{student_id}/completions",
        ("code",),
        ("completed_at",),
        completion_item,
        (
            Outcome("added", "added", True),
            Outcome("already-completed", "already completed", False),
        ),
        ("student_id|student_email", "code"),
        either=(STUDENT,),
        each=True,
    ),
}


# --- Letter case ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _fold_character(ch: str) -> str:
    # Simple case folding, one character for one, as the service's
    # fold_case() (sql/functions/text.sql, tests/fold_case_table.py): casefold() is
    # the full folding (ß -> ss), so where it gives more than one character
    # lower() gives the simple one (ẞ -> ß), or there is none (İ stays).
    folded = ch.casefold()
    if len(folded) == 1:
        return folded
    lowered = ch.lower()
    return lowered if len(lowered) == 1 else ch


def fold(text: str) -> str:
    """`text` as the service compares emails and course codes: ignoring letter case."""
    if text.isascii():
        return text.lower()
    return "".join(map(_fold_character, text))


class Keys:
    """Which rows repeat an earlier row's key (an email, a code), in any letter case.

    Two passes over the file, as the importer makes anyway. The first keeps
    only the hash of each key (a set of ints, about 70 bytes a row: 35
    MB for 500,000 rows, freed before the second pass) and notes the hashes
    seen twice. The second keeps, for those hashes only, each key with the
    line it was first on: exact, whatever the hashes collide on, and as
    small as the file's repeats.
    """

    def __init__(self) -> None:
        self._seen: set[int] | None = set()
        self._repeated: dict[int, dict[str, int]] = {}

    def count(self, key: str) -> None:
        """First pass: one row's key."""
        assert self._seen is not None
        digest = hash(key)
        if digest in self._seen:
            self._repeated.setdefault(digest, {})
        else:
            self._seen.add(digest)

    def counted(self) -> None:
        self._seen = None

    def first_line(self, key: str, line: int) -> int | None:
        """Second pass: the line this key was first on, when it is not `line`."""
        lines = self._repeated.get(hash(key))
        if lines is None:
            return None
        first = lines.setdefault(key, line)
        return first if first != line else None


# --- Reading the file ---------------------------------------------------------------------


@dataclass
class Row:
    line: int  # the physical line the row starts on
    values: list[str]  # as read, for the rejected file
    item: bytes | None = None  # the JSON item sent
    error: tuple[str, str] | None = None  # refused before sending: (outcome, reason)
    fields: dict[str, str] = field(default_factory=dict)  # the kind's columns, as written


def neutralised(cell: str) -> str:
    """The cell as the rejected file writes it: never read as a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def restored(cell: str) -> str:
    """A cell of a rejected file as it was before `neutralised`."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def _blank(record: list[str]) -> bool:
    return not any(value.strip() for value in record)


def _delimiter(header: str, kind: Kind) -> str:
    """The separator that splits the header line into the most of the kind's column names."""

    def known(delimiter: str) -> int:
        fields = next(csv.reader([header], delimiter=delimiter), [])
        return sum(1 for name in fields if name.strip().lower() in kind.columns)

    return max(DELIMITERS, key=known)  # ties go to the comma, first


class Lines:
    """The physical lines of a text stream, for csv.reader; a row past MAX_RECORD is refused.

    csv.reader asks for one line after another until its row is complete, so
    the lines read since `start()` are the row's. Each line is read with a
    limit of what the row has left, so a longer one is never held whole.
    """

    def __init__(self, stream: TextIO, name: str):
        self.name = name
        self.number = 0  # physical lines read
        self._stream = stream
        self._first = 1
        self._used = 0

    def start(self) -> None:
        """The next line starts a row."""
        self._first = self.number + 1
        self._used = 0

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        # The limit counts characters, the row bytes: a character is 1 to 4
        # bytes, so a line cut at the limit is always past the row's maximum.
        line = self._stream.readline(MAX_RECORD - self._used + 1)
        if not line:
            raise StopIteration
        self._used += len(line) if line.isascii() else len(line.encode("utf-8"))
        if self._used > MAX_RECORD:
            runs_on = self.number >= self._first
            raise Unusable(
                f"{self.name}: line {self._first}: the row is longer than "
                f"{MAX_RECORD // 1024 // 1024} MiB, the most the importer reads as one row"
                + (
                    f" (it runs on past line {self.number}: a quote never closed?)"
                    if runs_on
                    else ""
                )
            )
        self.number += 1
        return line


def open_csv(
    lines: Lines, empty: Unusable, delimiter: Callable[[str], str]
) -> tuple[Any, str, list[str]]:
    """A csv reader over `lines`, its separator and the header (the first non-blank row).

    `delimiter` chooses the separator from the header's line; `empty` is
    raised when the stream has no header.
    """
    try:
        while True:
            lines.start()
            line = next(lines, None)
            if line is None:
                raise empty
            if "\0" in line:
                raise csv.Error("it holds NUL bytes (a binary file?)")
            if line.strip(" \t\r\n,;"):
                break
        separator = delimiter(line)
        # The reader gets the line back, then reads on from where it was.
        reader = csv.reader(itertools.chain([line], lines), delimiter=separator, strict=True)
        while True:
            header = next(reader, None)
            if header is None:
                raise empty
            if not _blank(header):
                return reader, separator, header
            lines.start()
    except UnicodeDecodeError:
        raise Unusable(f"{lines.name}: not a CSV file: it is not UTF-8 text") from None
    except csv.Error as exc:
        raise Unusable(f"{lines.name}: not a CSV file: {exc}") from None


def records(reader: Any, lines: Lines) -> Iterator[tuple[int, list[str]]]:
    """(start line, values) of each non-blank row `reader` reads after the header."""
    while True:
        lines.start()
        start = lines.number + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise Unusable(f"{lines.name}: not UTF-8 text after line {lines.number}") from None
        except csv.Error as exc:
            raise Unusable(f"{lines.name}: line {start}: not CSV: {exc}") from None
        if not _blank(record):
            yield start, record


class CsvFile:
    """The rows of one CSV file, streamed; its header checked against the kind."""

    def __init__(
        self,
        stream: TextIO,
        name: str,
        kind: Kind,
        warn: Callable[[str], None],
        keys: Keys | None = None,
    ):
        self.name = name
        self.kind = kind
        self.keys = keys or Keys()
        self._lines = Lines(stream, name)
        empty = Unusable(
            f"{name}: the file is empty; a {kind.name} file starts with the header "
            f"{','.join(kind.required or tuple(g[0] for g in kind.either))}"
        )
        self._reader, self.delimiter, self.header = open_csv(
            self._lines, empty, lambda line: _delimiter(line, kind)
        )
        names = [column.strip().lower() for column in self.header]
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            raise Unusable(f"{name}: column(s) named twice: {', '.join(duplicated)}")
        missing = [column for column in kind.required if column not in names]
        missing += [
            " or ".join(group)
            for group in kind.either
            if not any(column in names for column in group)
        ]
        if missing:
            needs = [" or ".join(group) for group in kind.either] + list(kind.required)
            raise Unusable(
                f"{name}: missing column(s) {', '.join(missing)}: a {kind.name} file needs "
                f"{','.join(needs)}"
                + (f" (optional: {','.join(kind.optional)})" if kind.optional else "")
                + f"; its header is: {','.join(self.header)[:200]}"
            )
        self._index = {n: i for i, n in enumerate(names) if n in kind.columns}
        unknown = [
            column
            for column, n in zip(self.header, names, strict=True)
            if n not in kind.columns and n not in REJECT_COLUMNS
        ]
        if unknown:
            warn(f"{name}: ignoring unknown column(s): {', '.join(unknown)}")
        # The rejected file keeps the file's columns, ours aside, then adds ours.
        self.kept = [i for i, n in enumerate(names) if n not in REJECT_COLUMNS]
        # A file with all of our columns is a rejected file read back: its
        # cells lose the ' that kept a spreadsheet from running them.
        self._cell = restored if all(c in names for c in REJECT_COLUMNS) else str

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(start line, values) of each non-blank row after the header."""
        return records(self._reader, self._lines)

    def _fields(self, values: list[str]) -> dict[str, str]:
        return {
            name: self._cell(values[i]) if i < len(values) else ""
            for name, i in self._index.items()
        }

    def _key(self, fields: dict[str, str]) -> str | None:
        """What the row is about, folded; None when a part is empty (the row's error says so).

        A part given by one of several columns keeps the column's name: a
        student by id and the same by email are not found the same. A
        sourced_id is compared as the service compares it: exactly.
        """
        if self.kind.matched and fields.get("sourced_id", "").strip():
            return "sourced_id=" + fields["sourced_id"].strip()
        parts = []
        for part in self.kind.key:
            columns = part.rstrip("?").split("|")
            given = [(c, fields.get(c, "").strip()) for c in columns if fields.get(c, "").strip()]
            if len(given) > 1 or (not given and not part.endswith("?")):
                return None
            column, value = given[0] if given else ("", "")
            value = value if column.endswith("sourced_id") else fold(value)
            parts.append(f"{column}={value}" if len(columns) > 1 else value)
        return "\n".join(parts)

    def count_keys(self) -> int:
        """First pass: every row's key counted; the number of rows."""
        total = 0
        for _, values in self.records():
            total += 1
            if (key := self._key(self._fields(values))) is not None:
                self.keys.count(key)
        self.keys.counted()
        return total

    def rows(self) -> Iterator[Row]:
        width = len(self.header)
        for line, values in self.records():
            if len(values) > width:
                reason = f"the row has {len(values)} fields, the header {width}"
                yield Row(line, values, error=("invalid", reason))
                continue
            fields = self._fields(values)
            key = self._key(fields)
            first = self.keys.first_line(key, line) if key is not None else None
            if first is not None:
                # A second row about the same student or course would undo
                # the first on every run: neither "a second run changes
                # nothing" nor the file's intent would hold.
                yield Row(line, values, error=("duplicate", f"duplicate of line {first}"))
                continue
            long = next((name for name, value in fields.items() if len(value) > MAX_VALUE), None)
            if long is not None:
                # The service would refuse it too; it is not sent, so that
                # the row's body stays small.
                reason = f"{long}: {len(fields[long])} characters, more than the service takes"
                yield Row(line, values, error=("invalid", reason))
                continue
            try:
                item = orjson.dumps(self.kind.item(fields))
            except RowError as exc:
                yield Row(line, values, error=("invalid", str(exc)))
                continue
            yield Row(line, values, item=item, fields=fields)


class Copying(io.RawIOBase):
    """A binary stream read through, each byte read also written to `copy`."""

    def __init__(self, source: io.BufferedReader, copy: IO[bytes]):
        self._source = source
        self._copy = copy

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._source.readinto(buffer)
        left = memoryview(buffer)[:count]
        try:
            while left:  # an unbuffered write may take only part
                left = left[self._copy.write(left) :]
        except OSError as exc:
            raise Unusable(
                f"cannot copy the file to {tempfile.gettempdir()}: {exc.strerror or exc} "
                "(TMPDIR chooses another folder)"
            ) from None
        return count


def utf8_text(stream: io.BufferedReader) -> TextIO:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def snapshot(
    stream: io.BufferedReader,
    spool: io.FileIO,
    name: str,
    kind: Kind,
    warn: Callable[[str], None],
) -> tuple[CsvFile, int]:
    """The file read once to its end, checked and copied to `spool`; its rows, read from the copy.

    A bad line anywhere refuses the file before any row is sent, and the rows
    sent are those checked: a file changed, grown or cut while it is being
    imported changes nothing, and standard input is checked like a file.
    """
    checked = CsvFile(utf8_text(io.BufferedReader(Copying(stream, spool))), name, kind, warn)
    total = checked.count_keys()
    spool.seek(0)
    copy = CsvFile(utf8_text(io.BufferedReader(spool)), name, kind, lambda _: None, checked.keys)
    return copy, total


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Rows in groups of at most `size` items whose JSON body stays under MAX_BODY."""
    batch: list[Row] = []
    items = body = 0
    for row in rows:
        length = len(row.item) + 1 if row.item is not None else 0
        if batch and (items >= size or body + length > MAX_BODY):
            yield batch
            batch, items, body = [], 0, 0
        batch.append(row)
        items += row.item is not None
        body += length
    if batch:
        yield batch


# --- Talking to the service ---------------------------------------------------------------


@dataclass
class Result:
    status: int
    outcome: str
    detail: str
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, message) of a 422
    body: Any = None  # what the single request would have answered


class Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Unreachable(Retryable):
    """No connection could be made: nothing reached the service."""


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _problem_text(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    detail = str(payload.get("detail") or payload.get("title") or "")
    errors = payload.get("errors")
    if isinstance(errors, list) and errors:
        named = "; ".join(
            f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)
        )
        return named or detail
    return detail


def _slug(payload: Any) -> str:
    kind = payload.get("type") if isinstance(payload, dict) else None
    return str(kind).rstrip("/").rsplit("/", 1)[-1] if kind else ""


def _result(entry: Any) -> Result:
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), int):
        raise Unusable(f"the service answered a batch with a result that is not one: {entry!r}")
    status: int = entry["status"]
    body = entry.get("body")
    outcome = entry.get("outcome") or ("invalid" if status == 422 else _slug(body) or str(status))
    errors = body.get("errors") if isinstance(body, dict) else None
    named = [
        (str(e.get("field")), str(e.get("message")))
        for e in (errors if isinstance(errors, list) else [])
        if isinstance(e, dict)
    ]
    detail = _problem_text(body) if status >= 400 else ""
    return Result(status, str(outcome), detail, named, body)


# The service's names for the file's columns, where they differ.
COLUMNS = {"student_email": "email", "course_code": "code"}
# What one of a list's items is called in a reason: "meetings, meeting 2, ends: ...".
ITEM_NAMES = {"meetings": "meeting", "prerequisites": "code"}
_PART = re.compile(r"(?P<field>[^\[]+)\[(?P<index>[0-9]+)\](?:\.(?P<part>.+))?")


def _column(name: str, fields: dict[str, str]) -> str:
    """The file's column for a field the service names."""
    if name in fields:
        return name
    if name == "term_id" and "term_code" in fields:
        return "term_code"  # the importer looked the id up from the code
    return COLUMNS.get(name, name)


def reason(result: Result, fields: dict[str, str]) -> str:
    """Why a row was not applied, in the file's terms.

    The service names courses and students by id and fields by its own
    names; the registrar knows them by the code, the email and the column.
    """
    code = fields.get("code", "").strip()
    email = (fields.get("email") or fields.get("student_email") or "").strip()
    student_named = fields.get("student_sourced_id", "").strip()
    course_named = fields.get("course_sourced_id", "").strip()
    if email:
        student = f"email {email}"
    elif student_named:
        student = f"sourced_id {student_named}"
    else:
        student = f"id {fields.get('student_id', '').strip()}"
    term = (fields.get("term_code") or fields.get("term_id") or "").strip()
    course = f"{code} in term {term}" if term else code
    if not code and course_named:
        course = f"with sourced_id {course_named}"
    wording = {
        "course-full": f"course {course} is full",
        "waitlist-full": f"course {course} is full and so is its waitlist",
        "student-not-found": f"no student has {student}",
        "course-not-found": (
            f"no course has sourced_id {course_named}"
            if not code
            else f"no course has code {course}"
        ),
        "course-not-empty": (
            f"course {course} has students enrolled or waiting: it cannot move to another term"
        ),
        "term-not-found": f"no term has code {term}",
        "unknown-term": f"no term has {'code' if fields.get('term_code', '').strip() else 'id'} {term}",
        "capacity-below-enrollments": (
            f"course {course} has more students enrolled than the capacity "
            f"{fields.get('capacity', '').strip()}"
        ),
        "waitlist-capacity-below-waiting": (
            f"course {course} has more students waiting than the waitlist_capacity "
            f"{fields.get('waitlist_capacity', '').strip()}"
        ),
    }
    if result.outcome in wording:
        return wording[result.outcome]
    if not result.errors:
        return result.detail
    said = []
    for name, message in result.errors:
        part = _PART.fullmatch(name)
        if part is not None:
            # One item of a list the cell holds: meetings[1].ends.
            column = _column(part["field"], fields)
            place = f"{ITEM_NAMES.get(column, 'item')} {int(part['index']) + 1}"
            said.append(
                f"{column}, {place}{', ' + part['part'] if part['part'] else ''}: {message}"
            )
            continue
        column = _column(name, fields)
        value = fields.get(column)
        if value is not None and not value.strip():
            said.append(f"{column} is empty")
        else:
            said.append(f"{column}: {message}")
    return "; ".join(said)


# Requests in flight at once for the kinds sent a row at a time (holds, completions).
CONCURRENCY = 8


@dataclass
class Client:
    url: yarl.URL
    token: str | None
    retry_for: float
    timeout: float
    notify: Callable[[str], None]
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    answered: bool = False  # the service has answered once: a failure now is it going away

    async def __aenter__(self) -> Client:
        headers = {"Content-Type": "application/json", "User-Agent": "enrollment-import"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            # A connection is made in a few seconds or not at all; the answer
            # to a batch may take longer.
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=CONNECT_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=CONCURRENCY),
            raise_for_status=False,
        )
        # Each try waits for a place here, not in the connector's queue, where
        # the time waiting would count against its timeout.
        self._places = asyncio.Semaphore(CONCURRENCY)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def send(self, path: str, number: int, items: list[bytes]) -> list[Result]:
        """One batch to the batch endpoint `path`; the results of its items, in order.

        Every try carries the same Idempotency-Key (this run's id and the
        batch's number, which the caller numbers across the run), so a batch
        the service applied but whose answer was lost is answered again from
        what was stored, not applied twice.
        """
        body = b'{"items":[' + b",".join(items) + b"]}"
        key = f"import-{self.run}-{number}"
        status, payload, raw = await self.call("POST", path, f"batch {number}", body=body, key=key)
        if status == 200 and isinstance(payload, dict) and isinstance(payload.get("results"), list):
            results = [_result(entry) for entry in payload["results"]]
            if len(results) != len(items):
                raise Unusable(
                    f"the service answered {len(results)} results for a batch of {len(items)} rows"
                )
            return results
        raise self.unexpected(status, payload, raw, f"POST {path}")

    def unexpected(self, status: int, payload: Any, raw: bytes, request: str) -> Unusable:
        text = _problem_text(payload) or raw[:200].decode("utf-8", "replace").strip()
        return Unusable(f"the service answered {status} to {request}: {text}")

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: bytes | None = None,
        key: str | None = None,
        query: dict[str, str] | None = None,
        route: str | None = None,
    ) -> tuple[int, Any, bytes]:
        """One request, retried with backoff until answered or `retry_for` seconds have passed.

        `what` names it in the retry's message ("batch 23", "line 12"); `key`
        is its Idempotency-Key, the same on every try; `route` the path's
        template, for the message when the service has no such path. 401,
        403 and an unknown path end the import; any other status is the
        caller's, with the problem or JSON it came with.
        """
        target = self.url / path.lstrip("/")
        if query:
            target = target.with_query(query)
        headers = {"Idempotency-Key": key} if key else {}
        first_failure: float | None = None
        delay = 0.5
        while True:
            try:
                async with self._places:
                    return await self._once(method, target, body, headers, route or path)
            except Retryable as exc:
                if isinstance(exc, Unreachable) and not self.answered:
                    # Nothing was sent yet: a wrong --url or a service not
                    # started, said now; the retries are for a service that
                    # goes away mid-import.
                    raise Unusable(
                        f"cannot reach the service at {self.url}: {exc}",
                        f"start the service, or name it with --url (the default is {DEFAULT_URL})",
                    ) from None
                now = time.monotonic()
                first_failure = first_failure if first_failure is not None else now
                left = self.retry_for - (now - first_failure)
                if left <= 0:
                    raise Unusable(
                        f"the service at {self.url} could not be used for "
                        f"{self.retry_for:g} s ({exc})"
                    ) from None
                wait = exc.retry_after if exc.retry_after is not None else delay
                wait = min(wait * random.uniform(0.8, 1.2), left)
                self.notify(f"{exc}; retrying {what} in {wait:.1f} s")
                await asyncio.sleep(wait)
                delay = min(delay * 2, 10.0)

    async def _once(
        self,
        method: str,
        target: yarl.URL,
        body: bytes | None,
        headers: dict[str, str],
        route: str,
    ) -> tuple[int, Any, bytes]:
        try:
            async with self._session.request(
                method, target, data=body, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except aiohttp.InvalidURL:
            raise Unusable(f"not a URL the importer can use: {self.url}", "check --url") from None
        except aiohttp.ConnectionTimeoutError:
            raise Unreachable(f"no connection within {CONNECT_TIMEOUT:g} s") from None
        except TimeoutError:
            raise Retryable(f"no answer within {self.timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(_connection_error(exc)) from None
        except aiohttp.ClientError as exc:
            raise Retryable(_connection_error(exc)) from None
        self.answered = True
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        text = _problem_text(payload) or raw[:200].decode("utf-8", "replace").strip()
        if status in (429, 502, 503, 504):
            # 429: over one of the token's limits (batches at once, keys
            # stored); Retry-After says when it frees.
            raise Retryable(f"the service answered {status} ({text})", retry_after)
        if status == 409 and _slug(payload) == "idempotency-key-in-use":
            # The first try of this request is still running: wait for its answer.
            what = "batch" if body is not None and body.startswith(b'{"items"') else "request"
            raise Retryable(f"the {what} is still being applied", retry_after or 1.0)
        if status == 401:
            raise Unusable(
                f"the service at {self.url} refused the request (401: {text})",
                "set API_TOKEN to a token the service accepts, with write access, "
                "then run it again",
            )
        if status == 403:
            raise Unusable(
                f"the service at {self.url} refused the request (403: {text})",
                "API_TOKEN is a token that may only read: set it to one with write "
                "access, then run it again",
            )
        if status == 404 and _slug(payload) != "not-found":
            # Not a resource that does not exist: a path the service does not have.
            raise Unusable(
                f"the service at {self.url} has no {route} (404)",
                "check --url (the service's base URL, as http://host:port), "
                "and that the service is recent enough to have it",
            )
        return status, payload, raw


class Lookups:
    """The ids of the students and terms a file names by email or code, asked once each.

    Kept for the last LOOKUPS_KEPT of each (a file is usually sorted by
    student), so memory stays flat whatever the file's size. A name that
    finds nothing is kept too: it is each of its rows' refusal.
    """

    def __init__(self, client: Client):
        self._client = client
        self._students: OrderedDict[str, int | None] = OrderedDict()
        self._terms: OrderedDict[str, int | None] = OrderedDict()

    async def student(self, email: str, what: str) -> int | Result | None:
        """The id of the student with that email (any letter case); None: no such student."""
        return await self._find(self._students, "/students", "email", "student_email", email, what)

    async def term(self, code: str, what: str) -> int | Result | None:
        """The id of the term with that code (any letter case); None: no such term."""
        return await self._find(self._terms, "/terms", "code", "term_code", code, what)

    async def _find(
        self,
        kept: OrderedDict[str, int | None],
        path: str,
        name: str,
        column: str,
        value: str,
        what: str,
    ) -> int | Result | None:
        folded = fold(value)
        if folded in kept:
            kept.move_to_end(folded)
            return kept[folded]
        status, payload, raw = await self._client.call(
            "GET", path, what, query={name: value, "limit": "1"}
        )
        if status == 422:
            # A value the lookup refuses (an email without @): the row's error,
            # named by its column.
            said = _result({"status": 422, "body": payload})
            return replace(said, errors=[(column, m) for _, m in said.errors])
        items = payload.get("items") if status == 200 and isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise self._client.unexpected(status, payload, raw, f"GET {path}?{name}=")
        found = items[0].get("id") if items else None
        kept[folded] = found
        if len(kept) > LOOKUPS_KEPT:
            kept.popitem(last=False)
        return found


LOOKUPS_KEPT = 10_000


async def _every(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """Their results in order; when one fails, the others are cancelled before it is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def resolve_terms(lookups: Lookups, batch: list[Row]) -> None:
    """Each row's term_code turned into the term's id; a code no term has is that row's error.

    The item grows by at most 14 bytes (`"term_id":` and 19 digits for
    `"term_code":"X"`): 14,000 for a batch of 1,000, within what MAX_BODY
    leaves below the service's 1 MiB.
    """
    for row in batch:
        if row.item is None or not row.fields.get("term_code", "").strip():
            continue
        item = orjson.loads(row.item)
        code = item.pop("term_code")
        found = await lookups.term(code, f"line {row.line}")
        if found is None:
            found = Result(404, "term-not-found", "")
        if isinstance(found, Result):
            row.item, row.error = None, (found.outcome, reason(found, row.fields))
        else:
            row.item = orjson.dumps({**item, "term_id": found})


async def send_each(client: Client, lookups: Lookups, kind: Kind, batch: list[Row]) -> list[Result]:
    """The rows of a kind without a batch endpoint, one request each, CONCURRENCY at a time.

    Their students are looked up first; then each student's rows go one
    after another, in the file's order, and the students' side by side. One
    Result per row sent, in order.
    """
    sent = [row for row in batch if row.item is not None]
    items = [orjson.loads(row.item) for row in sent if row.item is not None]

    async def student(item: dict[str, Any], row: Row) -> int | Result | None:
        if "student_id" in item:
            return int(item.pop("student_id"))
        return await lookups.student(item.pop("student_email"), f"line {row.line}")

    students = await _every(student(item, row) for item, row in zip(items, sent, strict=True))
    results: list[Result | None] = [None] * len(sent)
    by_student: dict[int, list[int]] = {}
    for i, found in enumerate(students):
        if found is None:
            results[i] = Result(404, "student-not-found", "")
        elif isinstance(found, Result):
            results[i] = found
        else:
            by_student.setdefault(found, []).append(i)

    async def apply(student_id: int, rows: list[int]) -> None:
        path = kind.path.replace("{student_id}", str(student_id))
        held = (
            await _reasons_held(client, path, kind, sent[rows[0]])
            if kind.name == "holds"
            else set()
        )
        for i in rows:
            if held is None:
                results[i] = Result(404, "student-not-found", "")
                continue
            said = items[i].get("reason")
            if isinstance(said, str) and fold(said.strip()) in held:
                results[i] = Result(200, "already-held", "")
                continue
            status, payload, _ = await client.call(
                "POST",
                path,
                f"line {sent[i].line}",
                body=orjson.dumps(items[i]),
                key=f"import-{client.run}-line-{sent[i].line}",
                route=kind.path,
            )
            results[i] = _row_result(kind, status, payload)
            if status == 201 and isinstance(said, str):
                held.add(fold(said.strip()))

    await _every(apply(student_id, rows) for student_id, rows in by_student.items())
    return [result for result in results if result is not None]


async def _reasons_held(client: Client, path: str, kind: Kind, row: Row) -> set[str] | None:
    """The reasons of the student's holds, folded; None when the student does not exist."""
    held: set[str] = set()
    query = {"limit": "500"}
    while True:
        status, payload, raw = await client.call(
            "GET", path, f"line {row.line}", query=query, route=kind.path
        )
        if status == 404:
            return None
        page = payload if status == 200 and isinstance(payload, dict) else {}
        if not isinstance(page.get("items"), list):
            raise client.unexpected(status, payload, raw, f"GET {kind.path}")
        held |= {fold(str(hold.get("reason", "")).strip()) for hold in page["items"]}
        if not page.get("next_cursor"):
            return held
        query = {"limit": "500", "cursor": str(page["next_cursor"])}


# A status of a row sent alone, as the outcome a batch would have named.
_SENT_ALONE = {"holds": "placed", "completions": "added"}


def _row_result(kind: Kind, status: int, payload: Any) -> Result:
    """The answer to one row's POST as a batch item's result."""
    if status == 201:
        return Result(201, _SENT_ALONE[kind.name], "")
    entry = {"status": status, "body": payload}
    if status == 404 and _slug(payload) == "not-found":
        entry["outcome"] = "student-not-found"
    return _result(entry)


def _connection_error(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        why = (
            "connection refused"
            if isinstance(exc.os_error, ConnectionRefusedError)
            else exc.os_error.strerror or str(exc.os_error)
        )
        return f"cannot connect to {exc.host}:{exc.port} ({why})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before the answer"
    return f"the connection failed ({type(exc).__name__}: {exc})"


# --- Progress, rejects and the summary ----------------------------------------------------


class Progress:
    """A tqdm bar on a terminal; elsewhere a plain line on stderr every `interval` seconds."""

    def __init__(self, label: str, total: int | None, interval: float, stream: IO[str]):
        self.label = label
        self.total = total
        self.interval = interval
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._last = self.started
        self._bar: tqdm | None = None
        if stream.isatty():
            self._bar = tqdm(total=total, desc=label, unit=" rows", file=stream, dynamic_ncols=True)

    def advance(self, rows: int) -> None:
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} rows ({100 * self.done / self.total:.0f}%)"
        else:
            text += " rows"
        text += f", {rate:.0f} rows/s, {tqdm.format_interval(elapsed)} elapsed"
        if self.total and rate > 0:
            text += f", ETA {tqdm.format_interval((self.total - self.done) / rate)}"
        return text

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Rejects:
    """FILE.rejected.csv, opened at the first rejected row and written as rows come."""

    def __init__(self, path: Path, header: list[str], kept: list[int], delimiter: str):
        self.path = path
        self.header = [header[i] for i in kept] + list(REJECT_COLUMNS)
        self.kept = kept
        self.delimiter = delimiter
        self.count = 0
        self._file: TextIO | None = None
        self._writer: Any = None

    def write(self, row: Row, outcome: str, reason: str) -> None:
        if self._file is None:
            # With a BOM, so a spreadsheet opens it as UTF-8.
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file, delimiter=self.delimiter)
            self._writer.writerow([neutralised(name) for name in self.header])
        values = [row.values[i] if i < len(row.values) else "" for i in self.kept]
        cells = [*values, str(row.line), outcome, reason]
        self._writer.writerow([neutralised(cell) for cell in cells])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class Tally:
    kind: Kind
    counts: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    last_line: int = 0

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1
        self.rows += 1

    @property
    def applied(self) -> int:
        return sum(self.counts[o.slug] for o in self.kind.applied)

    @property
    def changed(self) -> int:
        return sum(self.counts[o.slug] for o in self.kind.applied if o.changed)

    @property
    def rejected(self) -> int:
        return self.rows - self.applied

    def is_applied(self, outcome: str) -> bool:
        return any(o.slug == outcome for o in self.kind.applied)

    def summary(self, source: str, seconds: float, rejects: Rejects, complete: bool) -> str:
        rate = self.rows / seconds if seconds > 0 else 0.0
        head = "" if complete else "INCOMPLETE: "
        lines = [
            f"{head}import {self.kind.name} from {source}: {self.rows} rows in {seconds:.1f} s"
            f" ({rate:.0f} rows/s)"
        ]
        width = 32
        lines.append(f"  {'applied':<{width}}{self.applied:>9}")
        for outcome in self.kind.applied:
            if self.counts[outcome.slug]:
                lines.append(f"    {outcome.label:<{width - 2}}{self.counts[outcome.slug]:>9}")
        lines.append(f"  {'not applied':<{width}}{self.rejected:>9}")
        refused = sorted(
            (slug, n) for slug, n in self.counts.items() if n and not self.is_applied(slug)
        )
        for slug, n in refused:
            label = "rejected as invalid" if slug == "invalid" else f"refused: {slug}"
            lines.append(f"    {label:<{width - 2}}{n:>9}")
        if rejects.count:
            lines.append(f"rejected rows (line and reason of each): {rejects.path}")
        if complete and self.rows and not self.changed and not self.rejected:
            lines.append("nothing changed: every row was already in place")
        return "\n".join(lines)


# --- The command --------------------------------------------------------------------------


@dataclass
class Options:
    kind: Kind
    file: str
    url: yarl.URL
    token: str | None
    batch_size: int
    retry_for: float
    timeout: float
    progress_interval: float
    rejected: Path | None


def rejected_path(options: Options) -> Path:
    if options.rejected is not None:
        return options.rejected
    if options.file == "-":
        return Path(f"{options.kind.name}-stdin.rejected.csv")
    return Path(options.file + ".rejected.csv")


def _open(file: str) -> tuple[io.BufferedReader, Path | None]:
    if file == "-":
        return sys.stdin.buffer, None
    path = Path(file)
    try:
        if path.is_dir():
            raise Unusable(f"{file}: is a directory, not a CSV file")
        return path.open("rb"), path
    except OSError as exc:
        raise Unusable(f"{file}: cannot open: {exc.strerror or exc}") from None


async def _import(
    source: CsvFile, options: Options, tally: Tally, rejects: Rejects, progress: Progress
) -> None:
    """Every row of the file, a batch at a time, counted and its rejects written as it goes."""
    kind = options.kind
    async with Client(
        options.url, options.token, options.retry_for, options.timeout, progress.message
    ) as client:
        lookups = Lookups(client)
        for number, batch in enumerate(batches(source.rows(), options.batch_size), 1):
            if kind.each:
                answers = await send_each(client, lookups, kind, batch)
            else:
                await resolve_terms(lookups, batch)
                items = [row.item for row in batch if row.item is not None]
                answers = await client.send(kind.path, number, items) if items else []
            results = iter(answers)
            for row in batch:
                if row.error is not None:
                    outcome, said = row.error
                else:
                    result = next(results)
                    outcome = result.outcome
                    said = "" if tally.is_applied(outcome) else reason(result, row.fields)
                tally.add(outcome)
                tally.last_line = row.line
                if not tally.is_applied(outcome):
                    rejects.write(row, outcome, said)
            progress.advance(len(batch))


async def run(options: Options, out: TextIO, err: TextIO) -> int:
    # Beyond csv's 128 KiB: a long value is its row's error, not the file's.
    csv.field_size_limit(MAX_RECORD)
    stream, path = _open(options.file)
    # The copy of the file the rows are sent from; gone when the import ends.
    # Unbuffered, so that a full disk is found as the copy is written.
    with stream, tempfile.TemporaryFile(prefix="enrollment-import-", buffering=0) as spool:
        source, total = snapshot(
            stream, spool, options.file, options.kind, warn=lambda text: print(text, file=err)
        )
        rejects = Rejects(rejected_path(options), source.header, source.kept, source.delimiter)
        # The rejected file is this run's: one left by an earlier run goes.
        rejects.path.unlink(missing_ok=True)
        label = f"{options.kind.name} ({'stdin' if path is None else path.name})"
        progress = Progress(label, total, options.progress_interval, err)
        tally = Tally(options.kind)
        source_name = "standard input" if path is None else options.file
        try:
            await _import(source, options, tally, rejects, progress)
        except Unusable as exc:
            progress.close()
            where = (
                f"the rows up to line {tally.last_line} were applied or rejected ({tally.rows} rows)"
                if tally.rows
                else "no row was sent"
            )
            print(f"import stopped: {exc}; {where}; {exc.advice}", file=err)
            if tally.rows:
                print(tally.summary(source_name, progress.elapsed(), rejects, False), file=out)
            return EXIT_UNUSABLE
        finally:
            progress.close()
            rejects.close()
    print(tally.summary(source_name, progress.elapsed(), rejects, True), file=out)
    return EXIT_REJECTED if tally.rejected else EXIT_APPLIED


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_BATCH}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


DESCRIPTION = (
    "Send a CSV file to a running service through its API. Columns: students "
    "name,email[,sourced_id]; courses code,title[,capacity][,waitlist_capacity]"
    "[,term_id or term_code][,credits][,meetings][,prerequisites][,sourced_id] "
    "(empty capacity: no limit; meetings as mon wed 09:00-10:00; fri 13:00-14:00); "
    "enrollments email or student_sourced_id,code or course_sourced_id[,action]"
    "[,waitlist][,term_id or term_code][,sourced_id] (action enroll or drop, default "
    "enroll; waitlist yes or no, default no); terms code,title,starts_on,ends_on"
    "[,registration_opens_at][,registration_closes_at][,drop_deadline][,max_credits]"
    "[,sourced_id]; holds student_id or student_email,reason; completions student_id or "
    "student_email,code[,completed_at]. A row with a sourced_id is matched by it. "
    "UTF-8 with or without BOM, comma, semicolon or tab separated. oneroster BUNDLE: a "
    "OneRoster 1.2 CSV bundle, a zip or a folder (see docs/oneroster.md). "
    "Rows not applied go to FILE.rejected.csv with their line and reason. "
    "Exit status: 0 every row applied, 1 some rows rejected, 2 the file or the "
    "service could not be used. The token, if the service needs one, is read "
    "from API_TOKEN. See docs/import.md."
)


def add_parser(commands: Any) -> None:
    """The `import` subcommand, on `python -m service`'s subparsers."""
    parser = commands.add_parser(
        "import",
        help="import a CSV file of students, courses, enrollments, terms, holds or completions, "
        "or a OneRoster 1.2 bundle, into a running service",
        description=DESCRIPTION,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The importer's arguments, the same for `enrollment-import` and `python -m service import`."""
    parser.add_argument(
        "kind",
        choices=[*sorted(KINDS), "oneroster"],
        help="what the file holds; oneroster: a OneRoster 1.2 CSV bundle",
    )
    parser.add_argument(
        "file",
        help="the CSV file, or - for standard input; for oneroster, the bundle's zip or folder",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the service's base URL (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        help=f"rows per request, 1..{MAX_BATCH} (default 500); for holds and completions, "
        "sent a row per request, the rows read and reported at a time",
    )
    parser.add_argument(
        "--retry-for",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="how long to retry a batch the service did not answer before giving up (default 120)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the answer to one batch (default 60)",
    )
    parser.add_argument(
        "--progress-interval",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="when stderr is not a terminal, a progress line this often (default 5)",
    )
    parser.add_argument(
        "--rejected",
        type=Path,
        metavar="PATH",
        help="where to write the rows not applied (default FILE.rejected.csv; "
        "for stdin KIND-stdin.rejected.csv; for oneroster, a folder, default BUNDLE.rejected)",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="oneroster: delete the students, courses, terms and enrollments a bulk file "
        "leaves out (see --max-prune)",
    )
    parser.add_argument(
        "--max-prune",
        type=prune_limit,
        metavar="LIMIT",
        help="oneroster: the most --prune may delete of each kind, a share (10%%, the default) "
        "or a number of records; a prune above it stops the import before anything is sent",
    )


def prune_limit(text: str) -> Any:
    from .prune import limit

    return limit(text)


def main(args: argparse.Namespace) -> int:
    err = sys.stderr
    url = yarl.URL(args.url)
    if url.scheme not in ("http", "https") or not url.host:
        print(f"import: --url must be an http(s) URL, not {args.url!r}", file=err)
        return EXIT_UNUSABLE
    if args.kind == "oneroster":
        from . import oneroster

        return oneroster.main(args)
    if args.prune or args.max_prune is not None:
        print("import: --prune and --max-prune are for oneroster bundles only", file=err)
        return EXIT_UNUSABLE
    options = Options(
        kind=KINDS[args.kind],
        file=args.file,
        url=url,
        token=os.environ.get("API_TOKEN") or None,
        batch_size=args.batch_size,
        retry_for=args.retry_for,
        timeout=args.timeout,
        progress_interval=args.progress_interval,
        rejected=args.rejected,
    )
    try:
        return asyncio.run(run(options, sys.stdout, err))
    except Unusable as exc:
        print(f"import: {exc}", file=err)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("import: interrupted; run it again to finish", file=err)
        return 130
