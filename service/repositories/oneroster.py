"""The OneRoster provider's reads (sql/oneroster.sql): a page of a collection and its count.

Each call is one statement, so a page and its X-Total-Count come from one
snapshot. The statement is chosen by the shape of the filter, so that an
index serves a lookup by sourcedId and a delta query (docs/oneroster.md):
predicates joined by AND (or one alone) with `sourcedId='x'` read that one
record by students_sourced_id_key and the like; with `dateLastModified>` or
`>=` they read the records changed since then by students_modified_at and
the like, and the records deleted since (tombstones); no filter reads a page
of the primary key; a sort, or any other filter, reads every record and
tests it. The predicates the shape does not serve go to oneroster_match().
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..oneroster.filters import Filter, Predicate
from ..oneroster.query import Query
from ..sql import QUERIES

Q = QUERIES.oneroster

# The collections with a statement per shape; terms have one for every shape.
SHAPED = ("users", "classes", "courses", "enrollments")
# The collections of one owner's records.
OWNED = ("class_students", "student_classes", "term_classes")


@dataclass(frozen=True)
class Page:
    total: int
    # Each record as JSON text, as the database wrote it.
    records: list[str]


@dataclass(frozen=True)
class Where:
    """What every statement needs to write hrefs: their start and the school's sourcedId."""

    base: str
    school: str


def _predicates(query: Query) -> dict[str, Any]:
    """The statement parameters of the filter: its shape's bounds and the other predicates."""
    found = query.filter
    rest = list(found.predicates)
    sid = since = None
    inclusive = False
    if not found.any_of:
        delta = next(
            (p for p in rest if p.field == "dateLastModified" and p.op in (">", ">=")), None
        )
        if delta is not None:
            since, inclusive = delta.moment, delta.op == ">="
            rest.remove(delta)
        # Kept among the predicates too: it filters the tombstones as well.
        sid = next((p.value for p in rest if p.field == "sourcedId" and p.op == "="), None)
    return {
        "sid": sid,
        "since": since,
        "inclusive": inclusive,
        "fields": [p.field for p in rest],
        "ops": [p.op for p in rest],
        "vals": [p.value for p in rest],
        "any_of": found.any_of,
    }


def _page(rows: list[asyncpg.Record]) -> Page:
    return Page(rows[0]["total"], [row["record"] for row in rows if row["record"] is not None])


async def collection(conn: asyncpg.Connection, *, name: str, query: Query, where: Where) -> Page:
    """A page of collection `name` (users, classes, courses, enrollments, terms)."""
    values = _predicates(query)
    if name == "terms":
        statement = Q.terms
    elif query.sort is not None or query.descending:
        statement = getattr(Q, f"{name}_sorted")
    elif values["sid"] is not None:
        statement = getattr(Q, f"{name}_by_sourced_id")
    elif values["since"] is not None:
        statement = getattr(Q, f"{name}_since")
    elif not query.filter.predicates:
        statement = getattr(Q, name)
    else:
        # A filter no index serves: every record read and tested, in id order.
        statement = getattr(Q, f"{name}_sorted")
    values |= {
        "base": where.base,
        "school": where.school,
        "picked": list(query.fields) if query.fields is not None else None,
        "lim": query.limit,
        "off": query.offset,
        "sort": query.sort,
        "descending": query.descending,
    }
    rows = await conn.fetch(*statement.bind(**{k: values[k] for k in statement.names}))
    return _page(rows)


async def record(
    conn: asyncpg.Connection,
    *,
    name: str,
    sourced_id: str,
    fields: tuple[str, ...] | None,
    where: Where,
) -> str | None:
    """The record of collection `name` with that sourcedId, as JSON text; None if there is none."""
    one = Query(Filter((Predicate("sourcedId", "=", sourced_id),)), fields=fields, limit=1)
    found = await collection(conn, name=name, query=one, where=where)
    return found.records[0] if found.records else None


async def owned(
    conn: asyncpg.Connection, *, name: str, owner: str, query: Query, where: Where
) -> Page | None:
    """A page of the records of the owner with sourcedId `owner` (OWNED); None if it does not exist.

    Every predicate is tested on each of the owner's records (a class has
    its seats' worth of students, a student a few classes).
    """
    found = query.filter
    rows = await conn.fetch(
        *getattr(Q, name).bind(
            owner=owner,
            base=where.base,
            school=where.school,
            fields=[p.field for p in found.predicates],
            ops=[p.op for p in found.predicates],
            vals=[p.value for p in found.predicates],
            any_of=found.any_of,
            picked=list(query.fields) if query.fields is not None else None,
            sort=query.sort,
            descending=query.descending,
            lim=query.limit,
            off=query.offset,
        )
    )
    if not rows[0]["found"]:
        return None
    return _page(rows)


async def orgs(
    conn: asyncpg.Connection,
    *,
    query: Query,
    school: str,
    name: str,
    modified_at: datetime,
) -> Page:
    """The one org, the school, if it passes the filter and the page reaches it."""
    found = query.filter
    row = await conn.fetchrow(
        *Q.orgs.bind(
            school=school,
            name=name,
            modified_at=modified_at,
            fields=[p.field for p in found.predicates],
            ops=[p.op for p in found.predicates],
            vals=[p.value for p in found.predicates],
            any_of=found.any_of,
            picked=list(query.fields) if query.fields is not None else None,
            off=query.offset,
        )
    )
    return Page(row["total"], [row["record"]] if row["record"] is not None else [])
