"""Command line: python -m service {serve,migrate,rollback,dev,openapi,import}.

serve     serve the API on HOST:PORT using DATABASE_URL (production)
migrate   apply pending migrations to DATABASE_URL
rollback  roll back the last N migrations (default 1)
dev       like `make run`: without DATABASE_URL, start the embedded
          PostgreSQL under .data/, migrate, then serve
openapi   print the OpenAPI document an instance serves (--without-tokens:
          that of an instance without tokens)
import    send a CSV file of students, courses, enrollments, terms, holds
          or completions (docs/import.md), or a OneRoster 1.2 bundle
          (docs/oneroster.md), to a running service through its
          API; the same as the `enrollment-import` command
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from dataclasses import replace

import psycopg

from enrollment_import import importer

from . import logs, migrations
from .app import openapi_document
from .config import Config, ConfigError
from .db import masked
from .server import StartupError, exit_on_startup_error, serve

log = logging.getLogger("service")


def _embedded_database(stack: ExitStack, config: Config) -> str:
    """Start the development cluster unless DATABASE_URL names a server."""
    if url := config.database_url:  # with DATABASE_PASSWORD_FILE's password, if given
        return url
    from .embedded import EmbeddedPostgres, dev_cluster

    cluster: EmbeddedPostgres = dev_cluster()
    was_running = cluster.is_running()
    url = cluster.start()
    if not was_running:
        stack.callback(cluster.stop)
    os.environ["DATABASE_URL"] = url
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API")
    migrate = commands.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--target", help="stop after this migration id")
    migrate.add_argument(
        "--embedded",
        action="store_true",
        help="use the embedded PostgreSQL when DATABASE_URL is unset",
    )
    rollback = commands.add_parser("rollback", help="roll back applied migrations")
    rollback.add_argument("count", nargs="?", type=int, default=1)
    rollback.add_argument(
        "--embedded",
        action="store_true",
        help="use the embedded PostgreSQL when DATABASE_URL is unset",
    )
    commands.add_parser("dev", help="embedded PostgreSQL, migrate, serve")
    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument(
        "--without-tokens",
        action="store_true",
        help="the document of an instance without tokens (no security requirement)",
    )
    importer.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "import":
        # A client of a running service: none of the service's settings apply.
        return importer.main(args)
    if args.command == "openapi":
        document = openapi_document(with_tokens=not args.without_tokens)
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0

    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"enrollment-service: configuration: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.log_level)
    with ExitStack() as stack:
        try:
            if args.command == "serve":
                return serve(config)
            if args.command == "dev":
                url = _embedded_database(stack, config)
                if not migrations.apply(url):
                    log.info("the database schema is up to date")
                return serve(replace(config, database_url=url))
            url = _embedded_database(stack, config) if args.embedded else config.database_url
            if not url:
                raise StartupError("DATABASE_URL is not set")
            try:
                if args.command == "migrate":
                    done = migrations.apply(url, target=args.target)
                    print(f"applied: {', '.join(done)}" if done else "nothing to apply")
                else:
                    done = migrations.rollback(url, count=args.count)
                    print(f"rolled back: {', '.join(done)}" if done else "nothing to roll back")
            except (psycopg.Error, ValueError) as exc:
                reason = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                raise StartupError(f"{args.command} failed on {masked(url)}: {reason}") from None
            return 0
        except StartupError as exc:
            exit_on_startup_error(exc)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
