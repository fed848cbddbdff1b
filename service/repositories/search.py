"""?q=: "contains this text, in any letter case", as a LIKE pattern and a plan.

The queries compare fold_case(column) with fold_case(pattern): folding maps
each character to one character and leaves %, _ and \\ alone, so the text
may be escaped before it is folded. Escaped with LIKE's default escape
character, the backslash, a % or _ in the text stands for itself.

Why custom plans: a prepared statement (asyncpg prepares every one) may be
planned once without its parameters' values, after five executions. For
?q= that generic plan must guess how many rows match, and the guess picks a
walk of the primary key in id order that tests every row until a page is
full: fine when many match, and a read of the whole table, seconds at
1,000,000 students, when few do. With the values, the planner sees the
pattern and takes the trigram indexes for rare text and the id order for
common text. So these statements run in a transaction that sets
plan_cache_mode = force_custom_plan for itself (SET LOCAL, nothing outlives
it); planning each time costs a fraction of a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def contains(text: str) -> str:
    """The LIKE pattern of the values that contain `text` (wildcards in it taken literally)."""
    return f"%{text.translate(_ESCAPES)}%"


async def fetch_with_values(
    conn: asyncpg.Connection, plan_with_values: str, query: str, *args: Any
) -> Sequence[asyncpg.Record]:
    """`query`'s rows, planned with `args`' values (`plan_with_values` sets the mode)."""
    async with conn.transaction():
        await conn.execute(plan_with_values)
        return await conn.fetch(query, *args)
