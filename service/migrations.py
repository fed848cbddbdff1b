"""Schema migrations with yoyo, from the SQL files in `migrations/`.

yoyo is synchronous (psycopg underneath): call these from the command line
or a worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from yoyo import get_backend, read_migrations

from .sql import data_dir

log = logging.getLogger(__name__)

MIGRATIONS_DIR = data_dir("schema", "migrations")  # service/schema in a wheel


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


def apply(dsn: str, *, target: str | None = None) -> list[str]:
    """Apply pending migrations (up to and including `target`); return their ids."""
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
    return [m.id for m in pending]


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
