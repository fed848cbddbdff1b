"""The project as a package: wheels built from the repository, installed outside it.

Two wheels come out of the repository: enrollment-service (the service and
the importer) and enrollment-import (the importer alone). Each is installed
into a fresh virtual environment under tmp_path and run from a folder that is
not the repository, with nothing of the repository on the path: the service
must find its SQL and migrations inside the package, and the importer must
need nothing but its own dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from service.embedded import PROJECT_ROOT, free_port

from .test_shutdown import HOST, SERVICE_VARIABLES, serving

pytestmark = pytest.mark.slow

# What the importer-only install may hold: the importer, its dependencies
# (aiohttp's among them) and the virtual environment's own pip.
IMPORTER_CLOSURE = {
    "aiohappyeyeballs",
    "aiohttp",
    "aiosignal",
    "attrs",
    "enrollment-import",
    "frozenlist",
    "idna",
    "multidict",
    "orjson",
    "pip",
    "propcache",
    "setuptools",  # Python 3.11's venv puts it in every new environment
    "typing-extensions",  # multidict's and aiosignal's, below Python 3.13
    "tqdm",
    "yarl",
}


# The tests wait on these processes in the event loop's thread on purpose:
# everything they talk to (the service, PostgreSQL) is another process.
def attempt(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout=300):
    """Run a command; its CompletedProcess, whatever its exit status."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout=300):
    """Run a command that must succeed."""
    done = attempt(*command, cwd=cwd, env=env, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def start(*command: str | Path, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as sink:
        return subprocess.Popen([str(part) for part in command], cwd=cwd, env=env, stderr=sink)


def outside_env(**settings: str) -> dict[str, str]:
    """The environment of a user outside the repository: no service setting, no PYTHONPATH."""
    skip = {"PYTHONPATH", "VIRTUAL_ENV", "API_TOKEN", *SERVICE_VARIABLES}
    return {**{k: v for k, v in os.environ.items() if k not in skip}, **settings}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """Both wheels, built by `make wheel`'s command from a copy of the source tree.

    A copy, so the build leaves nothing behind in the repository (setuptools
    writes build/ and *.egg-info/ where it builds) and builds from the files
    only, never from a stale build/.
    """
    source = tmp_path_factory.mktemp("source") / "enrollment"
    shutil.copytree(
        PROJECT_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".data", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    out = tmp_path_factory.mktemp("dist")
    run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out,
        ".", "./enrollment_import", cwd=source,
    )  # fmt: skip
    found = {path.name.split("-")[0]: path for path in out.glob("*.whl")}
    assert set(found) == {"enrollment_service", "enrollment_import"}, found
    return found


def venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path, cwd=path.parent)
    return path / "bin"


def installed(bin: Path) -> set[str]:
    listed = run(bin / "python", "-m", "pip", "list", "--format=json", cwd=bin)
    return {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A user's folder, far from the repository."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def healthy(url: str, within: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "the installed service exited before serving"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no /healthz within {within} s")


def request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(call, timeout=10) as response:
        return response.status, json.loads(response.read())


async def test_the_service_wheel_installed_outside_the_repository_runs_every_command(
    wheels, empty_database, tmp_path, elsewhere
):
    started = time.monotonic()
    bin = venv(tmp_path / "venv")
    python = bin / "python"
    # What the Docker image installs (every file checked against its hash),
    # then the wheel; pip check: the wheel asks for nothing the lock lacks.
    lock = PROJECT_ROOT / "requirements" / "serve.txt"
    pip = (python, "-m", "pip", "install", "--quiet")
    run(*pip, "--require-hashes", "--no-deps", "-r", lock, cwd=elsewhere)
    run(*pip, "--no-deps", wheels["enrollment_service"], cwd=elsewhere)
    run(python, "-m", "pip", "check", cwd=elsewhere)
    installing = time.monotonic() - started
    env = outside_env()

    where = run(python, "-c", "import service.sql as s; print(s.SQL_DIR)", cwd=elsewhere, env=env)
    assert (
        Path(where.stdout.strip())
        == (tmp_path / "venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
        / "site-packages"
        / "service"
        / "queries"
    )

    helped = run(python, "-m", "service", "--help", cwd=elsewhere, env=env)
    assert "import" in helped.stdout and "migrate" in helped.stdout
    assert "enrollment-import" in run(bin / "enrollment-import", "--help", cwd=elsewhere).stdout

    migrated = run(
        python,
        "-m",
        "service",
        "migrate",
        cwd=elsewhere,
        env={**env, "DATABASE_URL": empty_database},
    )
    # Every migration of the repository, from the copy inside the package.
    files = (PROJECT_ROOT / "migrations").glob("*.sql")
    newest = max(f.stem for f in files if not f.name.endswith(".rollback.sql"))
    assert re.match(rf"applied: 0001_students_and_courses, .*{newest}$", migrated.stdout.strip())

    port = free_port()
    url = f"http://{HOST}:{port}"
    serve_env = {**env, "DATABASE_URL": empty_database, "HOST": HOST, "PORT": str(port)}
    serve_env |= {"WEB_CONCURRENCY": "1", "SHUTDOWN_TIMEOUT": "5"}
    log = tmp_path / "serve.log"
    server = start(python, "-m", "service", "serve", cwd=elsewhere, env=serve_env, log=log)
    try:
        healthy(url, 60, server)
        status, created = request(
            f"{url}/courses", "POST", {"code": "MATH1", "title": "Maths", "capacity": 2}
        )
        assert status == 201, created
        status, page = request(f"{url}/courses")
        assert [c["code"] for c in page["items"]] == ["MATH1"]

        csv = elsewhere / "students.csv"
        csv.write_text("name,email\nAda,ada@example.org\nGrace,grace@example.org\n")
        imported = run(
            python, "-m", "service", "import", "students", csv.name, "--url", url,
            cwd=elsewhere, env=env, timeout=60,
        )  # fmt: skip
        assert re.search(r"^\s+created\s+2$", imported.stdout, re.MULTILINE), imported.stdout
        conn = await asyncpg.connect(empty_database)
        try:
            assert await conn.fetchval("select count(*) from students") == 2
        finally:
            await conn.close()

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    print(
        f"service wheel: installed in {installing:.1f} s, all in {time.monotonic() - started:.1f} s"
    )


async def test_the_importer_wheel_alone_imports_into_a_running_service(
    wheels, database_url, db, tmp_path, elsewhere
):
    started = time.monotonic()
    bin = venv(tmp_path / "venv")
    # The wheel with its declared dependencies, resolved by pip from its
    # configured index at the versions the lock names: this is what
    # `pipx install` does, and it fails if the wheel forgets a dependency.
    pins = tmp_path / "pins.txt"
    lock = (PROJECT_ROOT / "requirements" / "serve.txt").read_text()
    pins.write_text(
        "".join(f"{m}\n" for m in re.findall(r"^[A-Za-z0-9_.-]+==[^ ;\\\n]+", lock, re.M))
    )
    run(
        bin / "python", "-m", "pip", "install", "--quiet", "-c", pins,
        wheels["enrollment_import"], cwd=elsewhere,
    )  # fmt: skip
    installing = time.monotonic() - started
    assert installed(bin) <= IMPORTER_CLOSURE, installed(bin) - IMPORTER_CLOSURE
    env = outside_env()
    no_service = attempt(bin / "python", "-c", "import service", cwd=elsewhere, env=env)
    assert "No module named 'service'" in no_service.stderr

    csv = elsewhere / "students.csv"
    csv.write_text("name,email\nAda,ada@example.org\nGrace,grace@example.org\nBad,nope\n")
    async with serving(database_url, tmp_path) as server:
        imported = attempt(
            bin / "enrollment-import", "students", csv.name, "--url", server.url,
            cwd=elsewhere, env=env, timeout=60,
        )  # fmt: skip
    assert imported.returncode == 1, imported
    assert re.search(r"^\s+created\s+2$", imported.stdout, re.MULTILINE), imported.stdout
    assert (elsewhere / "students.csv.rejected.csv").exists()
    rows = await db.fetch("select email from students order by id")
    assert [r["email"] for r in rows] == ["ada@example.org", "grace@example.org"]
    print(
        f"importer wheel: installed in {installing:.1f} s, all in {time.monotonic() - started:.1f} s"
    )
