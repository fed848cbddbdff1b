"""Named queries loaded from the `sql/` directory.

Each file holds statements in the aiosql style:

    -- name: get_student
    -- One student by id.
    select id, name, email, created_at from students where id = $1;

A repository asks for `QUERIES.students.get_student`; a typo fails at import
time, not on the first request that needs it.

A statement of more than three parameters names them, as aiosql does:
`:code`, `:title` (a `::type` cast, or a slice `a[1:n]`, is no name). The
loader numbers them in order of first appearance, as PostgreSQL takes them,
into a `Named`, and the repository passes values by name:
`conn.fetchrow(*Q.create_term.bind(code=..., title=...))`. A statement uses
`$n` or names, never both; one with `$n` stays a str.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def data_dir(packaged: str, top_level: str) -> Path:
    """Where a directory of SQL files is, by one rule.

    An installed wheel carries it inside the package (the build maps `sql/`
    to service/queries and `migrations/` to service/schema); a clone or the
    Docker image has it beside service/ at the top of the tree. Inside the
    package is looked at first, so an installed service never picks up a
    stray `sql/` that happens to sit next to it in site-packages.
    """
    here = Path(__file__).resolve().parent
    inside = here / packaged
    return inside if inside.is_dir() else here.parent / top_level


SQL_DIR = data_dir("queries", "sql")

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# A :name parameter: not the second colon of a cast (::text), nor after a
# word character (a[1:n], '09:30').
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_NUMBERED = re.compile(r"\$[0-9]")


@dataclass(frozen=True)
class Named:
    """A statement written with :name parameters: as PostgreSQL takes it ($1..$n), and the names.

    asyncpg takes a statement as a str and its values in order; `bind` gives
    both: `conn.fetchrow(*Q.create_term.bind(code=..., title=...))`.
    """

    sql: str
    names: tuple[str, ...]

    def bind(self, **values: Any) -> tuple[Any, ...]:
        """The statement, then the values in $n order; every name, and no other, given."""
        if values.keys() != set(self.names):
            missing = sorted(set(self.names) - values.keys())
            unknown = sorted(values.keys() - set(self.names))
            raise TypeError(f"parameters missing: {missing}, unknown: {unknown}")
        return (self.sql, *[values[name] for name in self.names])


def _numbered(name: str, statement: str) -> str | Named:
    """`statement` as it is, or, with :name parameters, as a Named."""
    names = tuple(dict.fromkeys(_PARAMETER.findall(statement)))
    if not names:
        return statement
    if _NUMBERED.search(statement):
        raise ValueError(f"query {name!r} mixes :name and $n parameters")
    return Named(_PARAMETER.sub(lambda m: f"${names.index(m[1]) + 1}", statement), names)


def parse(text: str) -> dict[str, str | Named]:
    """Split one file's text into {name: statement}."""
    parts = _NAME.split(text)
    queries: dict[str, str | Named] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        if not statement:
            raise ValueError(f"query {name!r} is empty")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = _numbered(name, statement)
    return queries


def load(directory: Path = SQL_DIR) -> SimpleNamespace:
    """Every `<aggregate>.sql` file as a namespace of its queries."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        # Said at import time, not as an AttributeError on the first request.
        raise RuntimeError(f"no .sql files in {directory}: the queries are missing")
    return SimpleNamespace(
        **{path.stem: SimpleNamespace(**parse(path.read_text(encoding="utf-8"))) for path in files}
    )


QUERIES = load()
