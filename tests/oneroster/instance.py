"""A running instance with a OneRoster bundle imported, as a school would have it.

The real app on a real TCP port (tests/live.py) with two tokens: the
registrar's write token, which `python -m service import oneroster` uses, and
an LMS's read token, which a OneRoster client uses as its OAuth 2.0 client
(client id: the token's name, client secret: its secret).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import requests

from service.app import create_app
from service.config import Config, Token
from service.embedded import free_port

from ..conftest import Server
from ..live import LiveServer
from ..oneroster_bundle import SCHOOL
from .clients import PROJECT_ROOT
from .official import PREFIX, provider_paths

REGISTRAR = Token(name="registrar", scope="write", secret="registrar-write-5f0c2a9e7d41b386")
LMS = Token(name="lms", scope="read", secret="lms-read-c81e4b7a20d6f935")
SCHOOL_NAME = "Example School"  # the name tests/oneroster_bundle.py gives the school


@dataclass(frozen=True)
class Roster:
    """Where the instance answers and who may ask it."""

    url: str
    database_url: str
    # The provider's paths, as its router has them.
    paths: frozenset[str]

    @property
    def rostering(self) -> str:
        return self.url + PREFIX

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def access_token(self, client: Token = LMS) -> str:
        """An access token by client credentials (HTTP Basic, no scope), as clients ask."""
        answer = requests.post(
            self.token_url,
            data={"grant_type": "client_credentials"},
            auth=(client.name, client.secret),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def client_arguments(self) -> list[str]:
        """The driver's arguments: where to read and with which client credentials."""
        return [
            "--base-url",
            self.url,
            "--token-url",
            self.token_url,
            "--client-id",
            LMS.name,
            "--client-secret",
            LMS.secret,
        ]

    def import_bundle(self, bundle: Path, *options: str) -> subprocess.CompletedProcess[str]:
        """`python -m service import oneroster BUNDLE` with the registrar's token; it must succeed."""
        env = {k: v for k, v in os.environ.items() if k != "API_TOKEN"}
        command = [sys.executable, "-m", "service", "import", "oneroster", str(bundle)]
        done = subprocess.run(
            [*command, "--url", self.url, *options],
            cwd=bundle.parent,
            env={**env, "API_TOKEN": REGISTRAR.secret, "PYTHONPATH": str(PROJECT_ROOT)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done


@contextmanager
def database(server: Server, template: str) -> Iterator[str]:
    """A database copied from the migrated template, dropped afterwards (for a module's instance)."""
    name = f"enrollment_oneroster_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(server.admin_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'create database "{name}" template "{template}"'))
    try:
        yield server.url_for(name)
    finally:
        asyncio.run(run(f'drop database if exists "{name}" with (force)'))


@contextmanager
def running(database_url: str) -> Iterator[Roster]:
    """The real app on the database, with the registrar's and the LMS's tokens.

    Set up as a deployment would be: the school is the bundle's org
    (ONEROSTER_SCHOOL_ID, ONEROSTER_SCHOOL_NAME), and references are absolute
    URLs of the instance (ONEROSTER_BASE_URL; the document's GUIDRef href is
    a `uri`).
    """
    port = free_port()
    config = Config(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=10,
        workers=1,
        tokens=(REGISTRAR, LMS),
        oneroster_school_id=SCHOOL,
        oneroster_school_name=SCHOOL_NAME,
        oneroster_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(config)
    with LiveServer(app, port) as server:
        yield Roster(url=server.url, database_url=database_url, paths=provider_paths(app))
