"""enrollment-import oneroster BUNDLE: a OneRoster 1.2 CSV bundle through the service's API.

The same command is `python -m service import oneroster BUNDLE`. Like the
CSV import (importer.py, whose client, progress, rejected files and exit
status it shares), it is a client of a running service: terms, courses,
students and enrollments go through POST /terms/batch, /courses/batch,
/students/batch and /enrollments/batch, each carrying the record's
sourcedId as its `sourced_id`, so every rule applies to every row (a
roster cannot put a student over a capacity or into a time conflict) and
every change is an event; deletions go through DELETE, found by
`?sourced_id=`. bundle.py reads and checks the bundle first; prune.py
plans what --prune would delete before anything is sent.
docs/oneroster.md is the guide.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import yarl

from . import prune as pruning
from .bundle import (
    MANIFEST,
    NOT_KEPT,
    TOBEDELETED,
    Bundle,
    Roster,
    Source,
    check,
    listed,
    read_manifest,
)
from .deletions import DROPPED, delete
from .importer import (
    EXIT_APPLIED,
    EXIT_REJECTED,
    EXIT_UNUSABLE,
    MAX_VALUE,
    Client,
    Progress,
    Rejects,
    Result,
    Unusable,
    _every,
    _integer,
    _problem_text,
    batches,
)

# The order the files are sent in: what a row names is there before it.
APPLY_ORDER = (
    "academicSessions.csv",
    "orgs.csv",
    "courses.csv",
    "classes.csv",
    "users.csv",
    "roles.csv",
    "enrollments.csv",
)
# Where the rows of each file the service keeps go.
BATCHES = {
    "academicSessions.csv": "/terms/batch",
    "classes.csv": "/courses/batch",
    "users.csv": "/students/batch",
    "enrollments.csv": "/enrollments/batch",
}
# The files whose tobedeleted rows are deleted first, the dependents first
# (a term cannot be deleted while a course belongs to it).
DELETE_ORDER = tuple(reversed(APPLY_ORDER))
# What a row can end in, as the summary counts them.
COUNTS = ("read", "created", "updated", "unchanged", "deleted", "used", "skipped", "rejected")
# A batch result's outcome, as the summary counts it.
APPLIED = {
    "created": "created",
    "enrolled": "created",
    "updated": "updated",
    "unchanged": "unchanged",
    "already-enrolled": "unchanged",
    # Waiting already for a seat in the class: the service keeps the place.
    "already-waiting": "unchanged",
}
# The service's names for a file's columns, for the reasons of a 422.
FIELD_COLUMNS = {
    "academicSessions.csv": {
        "sourced_id": "sourcedId",
        "code": "sourcedId",
        "title": "title",
        "starts_on": "startDate",
        "ends_on": "endDate",
    },
    "classes.csv": {
        "sourced_id": "sourcedId",
        "code": "classCode",
        "title": "title",
        "term_id": "termSourcedIds",
        "capacity": "metadata.capacity",
    },
    "users.csv": {"sourced_id": "sourcedId", "name": "givenName and familyName", "email": "email"},
    "enrollments.csv": {
        "sourced_id": "sourcedId",
        "student_sourced_id": "userSourcedId",
        "course_sourced_id": "classSourcedId",
    },
}
NOT_A_STUDENT = "users without the student role"
MAX_CODE = 32  # a term's code, as the service takes it


def term_code(sourced_id: str) -> str:
    """A term's code: its sourcedId when the service takes that as a code, else one made of it.

    A code is 1 to 32 characters without white space and unique; a sourcedId
    is unique but may be longer (a UUID is 36). A longer one gives its
    first 23 characters, `~` and 8 hex digits of its SHA-256: the same on
    every import, and unique unless two sourcedIds share both.
    """
    if len(sourced_id) <= MAX_CODE:
        return sourced_id
    digest = hashlib.sha256(sourced_id.encode("utf-8")).hexdigest()[:8]
    return f"{sourced_id[: MAX_CODE - 9]}~{digest}"


# --- Each row, mapped ----------------------------------------------------------------------


@dataclass
class Entry:
    """One row of a file, and what the import does with it."""

    line: int
    values: list[str]  # as read, for the rejected file
    fields: dict[str, str]
    sourced_id: str = ""
    body: dict[str, Any] | None = None  # the batch item
    item: bytes | None = None  # the batch item as sent
    delete: str | None = None  # the resource (students, courses, terms) to delete it from
    if_student: bool = False  # sent only if a student has its sourcedId already
    terms: list[str] = field(default_factory=list)  # a class's termSourcedIds
    drop: bool = False
    columns: dict[str, str] = field(
        default_factory=dict
    )  # a field's column, where not the file's usual
    outcome: str = ""  # created, updated, unchanged, deleted, used, skipped, or a refusal
    reason: str = ""

    def send(self, body: dict[str, Any]) -> None:
        self.body = body
        self.item = orjson.dumps(body)

    def decide(self, outcome: str, reason: str = "") -> None:
        self.body = self.item = None
        self.delete = None
        self.outcome, self.reason = outcome, reason

    def skip(self, reason: str) -> None:
        self.decide("skipped", reason)

    def invalid(self, reason: str) -> None:
        self.decide("invalid", reason)

    @property
    def decided(self) -> bool:
        return bool(self.outcome)


def _session(entry: Entry, roster: Roster, deleting: bool) -> None:
    fields = entry.fields
    kind = fields["type"].strip()
    if kind and kind not in ("term", "semester"):
        # schoolYear and gradingPeriod: registration happens per term.
        entry.skip(f"{kind} sessions")
    elif deleting:
        entry.delete = "terms"
    elif not kind:
        entry.invalid("type is empty")
    else:
        entry.send(
            {
                "sourced_id": entry.sourced_id,
                "code": term_code(entry.sourced_id),
                "title": fields["title"],
                "starts_on": fields["startDate"].strip(),
                "ends_on": fields["endDate"].strip(),
            }
        )


def _org(entry: Entry, roster: Roster, deleting: bool) -> None:
    entry.skip("orgs (the school is the service's one org)")


def _course(entry: Entry, roster: Roster, deleting: bool) -> None:
    if deleting:
        entry.skip("courses (stored only as their classes)")
    else:
        entry.decide("used")  # its courseCode, for its classes


def _class(entry: Entry, roster: Roster, deleting: bool) -> None:
    fields = entry.fields
    if deleting:
        entry.delete = "courses"
        return
    code = fields["classCode"].strip()
    if not code:
        course = fields["courseSourcedId"].strip()
        code = roster.course_codes.get(course, "")
        entry.columns["code"] = f"courseCode of course {course} (courses.csv)"
        if not code:
            entry.invalid(
                "classCode is empty, and "
                + (
                    f"courses.csv gives no courseCode for course {course}"
                    if course
                    else "so is courseSourcedId"
                )
            )
            return
    entry.terms = listed(fields["termSourcedIds"])
    if not entry.terms:
        entry.invalid("termSourcedIds is empty")
        return
    body: dict[str, Any] = {"sourced_id": entry.sourced_id, "code": code, "title": fields["title"]}
    if "metadata.capacity" in fields:
        # An empty cell is no limit; without the column a course keeps its own.
        text = fields["metadata.capacity"]
        body["capacity"] = _integer(text) if text.strip() else None
    entry.send(body)


def _user(entry: Entry, roster: Roster, deleting: bool) -> None:
    fields = entry.fields
    student = entry.sourced_id in roster.students
    other = not student and (roster.roles_complete or entry.sourced_id in roster.others)
    if deleting:
        if other:
            entry.skip(NOT_A_STUDENT)
        else:
            entry.delete = "students"
        return
    if other:
        entry.skip(NOT_A_STUDENT)
        return
    email = fields["email"].strip()
    if not email:
        entry.invalid("email is empty (the service knows a student by email)")
        return
    name = " ".join(
        part for part in (fields["givenName"].strip(), fields["familyName"].strip()) if part
    )
    entry.send({"sourced_id": entry.sourced_id, "name": name, "email": email})
    # A user the bundle gives no role: a student if the service has them as one.
    entry.if_student = not student


def _role(entry: Entry, roster: Roster, deleting: bool) -> None:
    fields = entry.fields
    if deleting:
        entry.skip("roles' deletions (delete the user, or their enrollments)")
    elif not fields["userSourcedId"].strip():
        entry.invalid("userSourcedId is empty")
    elif not (role := fields["role"].strip()):
        entry.invalid("role is empty")
    elif role == "student":
        entry.decide("used")  # its user is a student
    else:
        entry.skip(f"{role} roles")


def _enrollment(entry: Entry, roster: Roster, deleting: bool) -> None:
    fields = entry.fields
    role = fields["role"].strip()
    user, klass = fields["userSourcedId"].strip(), fields["classSourcedId"].strip()
    if role and role != "student":
        entry.skip(f"{role} enrollments")
    elif not user:
        entry.invalid("userSourcedId is empty")
    elif not klass:
        entry.invalid("classSourcedId is empty")
    elif deleting:
        entry.drop = True
        entry.send({"action": "drop", "student_sourced_id": user, "course_sourced_id": klass})
    elif not role:
        entry.invalid("role is empty")
    else:
        entry.send(
            {"sourced_id": entry.sourced_id, "student_sourced_id": user, "course_sourced_id": klass}
        )


MAPPERS = {
    "academicSessions.csv": _session,
    "orgs.csv": _org,
    "courses.csv": _course,
    "classes.csv": _class,
    "users.csv": _user,
    "roles.csv": _role,
    "enrollments.csv": _enrollment,
}
STATUSES = ("", "active", TOBEDELETED)


def entries(source: Source, roster: Roster, deleting: bool) -> Iterator[Entry]:
    """The rows of a file that one sweep handles, each mapped.

    The deletions sweep takes a delta file's tobedeleted rows; the other
    sweep takes the rest. Every row is looked at in both (a sourcedId
    repeated is told by line, in the file's order).
    """
    width = len(source.header)
    for line, values in source.records():
        fields = source.fields(values)
        status = fields["status"].strip().lower()
        tobedeleted = status == TOBEDELETED
        entry = Entry(line, values, fields, sourced_id=fields["sourcedId"].strip())
        first = source.keys.first_line(entry.sourced_id, line) if entry.sourced_id else None
        if deleting != (tobedeleted and source.mode == "delta"):
            continue
        long = next((name for name, value in fields.items() if len(value) > MAX_VALUE), None)
        if len(values) > width:
            entry.invalid(f"the row has {len(values)} fields, the header {width}")
        elif not entry.sourced_id:
            entry.invalid("sourcedId is empty")
        elif first is not None:
            # Two rows of one record: the second would undo the first on every run.
            entry.decide("duplicate", f"duplicate of line {first}")
        elif long is not None:
            entry.invalid(f"{long}: {len(fields[long])} characters, more than the service takes")
        elif status not in STATUSES:
            entry.invalid(f"status: {fields['status'].strip()!r} is not active or tobedeleted")
        elif tobedeleted and not deleting:
            entry.skip("tobedeleted rows of a bulk file (--prune deletes what it leaves out)")
        else:
            MAPPERS[source.name](entry, roster, deleting)
        yield entry


# --- Reasons, in the bundle's terms ----------------------------------------------------------


def reason(name: str, entry: Entry, result: Result) -> str:
    """Why a row was not applied: its columns and sourcedIds; the service's words for a rule."""
    fields = entry.fields
    user = fields.get("userSourcedId", "").strip()
    klass = fields.get("classSourcedId", "").strip()
    body = entry.body or {}
    code = str(body.get("code", ""))
    column = {**FIELD_COLUMNS.get(name, {}), **entry.columns}
    wording = {
        "student-not-found": f"no student has sourcedId {user} (userSourcedId): "
        "not a student of users.csv, or its row was rejected",
        "course-not-found": f"no course has sourcedId {klass} (classSourcedId): "
        "not a class of classes.csv, or its row was rejected",
        "course-full": f"class {klass} is full",
        "waitlist-full": f"class {klass} is full",
        "email-taken": f"email {body.get('email', '')}: a student of another sourcedId has it",
        "code-taken": f"{column.get('code', 'code')} {code}: "
        + (
            "another term has that code"
            if name == "academicSessions.csv"
            else "another class of the term has that code"
        ),
        "capacity-below-enrollments": f"metadata.capacity {fields.get('metadata.capacity', '').strip()}: "
        f"class {entry.sourced_id} has more students enrolled",
    }
    if result.outcome in wording:
        return wording[result.outcome]
    if not result.errors:
        return result.detail
    said = []
    for name_, message in result.errors:
        where = column.get(name_, name_)
        if name_ == "name" and not body.get("name"):
            said.append("givenName and familyName are empty")
        elif where in fields and not fields[where].strip():
            said.append(f"{where} is empty")
        else:
            said.append(f"{where}: {message}")
    return "; ".join(said)


# --- The service's ids by sourcedId --------------------------------------------------------

LOOKUPS_KEPT = 10_000


class SourcedIds:
    """The id of each student, course and term named by sourcedId, asked once each (`?sourced_id=`)."""

    def __init__(self, client: Client):
        self._client = client
        self._kept: dict[str, OrderedDict[str, int | None]] = {}

    async def find(self, resource: str, sourced_id: str, what: str) -> int | None:
        kept = self._kept.setdefault(resource, OrderedDict())
        if sourced_id in kept:
            kept.move_to_end(sourced_id)
            return kept[sourced_id]
        status, payload, raw = await self._client.call(
            "GET", f"/{resource}", what, query={"sourced_id": sourced_id, "limit": "1"}
        )
        if status == 422:
            found = None  # a sourcedId the service could not hold names nothing
        else:
            items = payload.get("items") if status == 200 and isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise self._client.unexpected(status, payload, raw, f"GET /{resource}?sourced_id=")
            found = items[0].get("id") if items else None
        self.remember(resource, sourced_id, found)
        return found

    def remember(self, resource: str, sourced_id: str, found: int | None) -> None:
        kept = self._kept.setdefault(resource, OrderedDict())
        kept[sourced_id] = found
        kept.move_to_end(sourced_id)
        if len(kept) > LOOKUPS_KEPT:
            kept.popitem(last=False)


async def supports_sourced_ids(client: Client) -> None:
    """The service takes ?sourced_id= (is recent enough), and answers at --url at all."""
    status, payload, raw = await client.call(
        "GET", "/students", "the first request", query={"sourced_id": "probe", "limit": "1"}
    )
    if status == 422:
        raise Unusable(
            f"the service at {client.url} does not know sourced_id ({_problem_text(payload)})",
            "update the service to a release with OneRoster support",
        )
    if status != 200:
        raise client.unexpected(status, payload, raw, "GET /students?sourced_id=")


# --- The report ----------------------------------------------------------------------------


@dataclass
class Report:
    """One file's counts, skip reasons and refusals; its rejected rows written as they come."""

    name: str
    mode: str
    rejects: Rejects
    counts: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    last_line: int = 0

    def add(self, entry: Entry) -> None:
        self.counts["read"] += 1
        self.last_line = max(self.last_line, entry.line)
        if entry.outcome in COUNTS:
            self.counts[entry.outcome] += 1
            if entry.outcome == "skipped":
                self.skips[entry.reason] += 1
            return
        self.counts["rejected"] += 1
        self.refusals[entry.outcome] += 1
        self.rejects.write(entry, entry.outcome, entry.reason)  # type: ignore[arg-type]


# --- The command ---------------------------------------------------------------------------


@dataclass
class Options:
    bundle: Path
    url: yarl.URL
    token: str | None
    batch_size: int
    retry_for: float
    timeout: float
    progress_interval: float
    rejected: Path | None
    prune: bool
    max_prune: pruning.Limit


def rejected_folder(options: Options) -> Path:
    """--rejected, else BUNDLE.rejected beside the bundle (`roster.zip.rejected`)."""
    if options.rejected is not None:
        return options.rejected
    bundle = options.bundle
    if bundle.name in ("", ".."):  # the current folder, or its parent
        bundle = bundle.resolve()
    return bundle.with_name(bundle.name + ".rejected")


class Import:
    """Pass 2: the checked files, their deletions first, then the rest; then the prune."""

    def __init__(self, options: Options, roster: Roster, client: Client, err: TextIO):
        self.options = options
        self.roster = roster
        self.client = client
        self.err = err
        self.ids = SourcedIds(client)
        self.batch = 0  # batches are numbered across the run: each its Idempotency-Key
        self.progress: Progress | None = None
        self.folder = rejected_folder(options)
        self.reports = {
            name: Report(
                name,
                source.mode,
                Rejects(self.folder / f"{name}.rejected.csv", source.header, source.kept, ","),
            )
            for name, source in roster.sources.items()
        }
        self.pruned: list[pruning.Outcome] = []
        self.current = ""  # the file being sent, for a stop's message
        self.sent = False  # a request that may change something has been sent

    def where(self) -> str:
        """How far the import got, for a stop's message."""
        if not self.sent:
            return "no row was sent and nothing was deleted"
        report = self.reports.get(self.current)
        if report is None:
            return f"the bundle's rows were applied or rejected; {self.current} stopped part way"
        return f"{self.current}: the rows up to line {report.last_line} were applied or rejected"

    def message(self, text: str) -> None:
        if self.progress is not None:
            self.progress.message(text)
        else:
            self.err.write(text + "\n")
            self.err.flush()

    async def run(self, plan: list[pruning.Doomed]) -> None:
        deleting = [
            n
            for n in DELETE_ORDER
            if n in self.roster.sources and self.roster.sources[n].mode == "delta"
        ]
        total = sum(self.roster.sources[n].deletions for n in deleting)
        if total:
            self.progress = Progress(
                "tobedeleted rows", total, self.options.progress_interval, self.err
            )
            try:
                for name in deleting:
                    await self.sweep(name, deleting=True)
            finally:
                self.progress.close()
        for name in APPLY_ORDER:
            source = self.roster.sources.get(name)
            if source is None:
                continue
            rows = source.rows - (source.deletions if source.mode == "delta" else 0)
            self.progress = Progress(name, rows, self.options.progress_interval, self.err)
            try:
                await self.sweep(name, deleting=False)
            finally:
                self.progress.close()
        self.progress = None
        await pruning.execute(self, plan)

    async def sweep(self, name: str, *, deleting: bool) -> None:
        source = self.roster.sources[name]
        report = self.reports[name]
        self.current = name
        for batch in batches(entries(source, self.roster, deleting), self.options.batch_size):
            await self.apply(name, batch)
            for entry in batch:
                report.add(entry)
            assert self.progress is not None
            self.progress.advance(len(batch))

    async def apply(self, name: str, batch: list[Entry]) -> None:
        """One batch of a file's rows: lookups, deletions, then its items in one request."""
        self.sent = self.sent or any(e.item is not None or e.delete for e in batch)
        await _every(self._delete(entry) for entry in batch if entry.delete is not None)
        await _every(self._if_student(entry) for entry in batch if entry.if_student and entry.item)
        for entry in batch:
            if entry.terms and entry.item is not None:
                await self._term(entry)
        sent = [entry for entry in batch if entry.item is not None]
        if not sent:
            return
        self.batch += 1
        results = await self.client.send(BATCHES[name], self.batch, [e.item for e in sent])  # type: ignore[misc]
        for entry, result in zip(sent, results, strict=True):
            counted = (DROPPED if entry.drop else APPLIED).get(result.outcome)
            if counted is not None:
                entry.decide(counted)
                if name == "academicSessions.csv":
                    self._remember_term(entry, result)
            else:
                said = reason(name, entry, result)
                entry.decide(result.outcome, said)

    def _remember_term(self, entry: Entry, result: Result) -> None:
        # The batch answered the term's id: its classes need no lookup.
        if isinstance(result.body, dict) and isinstance(result.body.get("id"), int):
            self.ids.remember("terms", entry.sourced_id, result.body["id"])

    async def _term(self, entry: Entry) -> None:
        """A class's course gets the first of its termSourcedIds that is a term of the service."""
        for sourced_id in entry.terms:
            found = await self.ids.find("terms", sourced_id, f"line {entry.line}")
            if found is not None:
                assert entry.body is not None
                entry.send({**entry.body, "term_id": found})
                return
        entry.decide(
            "term-not-found",
            f"termSourcedIds: none of {', '.join(entry.terms)} is a term or semester of the service "
            "(schoolYear and gradingPeriod sessions are not imported)",
        )

    async def _if_student(self, entry: Entry) -> None:
        if await self.ids.find("students", entry.sourced_id, f"line {entry.line}") is None:
            entry.skip(NOT_A_STUDENT)

    async def _delete(self, entry: Entry) -> None:
        resource = entry.delete
        assert resource is not None
        what = f"line {entry.line}"
        found = await self.ids.find(resource, entry.sourced_id, what)
        if found is None:
            entry.decide("unchanged")  # nothing has that sourcedId: gone already
            return
        outcome, said = await delete(self.client, resource, found, what)
        if outcome in ("deleted", "unchanged"):
            self.ids.remember(resource, entry.sourced_id, None)
        entry.decide(outcome, said)


def skipped_files(bundle: Bundle, roster: Roster, modes: dict[str, str]) -> list[tuple[str, str]]:
    """The bundle's files not read, with why."""
    skipped = []
    for name in bundle.names:
        if name == MANIFEST or name in roster.sources:
            continue
        if name in MAPPERS:
            why = f"{MANIFEST} marks it {modes.get(name, 'absent')}: not read"
        elif name in NOT_KEPT:
            why = NOT_KEPT[name]
        else:
            why = "not a file of OneRoster's rostering"
        skipped.append((name, why))
    return skipped


def summary(
    source: str,
    run: Import,
    skipped: list[tuple[str, str]],
    seconds: float,
    complete: bool,
) -> str:
    reports = [run.reports[name] for name in APPLY_ORDER if name in run.reports]
    rows = sum(r.counts["read"] for r in reports)
    rate = rows / seconds if seconds > 0 else 0.0
    head = "" if complete else "INCOMPLETE: "
    lines = [
        f"{head}import oneroster from {source}: {rows} rows in {seconds:.1f} s ({rate:.0f} rows/s)",
        f"  {'file':<22}{'mode':<7}" + "".join(f"{c:>10}" for c in COUNTS),
    ]
    for r in reports:
        lines.append(f"  {r.name:<22}{r.mode:<7}" + "".join(f"{r.counts[c]:>10}" for c in COUNTS))
    for name, why in skipped:
        lines.append(f"  {name:<22}skipped: {why}")
    for r in reports:
        if r.skips:
            said = ", ".join(f"{n} {why}" for why, n in sorted(r.skips.items()))
            lines.append(f"{r.name}: skipped {said}")
    for r in reports:
        if r.refusals:
            said = ", ".join(f"{n} {slug}" for slug, n in sorted(r.refusals.items()))
            lines.append(f"{r.name}: rejected {said}")
    lines += [outcome.line() for outcome in run.pruned]
    rejected = sum(r.rejects.count for r in reports) + sum(o.refused for o in run.pruned)
    if rejected:
        lines.append(f"rejected rows (line and reason of each): {run.folder}")
    changed = sum(r.counts[c] for r in reports for c in ("created", "updated", "deleted"))
    changed += sum(o.deleted for o in run.pruned)
    if complete and rows and not changed and not rejected:
        lines.append("nothing changed: every row was already in place")
    return "\n".join(lines)


async def run(options: Options, out: TextIO, err: TextIO) -> int:
    started = time.monotonic()
    with (
        Bundle(options.bundle) as bundle,
        tempfile.TemporaryDirectory(prefix="enrollment-import-") as copies,
    ):
        manifest = read_manifest(bundle)
        roster = check(bundle, manifest, Path(copies), prune=options.prune)
        folder = rejected_folder(options)
        # This run's rejected files replace an earlier run's.
        for name in [f"{n}.rejected.csv" for n in MAPPERS] + [pruning.REJECTED]:
            (folder / name).unlink(missing_ok=True)
        async with Client(
            options.url, options.token, options.retry_for, options.timeout, print
        ) as client:
            work = Import(options, roster, client, err)
            client.notify = work.message
            try:
                await supports_sourced_ids(client)
                plan = (
                    await pruning.plan(client, roster, options.max_prune) if options.prune else []
                )
                folder.mkdir(parents=True, exist_ok=True)
                await work.run(plan)
                complete = True
            except Unusable as exc:
                complete = False
                print(f"import stopped: {exc}; {work.where()}; {exc.advice}", file=err)
            finally:
                for report in work.reports.values():
                    report.rejects.close()
                pruning.close(work.pruned)
                try:
                    folder.rmdir()  # only when empty: nothing was rejected
                except OSError:
                    pass
        if complete or work.sent:
            skipped = skipped_files(bundle, roster, manifest.modes)
            seconds = time.monotonic() - started
            print(summary(str(options.bundle), work, skipped, seconds, complete), file=out)
    if not complete:
        return EXIT_UNUSABLE
    rejected = any(r.counts["rejected"] for r in work.reports.values())
    rejected = rejected or any(o.refused for o in work.pruned)
    return EXIT_REJECTED if rejected else EXIT_APPLIED


def main(args: argparse.Namespace) -> int:
    """`import oneroster BUNDLE`, its arguments parsed by importer.add_arguments."""
    err = sys.stderr
    url = yarl.URL(args.url)
    if args.file == "-":
        print("import: a OneRoster bundle is a zip or a folder, not standard input", file=err)
        return EXIT_UNUSABLE
    options = Options(
        bundle=Path(args.file),
        url=url,
        token=os.environ.get("API_TOKEN") or None,
        batch_size=args.batch_size,
        retry_for=args.retry_for,
        timeout=args.timeout,
        progress_interval=args.progress_interval,
        rejected=args.rejected,
        prune=args.prune,
        max_prune=args.max_prune or pruning.DEFAULT_LIMIT,
    )
    try:
        return asyncio.run(run(options, sys.stdout, err))
    except Unusable as exc:
        print(f"import: {exc}", file=err)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("import: interrupted; run it again to finish", file=err)
        return 130
