"""What repositories return and handlers render: plain dataclasses.

orjson serializes them directly; datetimes come out as RFC 3339 with offset.
Field order matches the column order of the queries in sql/, so rows become
objects positionally (`Student(*row)`); no slots, since orjson serializes
slotted dataclasses about twice as slowly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

T = TypeVar("T")


@dataclass
class Student:
    id: int
    name: str
    email: str
    created_at: datetime


@dataclass
class Course:
    id: int
    code: str
    title: str
    capacity: int | None
    waitlist_capacity: int
    enrolled: int
    waitlisted: int
    created_at: datetime


@dataclass
class Enrollment:
    """A course as seen from one of its students."""

    id: int
    code: str
    title: str
    capacity: int | None
    waitlist_capacity: int
    enrolled: int
    waitlisted: int
    created_at: datetime
    enrolled_at: datetime


@dataclass
class WaitlistEntry:
    """A course as seen from a student waiting for it; position 1 is next."""

    id: int
    code: str
    title: str
    capacity: int | None
    waitlist_capacity: int
    enrolled: int
    waitlisted: int
    created_at: datetime
    waitlisted_at: datetime
    position: int


@dataclass
class EnrolledStudent:
    """A student as seen from one of their courses."""

    id: int
    name: str
    email: str
    created_at: datetime
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
