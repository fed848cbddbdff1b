"""?q=: "contains this text, in any letter case", run by the database in one call.

search_students() and search_courses() (migration 0011) do the work in one
statement, so a search is one round trip, as a plain page is:

1. The matches after the cursor, BOUND + 1 at most, in no order, with the
   trigram indexes (migration 0009): a bitmap of the rows holding the
   text's trigrams, then those rows. Planned without the text (a generic
   plan, forced by the function's SET clause, kept for the session):
   planning with it costs more than running it (about 0.9 ms, for the
   planner matches fold_case() against every index expression), and the
   plan is the same for any text. With BOUND or fewer, they are all the
   matches: sorted by id, the page is their head.
2. More than BOUND match: the text is common. The page then comes from a
   walk of the primary key in id order, which finds a page's worth soon
   among so many.

Ordered by id in one step instead, the planner must guess how many rows
match; guessing few when many do (or many when few, as a generic plan
does) walks the whole table, seconds at 1,000,000 students.

A text whose LIKE pattern yields no trigram ("...", or "a..") would make
the index return every row: the functions refuse it (SQLSTATE 22023 naming
the column q), decided by pg_trgm itself (search_narrows() of 0011), and
the service answers 422 naming q.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ..errors import FieldError, Problem, invalid
from ..sql import QUERIES

# Matches step 1 settles for; it reads one more (`limit 2001` in migration
# 0011's functions), so a bound above it would be taken as it.
BOUND = 2000

# The 422's message for a ?q= the indexes cannot narrow (see docs/api.md, Lookups).
NOT_NARROWED = "must contain a letter or digit after its first character"


def not_narrowed() -> Problem:
    return invalid([FieldError("q", NOT_NARROWED)])


async def page(
    conn: asyncpg.Connection,
    query: str,
    *,
    after: int,
    text: str,
    limit: int,
    bound: int = BOUND,
) -> Sequence[asyncpg.Record]:
    """Up to `limit` rows whose id is above `after` and that contain `text`, in id order.

    `query` is the search statement of one file of sql/.
    """
    assert bound <= BOUND, "the search functions read BOUND + 1 rows at most"
    try:
        return await conn.fetch(query, after, text, limit, bound)
    except asyncpg.InvalidParameterValueError as exc:
        if exc.column_name == "q":
            raise not_narrowed() from None
        raise


async def check(conn: asyncpg.Connection, text: str) -> None:
    """422 naming q unless the trigram indexes can narrow a search for `text`."""
    if not await conn.fetchval(QUERIES.search.narrows, text):
        raise not_narrowed()
