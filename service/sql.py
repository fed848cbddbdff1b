"""Named queries loaded from the `sql/` directory.

Each file holds statements in the aiosql style:

    -- name: get_student
    -- One student by id.
    select id, name, email, created_at from students where id = $1;

A repository asks for `QUERIES.students.get_student`; a typo fails at import
time, not on the first request that needs it.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace


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


def parse(text: str) -> dict[str, str]:
    """Split one file's text into {name: statement}."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        if not statement:
            raise ValueError(f"query {name!r} is empty")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = statement
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
