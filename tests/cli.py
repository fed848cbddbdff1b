"""Running the real command line, for tests of how it refuses to start."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from service.embedded import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


def clean_env(**settings: str) -> dict[str, str]:
    """The test's environment without any service setting, plus `settings`."""
    ours = {
        "DATABASE_URL",
        "DATABASE_PASSWORD_FILE",
        "API_TOKENS",
        "API_TOKENS_FILE",
        "REQUIRE_TOKENS",
        "PORT",
        "HOST",
        "LOG_LEVEL",
        "WEB_CONCURRENCY",
    }
    env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("DB_")}
    return {**env, "PORT": str(free_port()), "WEB_CONCURRENCY": "1", **settings}


async def run_cli(env: dict[str, str], command: str = "serve") -> tuple[int, str]:
    """Run `python -m service <command>`; return its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the service started instead of refusing to")
    return process.returncode, stderr.decode()


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]
