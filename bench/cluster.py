"""The three-node Patroni cluster of deploy/patroni/, run on 127.0.0.1 for the failover drill.

Everything comes from the deploy files an operator uses: patroni.yml and
node1-3.env for the nodes, etcd.env for the store, haproxy.cfg for the
router. The drill only moves the data under a work directory of its own and
makes up the passwords. Debian 12's packages: `apt-get install patroni
etcd-server haproxy postgresql-15`.

PostgreSQL refuses to run as root. As root (CI, containers) every process
of the cluster but HAProxy runs as the `postgres` user, through `setpriv`,
which execs Patroni directly (`runuser` would stay in between, and kill
Patroni 2 s after passing it a SIGTERM, orphaning its postmaster). A
postmaster outlives its Patroni when that is killed, so the teardown ends
the servers by the pid in each data directory, and then looks for anything
of the work directory still running.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "patroni"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# A fixed place, so a drill that died can be cleaned up by the next one.
WORKDIR = Path(f"/tmp/enrollment-failover-{os.getuid()}")
PACKAGES = "patroni etcd-server haproxy postgresql-15"
PRIMARY_PORT = 5000  # haproxy.cfg's `listen primary`
SYSTEM_USER = "postgres"
REWIND_USER = "rewind_user"  # patroni.yml's postgresql.authentication.rewind


class ClusterError(RuntimeError):
    pass


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class Node:
    name: str
    env: dict[str, str]
    data_dir: Path
    log: Path
    process: subprocess.Popen | None = None

    @property
    def rest(self) -> str:
        return "http://" + self.env["PATRONI_RESTAPI_LISTEN"]

    @property
    def pg_port(self) -> int:
        return _port(self.env["PATRONI_POSTGRESQL_LISTEN"])

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def get(self, path: str, timeout: float = 0.5) -> tuple[int, dict]:
        """GET on the node's Patroni REST API: (status, JSON body); (0, {}) when it does not answer."""
        try:
            with urllib.request.urlopen(self.rest + path, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.loads(error.read() or b"{}")
            except ValueError:
                return error.code, {}
        except (OSError, ValueError):
            return 0, {}

    def is_primary(self) -> bool:
        """Patroni says primary and its postmaster lives (Patroni says so for a moment after it died)."""
        return self.get("/primary")[0] == 200 and _alive(self.postmaster_pid())


@dataclass
class Cluster:
    workdir: Path = WORKDIR
    nodes: list[Node] = field(default_factory=list)
    etcd: subprocess.Popen | None = None
    haproxy: subprocess.Popen | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def superuser_dsn(self) -> str:
        password = self.passwords["PATRONI_SUPERUSER_PASSWORD"]
        return f"postgresql://postgres:{password}@127.0.0.1:{PRIMARY_PORT}/postgres"

    # -- starting -----------------------------------------------------------

    def _lock(self) -> None:
        """One drill at a time: a second one would kill the first's cluster as leftovers.

        The lock is the open file's; it goes when this process ends, however.
        """
        self._lock_file = open(f"{self.workdir}.lock", "w")  # held until the process ends
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another drill is running ({self.workdir}.lock is held); wait for it to end"
            ) from None

    def check_tools(self) -> None:
        missing = [
            tool
            for tool in ("patroni", "etcd", "haproxy")
            if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
        ]
        if not (PG_BIN / "postgres").exists():
            missing.append(str(PG_BIN / "postgres"))
        if missing:
            raise ClusterError(f"the drill needs {', '.join(missing)}: apt-get install {PACKAGES}")
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise ClusterError(
                    f"running as root, the drill runs PostgreSQL as the '{SYSTEM_USER}' user,"
                    f" which does not exist: apt-get install {PACKAGES}"
                ) from None

    def _ports(self) -> list[int]:
        etcd = read_env(DEPLOY / "etcd.env")
        ports = [_port(etcd["ETCD_LISTEN_CLIENT_URLS"]), _port(etcd["ETCD_LISTEN_PEER_URLS"])]
        for n in (1, 2, 3):
            env = read_env(DEPLOY / f"node{n}.env")
            ports += [_port(env["PATRONI_RESTAPI_LISTEN"]), _port(env["PATRONI_POSTGRESQL_LISTEN"])]
        return [*ports, PRIMARY_PORT, PRIMARY_PORT + 1]

    def _as_cluster_user(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return [
            "setpriv",
            f"--reuid={SYSTEM_USER}",
            f"--regid={SYSTEM_USER}",
            "--init-groups",
            *command,
        ]

    def _give(self, path: Path) -> None:
        """Let the cluster user own `path` (as root; otherwise it is ours already)."""
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 60.0) -> float:
        """From nothing to a leader, a synchronous standby and HAProxy routing to the leader.

        Returns the seconds it took.
        """
        started = time.monotonic()
        self.check_tools()
        self._lock()
        clean_leftovers(self.workdir)
        taken = [port for port in self._ports() if not _port_free(port)]
        if taken:
            raise ClusterError(
                f"127.0.0.1 ports {', '.join(map(str, taken))} are in use; the drill needs them"
                " (deploy/patroni/*.env, haproxy.cfg)"
            )
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(mode=0o755, parents=True)
        self._give(self.workdir)
        # secrets.env.example's names, with passwords made up for this run.
        self.passwords = {
            name: "patroni" if name.endswith("_USERNAME") else secrets.token_urlsafe(18)
            for name in read_env(DEPLOY / "secrets.env.example")
        }
        shutil.copy(DEPLOY / "patroni.yml", self.workdir / "patroni.yml")
        self.start_etcd()
        for n in (1, 2, 3):
            home = self.workdir / f"node{n}"
            home.mkdir(mode=0o700)
            self._give(home)
            env = read_env(DEPLOY / f"node{n}.env")
            env["PATRONI_POSTGRESQL_DATA_DIR"] = str(home / "data")
            env["PATRONI_POSTGRESQL_PGPASS"] = str(home / "pgpass")
            node = Node(env["PATRONI_NAME"], env, home / "data", self.workdir / f"node{n}.log")
            self.nodes.append(node)
            self.start_node(node)
        self.wait_until(self.settled, timeout, "a leader and a synchronous standby")
        if asyncio.run(self._trusts()):
            raise ClusterError("a node lets the superuser in without a password: see pg_hba")
        self.start_haproxy()
        self.wait_until(self._routes, timeout, "HAProxy routing to the leader")
        return time.monotonic() - started

    def start_etcd(self) -> None:
        data = self.workdir / "etcd"
        data.mkdir(mode=0o700, exist_ok=True)
        self._give(data)
        env = {**os.environ, **read_env(DEPLOY / "etcd.env"), "ETCD_DATA_DIR": str(data)}
        if (data / "member").exists():
            env["ETCD_INITIAL_CLUSTER_STATE"] = "existing"
        self.etcd = self._spawn(self._as_cluster_user(["etcd"]), env, self.workdir / "etcd.log")

    def start_node(self, node: Node) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONI_")}
        env |= node.env | self.passwords
        command = self._as_cluster_user(["patroni", str(self.workdir / "patroni.yml")])
        node.process = self._spawn(command, env, node.log)

    def start_haproxy(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        command = [haproxy, "-db", "-f", str(DEPLOY / "haproxy.cfg")]
        self.haproxy = self._spawn(command, dict(os.environ), self.workdir / "haproxy.log")

    def _spawn(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with log.open("ab") as out:
            return subprocess.Popen(
                command,
                env=env,
                cwd=self.workdir,  # what clean_leftovers() recognises them by
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the drill reaches the drill only
            )

    # -- looking ------------------------------------------------------------

    def members(self) -> list[dict]:
        """Patroni's view of the cluster (GET /cluster) from the first node that answers."""
        for node in self.nodes:
            status, body = node.get("/cluster")
            if status == 200:
                return body.get("members", [])
        return []

    def leader(self) -> Node | None:
        return next((node for node in self.nodes if node.is_primary()), None)

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def sync_standby(self) -> Node | None:
        for member in self.members():
            if member.get("role") == "sync_standby" and member.get("state") in (
                "running",
                "streaming",
            ):
                return self.node(member["name"])
        return None

    def settled(self) -> bool:
        """A primary, a synchronous standby, and every node running."""
        members = self.members()
        running = [m for m in members if m.get("state") in ("running", "streaming")]
        return (
            self.leader() is not None
            and self.sync_standby() is not None
            and len(running) == len(self.nodes)
        )

    def writable(self) -> bool:
        return self.leader() is not None and self.sync_standby() is not None

    def _routes(self) -> bool:
        """Five connections in a row through HAProxy's primary port reach a primary.

        HAProxy takes its servers for up until their first checks, so for a
        moment after it starts it may send a session to a standby.
        """
        return asyncio.run(self._reaches_primary(5))

    async def _trusts(self) -> bool:
        """Whether some node takes the superuser without a password (pg_hba.conf trusts)."""
        for node in self.nodes:
            try:
                conn = await asyncpg.connect(
                    f"postgresql://postgres@127.0.0.1:{node.pg_port}/postgres", timeout=2
                )
            except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
                continue
            except asyncpg.InterfaceError as error:  # "no password supplied"
                if "password" in str(error):
                    continue
                raise
            await conn.close()
            return True
        return False

    async def _reaches_primary(self, times: int) -> bool:
        for _ in range(times):
            try:
                conn = await asyncpg.connect(self.superuser_dsn, timeout=1)
                try:
                    if await conn.fetchval("select pg_is_in_recovery()"):
                        return False
                finally:
                    await conn.close()
            # Refused, or cut by HAProxy marking the node down under it.
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False
        return True

    def wait_until(self, condition, timeout: float, what: str) -> float:
        """Seconds until `condition()` holds; ClusterError after `timeout`."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                raise ClusterError(f"no {what} after {timeout:.0f} s; logs in {self.workdir}")
            time.sleep(0.1)
        return time.monotonic() - started

    # -- breaking -----------------------------------------------------------

    def kill_postmaster(self, node: Node) -> int:
        """SIGKILL the node's postmaster (its Patroni lives on); the pid killed."""
        pid = node.postmaster_pid()
        if not _alive(pid):
            raise ClusterError(f"{node.name} has no running postmaster")
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_node(self, node: Node) -> None:
        """The whole node dies at once: SIGKILL its Patroni and its postmaster."""
        pid = node.postmaster_pid()
        if node.process is not None:
            node.process.kill()
            node.process.wait()
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def stop_etcd(self) -> None:
        if self.etcd is not None:
            self.etcd.kill()
            self.etcd.wait()
            self.etcd = None

    # -- stopping -----------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop everything the cluster started; what had to be killed by force."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        forced = []
        deadline = time.monotonic() + 20
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
                forced.append(f"patroni {node.name}")
        for node in self.nodes:
            pid = node.postmaster_pid()
            if _alive(pid):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the data goes anyway
                if not _wait_gone(pid, 10):
                    os.kill(pid, signal.SIGKILL)
                forced.append(f"postmaster {node.name}")
        for process in (self.haproxy, self.etcd):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.haproxy = self.etcd = None
        forced += clean_leftovers(self.workdir)
        return forced


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def clean_leftovers(workdir: Path) -> list[str]:
    """Kill whatever still runs from `workdir` (a drill that died); what was killed."""
    killed = []
    marker = str(workdir)
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if marker in cmdline or _in_data_dir(process, marker):
                process.kill()
                killed.append(f"{process.pid} {cmdline[:80]}")
        except psutil.Error:
            continue
    return killed


def _in_data_dir(process: psutil.Process, marker: str) -> bool:
    """A postmaster or backend: its cwd is its data directory."""
    try:
        return process.cwd().startswith(marker) and process.pid != os.getpid()
    except psutil.Error:
        return False
