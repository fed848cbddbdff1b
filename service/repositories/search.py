"""?q=: "contains this text, in any letter case", run by the database in one call, bounded.

search_student_page() and search_course_page() (sql/functions/search.sql)
answer a page in one statement, so a search is one round trip, as a plain
page is, and examine a bounded number of rows whatever the text:

1. The trigram indexes (migration 0009), when affordable in each searched
   column: one of the text's trigrams is in fewer than HEAVY_ROWS rows (so
   fewer candidates are rechecked), and those in more are in INDEX_BUDGET
   rows at most together (GIN reads each looked-up trigram's whole list of
   rows). Up to 2,001 matches, sorted by id; the page is their head.
2. Otherwise (a text such as "example@bench", whose trigrams every email
   holds), or with more than 2,000 matches: a walk of the next WALK rows in
   id order, whatever they hold. The page is the matches among them; when
   rows remain after the walk, the next cursor is where it stopped, so such
   a page may hold fewer items than `limit`, even none, and still lead on.

How many rows hold each trigram comes from ANALYZE (the extended statistics
of migration 0013), read once a minute per connection: a statistic that is
missing or out of date only changes which step runs, never the answer.

A text whose LIKE pattern yields no trigram ("...", or "a..") would make
the index return every row: the functions refuse it (SQLSTATE 22023 naming
the column q), decided by pg_trgm itself (search_narrows()), and
the service answers 422 naming q.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from ..errors import FieldError, Problem, invalid
from ..sql import QUERIES

Q = QUERIES.search

# A trigram in at least this many rows of a column is heavy; the index is
# used only if one of the text's trigrams is not (docs/api.md, Lookups).
HEAVY_ROWS = 5_000
# The rows the heavy trigrams' lists may hold together for the index to be
# used: about 1 ms of GIN's reading (10 ns a row).
INDEX_BUDGET = 100_000
# Rows one walk examines: about 0.3 ms.
WALK = 200
# Seconds a connection keeps the heavy trigrams it read.
HEAVY_TTL = 60.0

# The 422's message for a ?q= the indexes cannot narrow (see docs/api.md, Lookups).
NOT_NARROWED = "must contain a letter or digit after its first character"

# Server process id -> (read at, heavy_rows, search_heavy_trigrams()'s answer).
_heavy: dict[int, tuple[float, int, str]] = {}


@dataclass(frozen=True)
class Found:
    """A search's page: up to `limit` + 1 rows, and where a walk stopped (None: it did not)."""

    rows: Sequence[asyncpg.Record]
    walked_to: int | None


def not_narrowed() -> Problem:
    return invalid([FieldError("q", NOT_NARROWED)])


async def heavy(conn: asyncpg.Connection, heavy_rows: int = HEAVY_ROWS) -> str:
    """The trigrams ANALYZE found in at least `heavy_rows` rows, as the search statements take them.

    Kept per server process for HEAVY_TTL seconds: a statement once a
    minute per connection, not one per search.
    """
    pid = conn.get_server_pid()
    now = time.monotonic()
    cached = _heavy.get(pid)
    if cached and cached[1] == heavy_rows and now - cached[0] < HEAVY_TTL:
        return cached[2]
    found = await conn.fetchval(Q.heavy_trigrams, heavy_rows)
    _heavy[pid] = (now, heavy_rows, found)
    return found


def forget_heavy() -> None:
    """Read the heavy trigrams again on every connection's next search (after an ANALYZE)."""
    _heavy.clear()


async def page(
    conn: asyncpg.Connection,
    table: str,
    *,
    after: int,
    text: str,
    limit: int,
    term_id: int | None = None,
    walk: int = WALK,
    heavy_rows: int = HEAVY_ROWS,
    budget: int = INDEX_BUDGET,
) -> Found:
    """Up to `limit` rows of `table` (students or courses) after id `after` that contain `text`.

    In id order, with where the walk stopped if one ran and rows remain.
    Courses of term `term_id` only, when given.
    """
    known = await heavy(conn, heavy_rows)
    args = [after, text, limit, walk, known, budget]
    if table == "courses":
        args.append(term_id)
    try:
        rows = await conn.fetch(getattr(Q, table), *args)
    except asyncpg.InvalidParameterValueError as exc:
        if exc.column_name == "q":
            raise not_narrowed() from None
        raise
    # The walk's end, if any, is the last row, with only its id (created_at
    # is never null in a row of either table).
    if rows and rows[-1]["created_at"] is None:
        return Found(rows[:-1], rows[-1]["id"])
    return Found(rows, None)


async def check(conn: asyncpg.Connection, text: str) -> None:
    """422 naming q unless the trigram indexes can narrow a search for `text`."""
    if not await conn.fetchval(Q.narrows, text):
        raise not_narrowed()
