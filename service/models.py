"""What repositories return and handlers render: plain dataclasses.

orjson serializes them directly; datetimes come out as RFC 3339 with offset.
Rows become objects by column name (`from_row(Student, row)`), so a query
may add, drop or reorder columns without shifting a value into the wrong
field; no slots, since orjson serializes slotted dataclasses about twice as
slowly.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

import orjson

T = TypeVar("T")


class Row(Protocol):
    """A row by column name: an asyncpg Record, or a dict."""

    def __getitem__(self, column: str, /) -> Any: ...


def from_row(model: type[T], row: Row, **given: Any) -> T:
    """A `model` whose fields are `row`'s columns of the same names; `given` ones win.

    `given` names the fields whose column has another name or whose value
    needs converting: `from_row(Enrollment, row, id=row["course_id"])`. A
    field with no such column is a KeyError naming it.
    """
    columns = _columns.get(model)
    if columns is None:
        columns = _columns[model] = _Columns(model)
    if not given:
        return model(*columns.values(row))
    return model(*[given[name] if name in given else row[name] for name in columns.names])


def from_rows(model: type[T], rows: Sequence[Any]) -> list[T]:
    """`from_row` for each row of a result, checked by name once for the whole result.

    When the first row's columns are the model's fields, same names in the
    same order, every row of the result is (a result's rows share their
    columns), and each becomes its model positionally: a page of 50 rows
    costs what `Model(*row)` did, a third of looking each field up by name.
    Otherwise each row is taken by name.
    """
    if not rows:
        return []
    columns = _columns.get(model)
    if columns is None:
        columns = _columns[model] = _Columns(model)
    keys = getattr(rows[0], "keys", None)
    if keys is not None and tuple(keys()) == columns.names:
        return [model(*row) for row in rows]
    return [model(*columns.values(row)) for row in rows]


class _Columns:
    """A model's field names, and a getter of their values from a row in field order.

    Built once per model: a row costs about three times what `Model(*row)`
    did, against 8 times for a dict of the fields by name (timeit, Course).
    """

    __slots__ = ("names", "values")

    def __init__(self, model: type) -> None:
        self.names = tuple(f.name for f in fields(model))
        get = operator.itemgetter(*self.names)
        self.values = get if len(self.names) > 1 else lambda row: (get(row),)


_columns: dict[type, _Columns] = {}


@dataclass
class Student:
    id: int
    name: str
    email: str
    created_at: datetime
    # Its OneRoster sourcedId: given on create, else a UUID (migration 0018).
    sourced_id: str


@dataclass
class CourseFields:
    """A course's own fields, as every view of a course shows them."""

    id: int
    code: str
    title: str
    capacity: int | None
    waitlist_capacity: int
    enrolled: int
    waitlisted: int
    created_at: datetime
    term_id: int | None
    # numeric(3, 1) comes as a Decimal, which orjson does not write: a JSON
    # number here, 3 rather than 3.0 when whole.
    credits: float
    # jsonb comes as its text, already the JSON to send: sent as it is.
    meetings: orjson.Fragment
    prerequisites: list[str]

    def __post_init__(self) -> None:
        if isinstance(self.credits, Decimal):
            whole = int(self.credits)
            self.credits = whole if whole == self.credits else float(self.credits)
        if isinstance(self.meetings, str):
            self.meetings = orjson.Fragment(self.meetings)


@dataclass
class Course(CourseFields):
    """A course: its fields, then its OneRoster sourcedId (given on create, else a UUID)."""

    sourced_id: str


@dataclass
class Term:
    """A term's calendar and credit limit (max_credits: a numeric as number() writes it)."""

    id: int
    code: str
    title: str
    starts_on: date
    ends_on: date
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    drop_deadline: datetime | None
    max_credits: int | float | None
    created_at: datetime
    sourced_id: str


@dataclass
class Enrollment(CourseFields):
    """A course as seen from one of its students: its fields, then the enrollment's.

    sourced_id is the enrollment's (student_courses.sourced_id), not the
    course's: this is the enrollment's representation.
    """

    sourced_id: str
    enrolled_at: datetime


@dataclass
class WaitlistEntry(CourseFields):
    """A course as seen from a student waiting for it; position 1 is next."""

    waitlisted_at: datetime
    position: int


@dataclass
class EnrolledStudent:
    """A student as seen from one of their courses; sourced_id is the enrollment's, as in Enrollment."""

    id: int
    name: str
    email: str
    created_at: datetime
    sourced_id: str
    enrolled_at: datetime


@dataclass
class WaitlistedStudent:
    """A student as seen from the queue of a course they wait for."""

    id: int
    name: str
    email: str
    created_at: datetime
    waitlisted_at: datetime
    position: int


@dataclass
class Hold:
    """A hold on a student's registration; its reason is personal data (never in events or logs)."""

    id: int
    reason: str
    created_at: datetime


@dataclass
class Completion:
    """A course code a student has passed: what prerequisites ask for."""

    id: int
    code: str
    completed_at: datetime


@dataclass
class StudentTerm:
    """A student's settings in a term (null: none), and the credits they are enrolled in there."""

    student_id: int
    term_id: int
    registration_opens_at: datetime | None
    max_credits: int | float | None
    credits: int | float


def number(value: Decimal) -> int | float:
    """A numeric of the database as the JSON number it stands for: 18, 12.5.

    orjson writes no Decimal; a whole number is written without a fraction.
    """
    whole = int(value)
    return whole if value == whole else float(value)


@dataclass
class Event:
    """One recorded change; `data` is its JSON object as PostgreSQL wrote it."""

    id: int
    type: str
    at: datetime
    actor: str | None
    student_id: int | None
    course_id: int | None
    data: orjson.Fragment


@dataclass
class Page(Generic[T]):
    """One page of a keyset-paginated list; `last_key` is None on the last page."""

    items: list[T]
    last_key: int | None


@dataclass
class Versioned(Generic[T]):
    """A resource and the version of the row it was read from: the value of its ETag.

    Kept beside the resource rather than in it, so the JSON body stays as it is.
    """

    item: T
    version: str
