"""?q=: "contains this text, in any letter case", as a LIKE pattern, and how it is run.

The queries compare fold_case(column) with fold_case(pattern): folding maps
each character to one character and leaves %, _ and \\ alone, so the text
may be escaped before it is folded. Escaped with LIKE's default escape
character, the backslash, a % or _ in the text stands for itself.

How it is run, in two steps, so that no plan can read the whole table:

1. The matches after the cursor, BOUND + 1 at most, in no order, with the
   trigram indexes (migration 0009): a bitmap of the rows holding the
   text's trigrams, then those rows. Planned without the text (a generic
   plan, forced for the statement with SET LOCAL in its own transaction):
   planning with it costs more than running it (about 0.9 ms, for the
   planner matches fold_case() against every index expression), and the
   plan is the same for any text. With BOUND or fewer, they are all the
   matches: sorted by id, the page is their head.
2. More than BOUND match: the text is common. The page then comes from a
   walk of the primary key in id order (search_*_in_order), which finds a
   page's worth soon among so many.

Ordered by id in one statement instead, the planner must guess how many
rows match; guessing few when many do (or many when few, as a generic plan
does) walks the whole table, seconds at 1,000,000 students.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

# Matches step 1 reads at most, and one more (`limit 2001` of the search
# queries); past it, the walk in id order.
BOUND = 2000

_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def contains(text: str) -> str:
    """The LIKE pattern of the values that contain `text` (wildcards in it taken literally)."""
    return f"%{text.translate(_ESCAPES)}%"


async def page(
    conn: asyncpg.Connection,
    queries: Any,
    *,
    after: int,
    text: str,
    limit: int,
    bound: int = BOUND,
) -> Sequence[asyncpg.Record]:
    """Up to `limit` rows whose id is above `after` and that contain `text`, in id order.

    `queries` holds generic_plans, search and search_in_order of one file of sql/.
    """
    assert bound <= BOUND, "the search queries read BOUND + 1 rows at most"
    pattern = contains(text)
    # Step 1 (see the module docstring).
    async with conn.transaction():
        await conn.execute(queries.generic_plans)
        rows = await conn.fetch(queries.search, after, pattern)
    if len(rows) <= bound:
        return sorted(rows, key=lambda row: row[0])[:limit]
    # Step 2.
    return await conn.fetch(queries.search_in_order, after, pattern, limit)
