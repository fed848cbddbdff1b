"""deploy/patroni/ holds together: what `make failover-drill` runs and an operator copies.

The drill itself (bench/failover.py) starts the cluster and breaks it; it
runs in CI (.ci/run), not here. These check the files it starts from, in
a second: HAProxy accepts its configuration, the routes and the nodes
agree on every port, and Patroni's settings are the ones the guarantees in
docs/operations.md rest on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.cluster import DEPLOY, PRIMARY_PORT, REWIND_USER, read_env

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)


def patroni() -> dict:
    return yaml.safe_load((DEPLOY / "patroni.yml").read_text())


def nodes() -> list[dict[str, str]]:
    return [read_env(DEPLOY / f"node{n}.env") for n in (1, 2, 3)]


def _haproxy_text() -> str:
    return (DEPLOY / "haproxy.cfg").read_text()


def haproxy_sections() -> dict[str, str]:
    text = _haproxy_text()
    return {
        match.group(1): match.group(2)
        for match in re.finditer(r"^listen (\w+)\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    }


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)")
def test_haproxy_accepts_the_configuration():
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_sends_the_service_to_the_leader_only_and_reads_to_the_standbys():
    sections = haproxy_sections()
    assert f"bind 127.0.0.1:{PRIMARY_PORT}" in sections["primary"]
    assert "option httpchk GET /primary" in sections["primary"]
    assert "option httpchk GET /replica" in sections["replicas"]
    # Sessions to a node that stops being the leader are cut, so pools learn at once.
    for section in sections.values():
        assert "on-marked-down shutdown-sessions" in section
    # A connection to a dead leader fails at once rather than being retried
    # three times a second apart (writes came back 3.2 s after a kill, not 1.7 s).
    assert re.search(r"^defaults\n(?:    .*\n)*    retries 0$", _haproxy_text(), re.M)


def test_every_node_is_behind_both_routes_with_its_own_ports():
    sections = haproxy_sections()
    seen = set()
    for env in nodes():
        postgres, rest = env["PATRONI_POSTGRESQL_LISTEN"], env["PATRONI_RESTAPI_LISTEN"]
        port = rest.rpartition(":")[2]
        line = f"server {env['PATRONI_NAME']} {postgres} check port {port}"
        for name, section in sections.items():
            assert line in section, f"{name}: {line}"
        assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == postgres
        assert env["PATRONI_RESTAPI_CONNECT_ADDRESS"] == rest
        seen |= {
            postgres,
            rest,
            env["PATRONI_POSTGRESQL_DATA_DIR"],
            env["PATRONI_POSTGRESQL_PGPASS"],
        }
    assert len(seen) == 12, "two nodes share a port, a data directory or a pgpass file"


def test_no_password_is_in_the_files_an_operator_copies():
    for env in nodes():
        assert not [key for key in env if "PASSWORD" in key]
    authentication = patroni()["postgresql"]["authentication"]
    assert all("password" not in user for user in authentication.values())
    assert "password" not in str(patroni()["etcd3"]).lower()


def test_patroni_keeps_every_acknowledged_commit_and_fails_over_fast():
    config = patroni()
    dcs = config["bootstrap"]["dcs"]
    # A commit waits for the synchronous standby, and waits rather than go on without one.
    assert dcs["synchronous_mode"] is True
    assert dcs["synchronous_mode_strict"] is True
    assert dcs["postgresql"]["parameters"]["synchronous_commit"] == "on"
    # A dead postmaster is failed over, not restarted in place for minutes.
    assert dcs["primary_start_timeout"] == 0
    # Patroni's own rule for the timings.
    assert dcs["ttl"] >= dcs["loop_wait"] + 2 * dcs["retry_timeout"]
    # Nothing that would end a commit's wait for the standby (docs/operations.md).
    parameters = dcs["postgresql"]["parameters"] | config["postgresql"].get("parameters", {})
    assert "client_connection_check_interval" not in parameters
    assert config["postgresql"]["bin_dir"] == "/usr/lib/postgresql/15/bin"


def test_the_rewind_user_is_the_one_the_drill_grants_connect_to():
    # roles.sql revokes CONNECT from PUBLIC on "postgres"; bench/failover.py grants it back.
    assert patroni()["postgresql"]["authentication"]["rewind"]["username"] == REWIND_USER


def test_every_connection_needs_a_password_on_every_node():
    config = patroni()
    # bootstrap.pg_hba would be added after initdb's own lines, which trust
    # 127.0.0.1; postgresql.pg_hba replaces the file on every node.
    assert "pg_hba" not in config["bootstrap"]
    rules = config["postgresql"]["pg_hba"]
    assert rules and all(rule.split()[-1] == "scram-sha-256" for rule in rules)


def test_changing_the_cluster_through_the_rest_api_asks_for_credentials():
    names = read_env(DEPLOY / "secrets.env.example")
    assert {"PATRONI_RESTAPI_USERNAME", "PATRONI_RESTAPI_PASSWORD"} <= names.keys()
