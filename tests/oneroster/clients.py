"""The OneRoster client the tests read the provider with, in a virtual environment of its own.

timeback-oneroster needs Python >= 3.12 and the service's own venv is older, so
the client gets a venv of its own under .data/oneroster-client/, built once
from client-requirements.txt (every file checked against its hash) and built
again only when that file changes. The tests run read_with_client.py in it as
a subprocess: they see the client's output, never its code.

The Python is, first found: $ONEROSTER_CLIENT_PYTHON, python3.12 or
python3.13 on PATH, ~/.pyenv/versions/3.1[2-9]*/bin/python3. Each is asked
for its version (a pyenv shim of a version that is not selected fails there).
Without one the tests are skipped saying why, unless
REQUIRE_ONEROSTER_CLIENT=1 (CI sets it): then they fail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
LOCK = HERE / "client-requirements.txt"
DRIVER = HERE / "read_with_client.py"
HOME = PROJECT_ROOT / ".data" / "oneroster-client"
REQUIRED = (3, 12)
_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


class Unavailable(Exception):
    """No client can run here; the message says why."""


def required() -> bool:
    """Whether a missing client is a failure (CI) rather than a skip."""
    return os.environ.get("REQUIRE_ONEROSTER_CLIENT") == "1"


def unavailable(reason: str) -> None:
    """Skip the test saying why, or fail it where the client is required."""
    if required():
        pytest.fail(f"REQUIRE_ONEROSTER_CLIENT=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def _version(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", _VERSION], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    if done.returncode != 0:
        return None
    major, minor = done.stdout.strip().split(".")
    return int(major), int(minor)


def candidates() -> list[str]:
    """Where a Python for the client may be, in the order they are tried."""
    found = []
    if chosen := os.environ.get("ONEROSTER_CLIENT_PYTHON"):
        found.append(chosen)
    # The lock is compiled for 3.12: the oldest Python that can run the client first.
    for name in ("python3.12", "python3.13"):
        if path := shutil.which(name):
            found.append(path)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found += [str(p) for p in sorted(pyenv.glob("3.1[2-9]*/bin/python3"))]
    return found


def find_python() -> str:
    """The first candidate that runs and is Python >= 3.12."""
    tried = []
    for python in candidates():
        version = _version(python)
        if version is not None and version >= REQUIRED:
            return python
        tried.append(
            f"{python} ({'does not run' if version is None else '.'.join(map(str, version))})"
        )
    looked = ", ".join(tried) or "none found"
    raise Unavailable(
        "timeback-oneroster needs Python >= 3.12 and there is none here "
        f"(ONEROSTER_CLIENT_PYTHON, python3.13/python3.12 on PATH, ~/.pyenv/versions; tried: {looked})"
    )


def _stamp(python: str) -> str:
    """What the venv was built from: the lock file's digest and the interpreter."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    return f"{digest} {Path(python).resolve()}\n"


def client_python() -> Path:
    """The venv's python with the locked client installed, building the venv if needed."""
    python = find_python()
    venv = HOME / "venv"
    stamp_file = venv / ".built-from"
    stamp = _stamp(python)
    HOME.mkdir(parents=True, exist_ok=True)
    # Two test runs at once build it once: the second waits, then finds the stamp.
    with (HOME / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return venv / "bin" / "python"
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [python, "-m", "venv", str(venv)],
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-deps",
                "-r",
                str(LOCK),
            ],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise Unavailable(
                    f"building the client's venv failed at `{' '.join(step[:4])} ...` "
                    f"(exit {done.returncode}):\n{done.stdout}{done.stderr}"
                )
        # Written last: a venv without it is half built and is built again.
        stamp_file.write_text(stamp)
        return venv / "bin" / "python"


def read_with_client(python: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run the driver in the client's venv; its JSON output.

    `-I` keeps the venv apart from this process: no PYTHONPATH, no user site.
    The client's own settings (TIMEBACK_*, ONEROSTER_*) are left out of its
    environment, so only the arguments configure it.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIMEBACK_", "ONEROSTER_", "PYTHON"))
    }
    done = subprocess.run(
        [str(python), "-I", str(DRIVER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"the client failed (exit {done.returncode}):\n{done.stderr}"
    return json.loads(done.stdout)


if __name__ == "__main__":
    # `python -m tests.oneroster.clients`: build (or find) the venv and say where it is.
    try:
        print(client_python())
    except Unavailable as why:
        sys.exit(str(why))
