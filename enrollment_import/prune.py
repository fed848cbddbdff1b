"""--prune: the service's records of each kind a bulk file gives, less those the file gives.

Planned before anything is sent: the service's terms, courses, students
and enrollments are read, and those a bulk file leaves out are the prune.
When it would delete more of a kind than --max-prune allows, the import
stops there, having changed nothing: a bundle cut short upstream (an
export that failed half way) must not empty the service. Otherwise the
prune runs after the bundle's rows, through the same endpoints as
everything else (drops through POST /enrollments/batch, so a drop
deadline holds; DELETE for the rest).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from .deletions import DROPPED, delete
from .importer import Client, Progress, Unusable, _every, batches, neutralised

if TYPE_CHECKING:
    from .bundle import Roster
    from .oneroster import Import

REJECTED = "prune.rejected.csv"
PAGE = "500"  # the service's largest page


@dataclass(frozen=True)
class Limit:
    """--max-prune: a share of a kind (`10%`) or a number of records (`25`)."""

    percent: float | None = None
    count: int | None = None

    def allowed(self, total: int) -> int:
        if self.percent is not None:
            return math.floor(total * self.percent / 100)
        assert self.count is not None
        return self.count

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


DEFAULT_LIMIT = Limit(percent=10.0)
_LIMIT = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<percent>%?)\s*")


def limit(text: str) -> Limit:
    """`--max-prune`'s value, for argparse."""
    match = _LIMIT.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError("must be a share such as 10% or a number of records")
    if match["percent"]:
        percent = float(match["number"])
        if percent > 100:
            raise argparse.ArgumentTypeError("must be a share from 0% to 100%")
        return Limit(percent=percent)
    if "." in match["number"]:
        raise argparse.ArgumentTypeError("a number of records is a whole number")
    return Limit(count=int(match["number"]))


# --- The plan ------------------------------------------------------------------------------


@dataclass
class Record:
    ids: tuple[int, ...]  # (id,), or an enrollment's (student id, course id)
    sourced_id: str  # an enrollment's: its student's and its course's, apart by a space


@dataclass
class Doomed:
    """What the prune deletes of one kind: the service's records the bundle leaves out."""

    resource: str  # terms, courses, students, enrollments
    file: str  # the bulk file that gives the kind
    total: int  # the kind's records in the service
    records: list[Record] = field(default_factory=list)


async def pages(client: Client, path: str, what: str) -> AsyncIterator[dict[str, Any]]:
    """Every item of a list of the service, page by page."""
    query = {"limit": PAGE}
    while True:
        status, payload, raw = await client.call("GET", path, what, query=query, route=path)
        items = payload.get("items") if status == 200 and isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise client.unexpected(status, payload, raw, f"GET {path}")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                raise client.unexpected(status, payload, raw, f"GET {path}")
            yield item
        if not payload.get("next_cursor"):
            return
        query = {"limit": PAGE, "cursor": str(payload["next_cursor"])}


async def _sourced_ids(client: Client, resource: str) -> dict[int, str]:
    """id -> sourced_id of every record of a kind."""
    found: dict[int, str] = {}
    async for item in pages(client, f"/{resource}", f"the list of {resource}"):
        sourced_id = item.get("sourced_id")
        if not isinstance(sourced_id, str):
            raise Unusable(
                f"the service at {client.url} lists {resource} without their sourced_id",
                "update the service to a release with OneRoster support",
            )
        found[item["id"]] = sourced_id
    return found


KINDS = (
    ("academicSessions.csv", "terms"),
    ("classes.csv", "courses"),
    ("users.csv", "students"),
)


async def plan(client: Client, roster: Roster, most: Limit) -> list[Doomed]:
    """What --prune deletes, kind by kind (enrollments first); Unusable when over `most`."""
    bulk = {name for name, source in roster.sources.items() if source.mode == "bulk"}
    enrollments = "enrollments.csv" in bulk
    listed: dict[str, dict[int, str]] = {}
    doomed: dict[str, Doomed] = {}
    for name, resource in KINDS:
        if name in bulk or (enrollments and resource != "terms"):
            listed[resource] = await _sourced_ids(client, resource)
        if name in bulk:
            present = roster.present.get(name, set())
            kind = doomed[resource] = Doomed(resource, name, len(listed[resource]))
            kind.records = [
                Record((id_,), sourced_id)
                for id_, sourced_id in listed[resource].items()
                if hash(sourced_id) not in present
            ]
    if enrollments:
        doomed["enrollments"] = await _enrollments(client, roster, listed, doomed)
    order = [doomed[r] for r in ("enrollments", "courses", "students", "terms") if r in doomed]
    over = [d for d in order if len(d.records) > most.allowed(d.total)]
    if over:
        said = "; ".join(
            f"{len(d.records)} of the service's {d.total} {d.resource} "
            f"({100 * len(d.records) / d.total:.0f}%; {d.file} leaves them out)"
            for d in over
        )
        raise Unusable(
            f"--prune would delete {said}, more than --max-prune {most} allows",
            "check that the bundle is whole; if that many should go, raise --max-prune",
        )
    return order


