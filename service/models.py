"""What repositories return and handlers render: plain dataclasses.

orjson serializes them directly; datetimes come out as RFC 3339 with offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Student:
    id: int
    name: str
    email: str
    created_at: datetime


@dataclass(slots=True)
class Course:
    id: int
    code: str
    title: str
    capacity: int | None
    created_at: datetime


@dataclass(slots=True)
class Enrollment:
    """A course as seen from one of its students."""

    id: int
    code: str
    title: str
    capacity: int | None
    created_at: datetime
    enrolled_at: datetime


@dataclass(slots=True)
class EnrolledStudent:
    """A student as seen from one of their courses."""

    id: int
    name: str
    email: str
    created_at: datetime
    enrolled_at: datetime


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; `last_key` is None on the last page."""

    items: list[T]
    last_key: int | None
