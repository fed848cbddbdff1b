"""The systemd units of deploy/systemd/ against the code they start (docs/operations.md)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.embedded import PROJECT_ROOT

UNITS = PROJECT_ROOT / "deploy" / "systemd"
# Where docs/operations.md installs the release: the repository's layout.
INSTALL_ROOT = "/opt/enrollment"
CONFIG_SOURCE = (PROJECT_ROOT / "service" / "config.py").read_text()
OPERATIONS = (PROJECT_ROOT / "docs" / "operations.md").read_text()


Unit = dict[tuple[str, str], list[str]]


def unit(name: str) -> Unit:
    """A unit file as {(section, key): [values]}: systemd allows a key more than once."""
    parsed: Unit = {}
    section = ""
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        parsed.setdefault((section, key.strip()), []).append(value.strip())
    return parsed


def values(parsed: Unit, section: str, key: str) -> list[str]:
    return parsed.get((section, key), [])


SERVICES = ["enrollment.service", "enrollment-migrate.service"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_command_a_unit_starts_exists(name):
    for command in values(unit(name), "Service", "ExecStart"):
        program, *args = shlex.split(command)
        assert program == f"{INSTALL_ROOT}/.venv/bin/python", program
        assert args[:2] == ["-m", "service"], args
        # The same command, from the repository's own environment.
        ran = subprocess.run(
            [sys.executable, "-m", "service", *args[2:], "--help"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_variable_a_unit_sets_is_one_the_service_reads(name):
    parser = unit(name)
    names = [v.split("=", 1)[0] for v in values(parser, "Service", "Environment")]
    example = (UNITS / "enrollment.env.example").read_text()
    names += re.findall(r"^([A-Z_]+)=", example, re.MULTILINE)
    assert names
    for variable in names:
        assert f'"{variable}"' in CONFIG_SOURCE, f"{name} sets {variable}, which nothing reads"
    # Secrets come as credentials, never as values.
    for value in values(parser, "Service", "Environment"):
        assert "password=" not in value.lower() and ":" not in value.split("@")[0].split("//")[-1]


@pytest.mark.parametrize("name", SERVICES)
def test_each_file_a_unit_names_is_described_in_the_operations_guide(name):
    parser = unit(name)
    files = values(parser, "Service", "EnvironmentFile")
    files += [v.split(":", 1)[1] for v in values(parser, "Service", "LoadCredential")]
    assert files
    for path in files:
        assert path in OPERATIONS or Path(path).name in OPERATIONS, path
    for credential in values(parser, "Service", "LoadCredential"):
        name_, _ = credential.split(":", 1)
        assert f"%d/{name_}" in " ".join(values(parser, "Service", "Environment")), credential


def test_the_api_starts_only_after_the_migrations():
    api = unit("enrollment.service")
    assert "enrollment-migrate.service" in values(api, "Unit", "Requires")
    assert "enrollment-migrate.service" in " ".join(values(api, "Unit", "After"))
    assert values(unit("enrollment-migrate.service"), "Service", "Type") == ["oneshot"]
    # Each runs as its own role: the owner migrates, the app serves.
    assert "enrollment_owner@" in " ".join(
        values(unit("enrollment-migrate.service"), "Service", "Environment")
    )
    assert "enrollment_app@" in " ".join(values(api, "Service", "Environment"))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", SERVICES)
def test_systemd_itself_finds_nothing_wrong_but_the_missing_install(name, tmp_path):
    # Both units side by side, as in /etc/systemd/system, so Requires= resolves.
    for service in SERVICES:
        shutil.copy(UNITS / service, tmp_path / service)
    ran = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # This machine has no /opt/enrollment: the one thing it may say.
    missing = f"Command {INSTALL_ROOT}/.venv/bin/python is not executable"
    complaints = [
        line for line in (ran.stdout + ran.stderr).splitlines() if line and missing not in line
    ]
    assert complaints == []