async def _enrollments(
    client: Client, roster: Roster, listed: dict[str, dict[int, str]], doomed: dict[str, Doomed]
) -> Doomed:
    """The enrollments of (student, class) pairs enrollments.csv leaves out.

    Those of a student or a course the prune deletes go with it, and are not
    counted here.
    """
    present = roster.present.get("enrollments.csv", set())
    going = {
        resource: {record.ids[0] for record in doomed[resource].records}
        for resource in ("students", "courses")
        if resource in doomed
    }
    students, courses = listed["students"], listed["courses"]
    kind = Doomed("enrollments", "enrollments.csv", 0)
    for course_id, course in courses.items():
        path = f"/courses/{course_id}/students"
        async for item in pages(client, path, f"the students of course {course_id}"):
            kind.total += 1
            student_id = item["id"]
            student = students.get(student_id)
            if student is None:
                continue  # created since the list of students was read: not the bundle's to prune
            if student_id in going.get("students", ()) or course_id in going.get("courses", ()):
                continue
            if hash((student, course)) not in present:
                kind.records.append(Record((student_id, course_id), f"{student} {course}"))
    return kind


# --- Running it ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the prune of one kind did."""

    doomed: Doomed
    deleted: int = 0
    gone: int = 0  # deleted by someone else meanwhile
    refused: int = 0
    rejects: Rejected | None = None

    def line(self) -> str:
        d = self.doomed
        text = (
            f"pruned {d.resource} not in {d.file}: {self.deleted} deleted of the service's "
            f"{d.total}"
        )
        if self.gone:
            text += f", {self.gone} gone already"
        if self.refused:
            text += f", {self.refused} refused (see {REJECTED})"
        return text


class Rejected:
    """prune.rejected.csv: the records the prune could not delete, with why."""

    HEADER = ("resource", "id", "sourcedId", "outcome", "reason")

    def __init__(self, path: Path):
        self.path = path
        self._file: TextIO | None = None
        self._writer: Any = None

    def write(self, resource: str, record: Record, outcome: str, reason: str) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(self.HEADER)
        ids = "/".join(str(i) for i in record.ids)
        cells = (resource, ids, record.sourced_id, outcome, reason)
        self._writer.writerow([neutralised(cell) for cell in cells])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class _Sendable:
    record: Record
    item: bytes | None


async def execute(work: Import, plan: list[Doomed]) -> list[Outcome]:
    """The prune, kind by kind: enrollments, courses, students, terms."""
    rejects = Rejected(work.folder / REJECTED)
    outcomes = work.pruned = [Outcome(doomed, rejects=rejects) for doomed in plan]
    total = sum(len(d.records) for d in plan)
    if not total:
        return outcomes
    work.sent = True
    progress = work.progress = Progress("prune", total, work.options.progress_interval, work.err)
    try:
        for outcome in outcomes:
            work.current = f"the prune of {outcome.doomed.resource}"
            if outcome.doomed.resource == "enrollments":
                await _drop(work, outcome, progress)
            else:
                await _delete(work, outcome, progress)
    finally:
        progress.close()
        work.progress = None
    return outcomes


def _count(outcome: Outcome, record: Record, result: str, reason: str) -> None:
    if result == "deleted":
        outcome.deleted += 1
    elif result == "unchanged":
        outcome.gone += 1
    else:
        outcome.refused += 1
        assert outcome.rejects is not None
        outcome.rejects.write(outcome.doomed.resource, record, result, reason)


async def _drop(work: Import, outcome: Outcome, progress: Progress) -> None:
    sendable = (
        _Sendable(
            record,
            orjson.dumps(
                {"action": "drop", "student_id": record.ids[0], "course_id": record.ids[1]}
            ),
        )
        for record in outcome.doomed.records
    )
    for batch in batches(sendable, work.options.batch_size):
        work.batch += 1
        results = await work.client.send(
            "/enrollments/batch", work.batch, [s.item for s in batch if s.item is not None]
        )
        for sent, result in zip(batch, results, strict=True):
            _count(outcome, sent.record, DROPPED.get(result.outcome, result.outcome), result.detail)
        progress.advance(len(batch))


async def _delete(work: Import, outcome: Outcome, progress: Progress) -> None:
    resource = outcome.doomed.resource
    records = outcome.doomed.records
    for start in range(0, len(records), work.options.batch_size):
        chunk = records[start : start + work.options.batch_size]
        said = await _every(
            delete(work.client, resource, record.ids[0], f"{resource} {record.ids[0]}")
            for record in chunk
        )
        for record, (result, reason) in zip(chunk, said, strict=True):
            _count(outcome, record, result, reason)
        progress.advance(len(chunk))


def close(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.rejects is not None:
            outcome.rejects.close()
