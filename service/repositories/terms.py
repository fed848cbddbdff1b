"""Terms."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from ..db import Work
from ..errors import (
    FieldError,
    Problem,
    conflict,
    invalid,
    precondition_failed,
    sourced_id_taken,
)
from ..models import Page, Term, Versioned, from_row, number
from ..sql import QUERIES
from .retry import retried

Q = QUERIES.terms

# Tells PATCH apart: "field absent" versus "field set to null".
UNCHANGED: Any = object()


@dataclass(frozen=True, slots=True)
class Order:
    """Two fields of a term in order, kept by a check constraint of migration 0016."""

    first: str
    second: str
    constraint: str
    strict: bool

    def holds(self, first: Any, second: Any) -> bool:
        """Whether two values, neither null, are in order."""
        return first < second if self.strict else first <= second

    def error(self, given: Container[str]) -> FieldError:
        """The error naming the field the client gave: the second when both, or neither."""
        relation = "before" if self.strict else "on or before"
        if self.first in given and self.second not in given:
            return FieldError(self.first, f"must be {relation} {self.second}")
        relation = "after" if self.strict else "on or after"
        return FieldError(self.second, f"must be {relation} {self.first}")


ORDERS = (
    Order("starts_on", "ends_on", "terms_dates_ordered", strict=False),
    Order(
        "registration_opens_at",
        "registration_closes_at",
        "terms_registration_ordered",
        strict=True,
    ),
)
_BY_CONSTRAINT = {order.constraint: order for order in ORDERS}


def out_of_order(constraint: str, given: Container[str]) -> Problem:
    """The 422 of a term that would break `constraint`, naming the field the client gave."""
    return invalid([_BY_CONSTRAINT[constraint].error(given)])


def code_taken(code: str) -> Problem:
    """The 409 of a taken code (batches.py too)."""
    return conflict(f"a term with code {code} already exists", "code-taken")


def _changed(term_id: int) -> Problem:
    return precondition_failed(f"term {term_id} has changed: If-Match names no current version")


def term(row: asyncpg.Record) -> Term:
    """A term from a row of terms' columns (max_credits, a numeric, as number() writes it)."""
    credits = row["max_credits"]
    return from_row(Term, row, max_credits=None if credits is None else number(credits))


def _versioned(row: asyncpg.Record) -> Versioned[Term]:
    # The version is the row's xmin (sql/terms.sql).
    return Versioned(term(row), row["xmin"])


async def get(conn: asyncpg.Connection, *, term_id: int) -> Versioned[Term] | None:
    row = await conn.fetchrow(Q.get_term, term_id)
    return _versioned(row) if row else None


async def list_page(
    conn: asyncpg.Connection,
    *,
    after: int,
    limit: int,
    code: str | None = None,
    sourced_id: str | None = None,
) -> Page[Term]:
    """A page after id `after`; with `code` (any letter case) and `sourced_id`, of that term only."""
    if sourced_id is not None:
        # At most one: the sourced_id is unique.
        rows = await conn.fetch(Q.list_terms_by_sourced_id, after, sourced_id, code)
        return Page([term(row) for row in rows], None)
    if code is not None:
        rows = await conn.fetch(Q.list_terms_by_code, after, code, limit + 1)
    else:
        rows = await conn.fetch(Q.list_terms, after, limit + 1)
    items = [term(row) for row in rows[:limit]]
    return Page(items, items[-1].id if len(rows) > limit else None)


async def create(
    conn: asyncpg.Connection,
    *,
    code: str,
    title: str,
    starts_on: date,
    ends_on: date,
    registration_opens_at: datetime | None = None,
    registration_closes_at: datetime | None = None,
    drop_deadline: datetime | None = None,
    max_credits: Decimal | None = None,
    sourced_id: str | None = None,
    actor: str,
) -> Term:
    """A new term, with `sourced_id` or a new UUID; 409 when the code or the sourced_id is
    taken, 422 naming the field when its dates are out of order."""
    statement = Q.create_term.bind(
        code=code,
        title=title,
        starts_on=starts_on,
        ends_on=ends_on,
        registration_opens_at=registration_opens_at,
        registration_closes_at=registration_closes_at,
        drop_deadline=drop_deadline,
        max_credits=max_credits,
        sourced_id=sourced_id,
        actor=actor,
    )
    try:
        row = await conn.fetchrow(*statement)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "terms_sourced_id_key":
            raise sourced_id_taken("term", sourced_id or "") from None
        raise code_taken(code) from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name in _BY_CONSTRAINT:
            raise out_of_order(exc.constraint_name, ()) from None
        raise
    return term(row)


async def update(
    conn: asyncpg.Connection,
    *,
    term_id: int,
    changes: dict[str, Any],
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> Versioned[Term] | None:
    """Change the fields `changes` names (a nullable one may be set to None).

    A new max_credits may promote waiting students: lock_term_waits() takes
    their courses' feed locks first, in the same transaction. Only if the
    row's version is one `if_match` names (None: any). None when the term
    does not exist; 412 when it does, at another version; 422 naming the
    field when the term as changed would have its dates out of order.
    """
    updated = await retried(work, _update, conn, term_id, changes, if_match, actor)
    if updated is None and if_match is not None and await conn.fetchrow(Q.get_term, term_id):
        raise _changed(term_id)
    return updated


def _set(changes: dict[str, Any], name: str) -> dict[str, Any]:
    """The arguments of update_term for a field that may be set to null."""
    given = name in changes
    return {f"set_{name}": given, name: changes[name] if given else None}


async def _update(
    conn: asyncpg.Connection,
    term_id: int,
    changes: dict[str, Any],
    if_match: tuple[str, ...] | None,
    actor: str,
) -> Versioned[Term] | None:
    statement = Q.update_term.bind(
        term_id=term_id,
        code=changes.get("code"),
        title=changes.get("title"),
        starts_on=changes.get("starts_on"),
        ends_on=changes.get("ends_on"),
        **_set(changes, "registration_opens_at"),
        **_set(changes, "registration_closes_at"),
        **_set(changes, "drop_deadline"),
        **_set(changes, "max_credits"),
        if_match=if_match,
        actor=actor,
    )
    try:
        # One transaction: the feed locks before the write (the promotions a
        # raised limit makes need them; lock_term_waits(), registration.sql).
        async with conn.transaction():
            if "max_credits" in changes:
                await conn.execute(Q.lock_term_waits, term_id)
            row = await conn.fetchrow(*statement)
    except asyncpg.UniqueViolationError:
        raise code_taken(changes.get("code", "")) from None
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name in _BY_CONSTRAINT:
            raise out_of_order(exc.constraint_name, changes) from None
        raise
    return _versioned(row) if row else None


async def delete(
    conn: asyncpg.Connection,
    *,
    term_id: int,
    if_match: tuple[str, ...] | None = None,
    actor: str,
    work: Work,
) -> bool:
    """False when the term does not exist; 412 at another version; 409 while a course belongs to it."""
    deleted = await retried(work, _delete, conn, term_id, if_match, actor)
    if not deleted and if_match is not None and await conn.fetchrow(Q.get_term, term_id):
        raise _changed(term_id)
    return deleted


async def _delete(
    conn: asyncpg.Connection, term_id: int, if_match: tuple[str, ...] | None, actor: str
) -> bool:
    try:
        return await conn.fetchval(Q.delete_term, term_id, if_match, actor) is not None
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name != "courses_term_id_fkey":
            raise
        raise conflict(
            f"term {term_id} has courses: move them to another term or delete them first",
            "term-not-empty",
        ) from None
