"""Schema migrations with yoyo, from the SQL files in `migrations/`, then the
functions and triggers of `sql/functions/`.

Migrations hold what a schema change moves once (tables, constraints,
indexes, data); the current definition of every function and trigger is in
sql/functions, applied after the migrations by every migrate to the newest
schema, a file only when its text changed (migration 0015's
schema_functions keeps a digest of each). See docs/development.md,
"Functions and triggers".

yoyo is synchronous (psycopg underneath): call these from the command line
or a worker thread, never on the event loop.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yoyo import get_backend, read_migrations

from .sql import data_dir

log = logging.getLogger(__name__)

MIGRATIONS_DIR = data_dir("schema", "migrations")  # service/schema in a wheel
FUNCTIONS_DIR = data_dir("queries", "sql") / "functions"


def yoyo_url(dsn: str) -> str:
    """yoyo names its driver in the scheme: postgresql+psycopg://..."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ValueError("the database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


@contextmanager
def _open(dsn: str) -> Iterator[tuple[Any, Any]]:
    backend = get_backend(yoyo_url(dsn))
    try:
        yield backend, read_migrations(str(MIGRATIONS_DIR))
    finally:
        # yoyo keeps its connection open; a template database must have none.
        backend.connection.close()


def apply(dsn: str, *, target: str | None = None, functions: Path = FUNCTIONS_DIR) -> list[str]:
    """Apply pending migrations (up to and including `target`); return their ids.

    Without a target, then the files of `functions` that changed: the
    functions are those of the newest schema.
    """
    with _open(dsn) as (backend, migrations), backend.lock():
        pending = backend.to_apply(migrations)
        if target is not None:
            ids = [m.id for m in migrations]
            if target not in ids:
                raise ValueError(f"no migration {target!r}; known: {', '.join(ids)}")
            allowed = set(ids[: ids.index(target) + 1])
            pending = pending.filter(lambda m: m.id in allowed)
        # One at a time, to say each as it is done; then the post-apply steps
        # once, as apply_migrations() runs them.
        for migration in pending:
            backend.apply_migrations_only([migration])
            log.info("applied migration %s", migration.id)
        if pending:
            backend.run_post_apply(pending)
        if target is None:
            _apply_functions(backend, function_files(functions))
    return [m.id for m in pending]


def function_files(directory: Path = FUNCTIONS_DIR) -> dict[str, str]:
    """{file name: text} of sql/functions, in the order they are applied."""
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise RuntimeError(f"no .sql files in {directory}: the functions are missing")
    return {path.name: path.read_text(encoding="utf-8") for path in files}


def _apply_functions(backend: Any, files: dict[str, str]) -> list[str]:
    """Apply the files of sql/functions whose text the database does not hold yet.

    One transaction: a file that fails leaves every function as it was.
    Function bodies are not checked while they are created
    (check_function_bodies off), so a file may call what a later one defines;
    each trigger is defined in the file of its function, after it.
    """
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
    with backend.transaction():
        held = dict(backend.execute("select file, digest from schema_functions").fetchall())
        changed = [name for name in files if held.get(name) != digests[name]]
        if not changed:
            return []
        cursor = backend.cursor()
        cursor.execute("set local check_function_bodies = off")
        cursor.execute("set local lock_timeout = '5s'")
        # The tables whose triggers are replaced, locked first, together: one
        # at a time, in the order of the files, the locks crossed those of
        # running enrollments and deadlocked (tests/test_migration_under_load.py).
        cursor.execute(
            "lock table student_courses, course_waitlist, students, courses"
            " in share row exclusive mode"
        )
        for name in changed:
            cursor.execute(files[name])  # no parameters: every statement of the file
            backend.execute(
                "insert into schema_functions (file, digest) values (:file, :digest)"
                " on conflict (file) do update set digest = excluded.digest, applied_at = now()",
                {"file": name, "digest": digests[name]},
            )
    log.info("applied functions: %s", ", ".join(changed))
    return changed


def rollback(dsn: str, *, count: int = 1) -> list[str]:
    """Roll back the `count` most recently applied migrations; return their ids."""
    with _open(dsn) as (backend, migrations), backend.lock():
        applied = backend.to_rollback(migrations)
        chosen = applied.filter(lambda m: m.id in {x.id for x in list(applied)[:count]})
        for migration in chosen:
            backend.rollback_migrations([migration])
            log.info("rolled back migration %s", migration.id)
    return [m.id for m in chosen]


def applied(dsn: str) -> list[str]:
    with _open(dsn) as (backend, migrations):
        done = backend.get_applied_migration_hashes()
        return [m.id for m in migrations if m.hash in done]
