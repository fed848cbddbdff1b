"""Settings from the environment, and how the CLI refuses to start on bad ones."""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from service.config import Config, ConfigError, Token
from service.db import masked
from service.embedded import free_port
from tests.cli import clean_env, one_line, run_cli

SECRET = "s3cret-Value-0123456789"  # long enough to be accepted
OTHER_SECRET = "another-Secret-9876543210"


def test_defaults():
    config = Config.from_env({})

    assert config.database_url is None
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.workers >= 1
    assert config.pool_min_size == 2
    assert config.pool_max_size == 32
    assert config.connect_timeout == 5.0
    assert config.acquire_timeout == 5.0
    assert config.statement_timeout == 5.0
    assert config.tokens == ()
    assert config.log_level == "INFO"
    assert config.access_log is True
    assert config.idempotency_ttl == 86_400.0  # 24 hours
    assert config.access_token_ttl == 3600  # an hour


def test_empty_values_mean_the_default():
    env = {"PORT": "", "DATABASE_URL": "", "LOG_LEVEL": " ", "ACCESS_LOG": ""}

    assert Config.from_env(env) == Config.from_env({})


def test_values_are_read():
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://app@db:5432/enrollment",
            "HOST": "0.0.0.0",
            "PORT": " 9000 ",
            "WEB_CONCURRENCY": "3",
            "DB_POOL_MIN_SIZE": "4",
            "DB_POOL_MAX_SIZE": "4",
            "DB_CONNECT_TIMEOUT": "2.5",
            "LOG_LEVEL": "debug",
            "ACCESS_LOG": "off",
            "IDEMPOTENCY_TTL": "3600.5",
            "ACCESS_TOKEN_TTL": "600",
        }
    )

    assert config.database_url == "postgresql://app@db:5432/enrollment"
    assert config.host == "0.0.0.0"
    assert config.port == 9000
    assert config.workers == 3
    assert (config.pool_min_size, config.pool_max_size) == (4, 4)
    assert config.connect_timeout == 2.5
    assert config.log_level == "DEBUG"
    assert config.access_log is False
    assert config.idempotency_ttl == 3600.5
    assert config.access_token_ttl == 600


def test_config_is_frozen():
    config = Config.from_env({})

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),  # not a number
        ({"PORT": "70000"}, "PORT"),  # above 65535
        ({"PORT": "-1"}, "PORT"),  # negative
        ({"PORT": "80.5"}, "PORT"),  # not an integer
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),  # no workers at all
        ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE"),  # a pool that can never connect
        ({"DB_POOL_MIN_SIZE": "10", "DB_POOL_MAX_SIZE": "5"}, "DB_POOL_MIN_SIZE"),  # min > max
        ({"DB_POOL_MIN_SIZE": "33"}, "DB_POOL_MIN_SIZE"),  # min above the default max
        ({"DB_CONNECT_TIMEOUT": "0"}, "DB_CONNECT_TIMEOUT"),  # zero would never connect
        ({"DB_CONNECT_TIMEOUT": "-1"}, "DB_CONNECT_TIMEOUT"),  # negative
        ({"DB_CONNECT_TIMEOUT": "soon"}, "DB_CONNECT_TIMEOUT"),  # not a number
        ({"DB_STATEMENT_TIMEOUT": "nan"}, "DB_STATEMENT_TIMEOUT"),  # NaN compares false
        ({"DB_ACQUIRE_TIMEOUT": "inf"}, "DB_ACQUIRE_TIMEOUT"),  # unbounded
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),  # not a level
        ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG"),  # not a boolean
        ({"IDEMPOTENCY_TTL": "0"}, "IDEMPOTENCY_TTL"),  # a key that is never kept
        ({"IDEMPOTENCY_TTL": "24h"}, "IDEMPOTENCY_TTL"),  # seconds, like every duration
        ({"IDEMPOTENCY_TTL": "2592001"}, "IDEMPOTENCY_TTL"),  # over 30 days
        ({"ONEROSTER_SCHOOL_ID": "lincoln high"}, "ONEROSTER_SCHOOL_ID"),  # no space in a sourcedId
        ({"ONEROSTER_SCHOOL_ID": "x" * 256}, "ONEROSTER_SCHOOL_ID"),  # over 255 characters
        ({"ONEROSTER_SCHOOL_NAME": "Lincoln\x07High"}, "ONEROSTER_SCHOOL_NAME"),  # control
        ({"ONEROSTER_SCHOOL_NAME": "x" * 256}, "ONEROSTER_SCHOOL_NAME"),  # over 255 characters
        ({"ONEROSTER_BASE_URL": "sis.example.edu"}, "ONEROSTER_BASE_URL"),  # no scheme
        ({"ONEROSTER_BASE_URL": "ftp://sis.example.edu"}, "ONEROSTER_BASE_URL"),  # not http(s)
        ({"ONEROSTER_BASE_URL": "https://sis.example.edu/?x=1"}, "ONEROSTER_BASE_URL"),  # a query
        ({"ONEROSTER_BASE_URL": "https://user@sis.example.edu"}, "ONEROSTER_BASE_URL"),  # a user
        ({"ACCESS_TOKEN_TTL": "60"}, "ACCESS_TOKEN_TTL"),  # clients renew 60 s ahead
        ({"ACCESS_TOKEN_TTL": "86401"}, "ACCESS_TOKEN_TTL"),  # over a day: tokens not revocable
        ({"ACCESS_TOKEN_TTL": "600.5"}, "ACCESS_TOKEN_TTL"),  # expires_in is whole seconds
        ({"ACCESS_TOKEN_TTL": "1h"}, "ACCESS_TOKEN_TTL"),  # seconds, like every duration
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(env, variable):
    with pytest.raises(ConfigError) as error:
        Config.from_env(env)

    assert variable in str(error.value)


def test_the_oneroster_settings():
    assert (Config.oneroster_school_name, Config.oneroster_school_id) == ("School", "school")
    assert Config.from_env({}).oneroster_base_url == ""
    config = Config.from_env(
        {
            "ONEROSTER_SCHOOL_NAME": " Lincoln High ",
            "ONEROSTER_SCHOOL_ID": "lincoln-hs",
            "ONEROSTER_BASE_URL": "https://sis.example.edu/roster/",
        }
    )
    assert config.oneroster_school_name == "Lincoln High"
    assert config.oneroster_school_id == "lincoln-hs"
    assert config.oneroster_base_url == "https://sis.example.edu/roster"  # no trailing slash


def test_config_error_is_a_value_error():
    # Callers that only know ValueError still catch it.
    with pytest.raises(ValueError, match="PORT"):
        Config.from_env({"PORT": "abc"})


# -- API tokens -------------------------------------------------------------------


def test_tokens_are_parsed():
    config = Config.from_env(
        {"API_TOKENS": f"ci:read:{SECRET}, admin:write:{OTHER_SECRET}\nlate:read:{SECRET}x"}
    )

    assert config.tokens == (
        Token(name="ci", scope="read", secret=SECRET),
        Token(name="admin", scope="write", secret=OTHER_SECRET),
        Token(name="late", scope="read", secret=SECRET + "x"),
    )


def test_secret_may_contain_colons():
    config = Config.from_env({"API_TOKENS": f"ci:read:{SECRET}:with:colons"})

    assert config.tokens[0].secret == f"{SECRET}:with:colons"


def test_secrets_do_not_show_in_repr():
    config = Config.from_env({"API_TOKENS": f"ci:read:{SECRET}"})

    assert SECRET not in repr(config)
    assert SECRET not in repr(config.tokens[0])


@pytest.mark.parametrize(
    "entry",
    [
        f"ci:admin:{SECRET}",  # scope is neither read nor write
        f"ci:READ:{SECRET}",  # scopes are lower case
        f"ci:{SECRET}",  # scope missing
        f":read:{SECRET}",  # name missing
        "ci:read:",  # secret missing
        f"ci:read:{SECRET[:15]}",  # secret of 15 characters, too short to guess-proof
        f"ci:read:{SECRET},ci:write:{OTHER_SECRET}",  # the same name twice
        SECRET,  # a bare secret
    ],
)
def test_bad_token_entry_is_rejected_without_showing_the_secret(entry):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"API_TOKENS": entry})

    message = str(error.value)
    assert "API_TOKENS" in message
    for secret in (SECRET, SECRET[:15], OTHER_SECRET):
        assert secret not in message
    assert SECRET[:8] not in message  # not even a prefix


def test_secret_of_16_characters_is_accepted():
    config = Config.from_env({"API_TOKENS": f"ci:read:{SECRET[:16]}"})

    assert config.tokens[0].secret == SECRET[:16]


@pytest.mark.parametrize(
    "secret",
    [
        "REPLACE-ME",  # deploy/secrets/api_tokens.example, uncommented as it is
        "replace-me-with-a-random-write-secret",  # what that example held before
        "change-me-0123456789abcdef",
        "a-long-PLACEHOLDER-for-the-real-one",
    ],
)
def test_placeholder_secret_is_refused_saying_how_to_make_one(secret):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"API_TOKENS": f"admin:write:{secret}"})

    message = str(error.value)
    assert "API_TOKENS" in message and "'admin'" in message
    assert "placeholder" in message and "openssl rand -hex 32" in message
    assert secret not in message


def test_tokens_file_is_read(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"# one token per line\n\nci:read:{SECRET}\n  ops:write:{OTHER_SECRET}  \n",
        encoding="utf-8",
    )

    config = Config.from_env({"API_TOKENS_FILE": str(tokens), "API_TOKENS": f"env:read:{SECRET}"})

    assert {(t.name, t.scope, t.secret) for t in config.tokens} == {
        ("env", "read", SECRET),
        ("ci", "read", SECRET),
        ("ops", "write", OTHER_SECRET),
    }


def test_bad_entry_in_tokens_file_names_the_file_not_the_secret(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci:read:{SECRET}\nops:root:{OTHER_SECRET}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        Config.from_env({"API_TOKENS_FILE": str(tokens)})

    assert "API_TOKENS_FILE" in str(error.value)
    assert OTHER_SECRET not in str(error.value)
    assert SECRET not in str(error.value)


def test_missing_tokens_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="API_TOKENS_FILE"):
        Config.from_env({"API_TOKENS_FILE": str(tmp_path / "absent")})


# -- DATABASE_PASSWORD_FILE --------------------------------------------------------------

# Characters a URL must escape, and a trailing space that must survive.
DB_PASSWORD = "p@ss:w/rd?#%41 "


def password_file(tmp_path, text: str) -> str:
    path = tmp_path / "db_password"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_database_password_file_is_put_into_the_url(tmp_path):
    config = Config.from_env(
        {
            "DATABASE_URL": "postgresql://enrollment_app@db:5432/enrollment?sslmode=require",
            # As `openssl rand -hex 32 > file` or an editor leaves it.
            "DATABASE_PASSWORD_FILE": password_file(tmp_path, DB_PASSWORD + "\n"),
        }
    )

    url = urlsplit(config.database_url)
    assert (url.username, url.hostname, url.port, url.path, url.query) == (
        "enrollment_app",
        "db",
        5432,
        "/enrollment",
        "sslmode=require",
    )
    assert unquote(url.password) == DB_PASSWORD
    # libpq (psycopg, so `migrate`) reads the same password back.
    assert conninfo_to_dict(config.database_url)["password"] == DB_PASSWORD
    assert DB_PASSWORD not in repr(config)


def test_database_url_alone_is_used_as_it_is():
    url = "postgresql://enrollment_app:pw@db:5432/enrollment"

    assert Config.from_env({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("url", "text", "reason"),
    [
        ("postgresql://app@db/x", "", "is empty"),
        ("postgresql://app@db/x", "\n", "is empty"),
        ("postgresql://app@db/x", f"{DB_PASSWORD}\nsecond line\n", "on one line"),
        ("postgresql://app@db/x", f"{DB_PASSWORD}\r\n", "on one line"),  # CRLF
        (None, DB_PASSWORD, "DATABASE_URL is not"),
        ("postgresql://app:other@db/x", DB_PASSWORD, "password too"),
        ("postgresql://app@db/x?password=other", DB_PASSWORD, "password too"),
        ("postgresql://db/x", DB_PASSWORD, "names no user"),
    ],
)
def test_unusable_database_password_file_is_a_config_error(tmp_path, url, text, reason):
    env = {"DATABASE_PASSWORD_FILE": password_file(tmp_path, text)}
    if url:
        env["DATABASE_URL"] = url

    with pytest.raises(ConfigError) as error:
        Config.from_env(env)

    message = str(error.value)
    assert "DATABASE_PASSWORD_FILE" in message and reason in message
    assert DB_PASSWORD.strip() not in message


@pytest.mark.parametrize("make", ["missing", "directory", "binary"])
def test_unreadable_database_password_file_names_the_variable_and_the_path(tmp_path, make):
    path = tmp_path / "db_password"
    if make == "directory":
        path.mkdir()
    elif make == "binary":
        path.write_bytes(b"\xff\xfe")

    with pytest.raises(ConfigError) as error:
        Config.from_env(
            {"DATABASE_URL": "postgresql://app@db/x", "DATABASE_PASSWORD_FILE": str(path)}
        )

    assert str(error.value).startswith(f"DATABASE_PASSWORD_FILE: cannot read {path}: ")


# -- masked(): DSNs in logs and error lines ----------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://app:p%40ss@db/x", "postgresql://app:***@db/x"),  # escaped
        ("postgresql://app:a@b@db/x", "postgresql://app:***@db/x"),  # an unescaped @
        ("postgresql://app@db/x?password=s3cret", "postgresql://app@db/x?password=***"),
        (
            "postgresql://app@db/x?sslmode=verify-full&sslpassword=s3cret",
            "postgresql://app@db/x?sslmode=verify-full&sslpassword=***",
        ),
        ("postgres://app:s3cret@h1,h2:5433/x", "postgres://app:***@h1,h2:5433/x"),  # two hosts
        (
            "postgresql:///x?host=/run/postgresql&password=s3cret",  # a unix socket
            "postgresql:///x?host=/run/postgresql&password=***",
        ),
        ("postgresql://app@db/x", "postgresql://app@db/x"),  # nothing to hide
        ("host=db password=s3cret", "***"),  # not a URL: hidden whole
        ("postgresql://[db/x?password=s3cret", "***"),  # unparsable
        ("", ""),
    ],
)
def test_masked_hides_every_password(dsn, shown):
    assert masked(dsn) == shown


# -- the command line refuses to start -------------------------------------------------


async def test_cli_exits_when_the_database_port_is_closed():
    port = free_port()
    env = clean_env(
        DATABASE_URL=f"postgresql://x:hunter2-password@127.0.0.1:{port}/x", DB_CONNECT_TIMEOUT="2"
    )

    code, stderr = await run_cli(env)

    assert code == 2
    line = one_line(stderr)
    assert "cannot connect" in line
    assert f"127.0.0.1:{port}" in line
    assert "hunter2-password" not in stderr


async def test_migrate_exits_with_one_line_when_the_database_port_is_closed():
    port = free_port()
    env = clean_env(DATABASE_URL=f"postgresql://x:hunter2-password@127.0.0.1:{port}/x")

    code, stderr = await run_cli(env, "migrate")

    assert code == 2
    line = one_line(stderr)
    assert "migrate failed" in line
    assert f"127.0.0.1:{port}" in line
    assert "hunter2-password" not in stderr


@pytest.mark.parametrize("command", ["serve", "migrate"])
async def test_startup_error_line_hides_passwords_in_the_query_string(command):
    port = free_port()
    url = f"postgresql://x@127.0.0.1:{port}/x?password=hunter2-password&sslpassword=hunter3-key"
    env = clean_env(DATABASE_URL=url, DB_CONNECT_TIMEOUT="2")

    code, stderr = await run_cli(env, command)

    assert code == 2
    line = one_line(stderr)
    assert f"127.0.0.1:{port}" in line and "password=***" in line
    assert "hunter2" not in stderr and "hunter3" not in stderr


@pytest.mark.parametrize("command", ["serve", "migrate"])
async def test_cli_reads_the_database_password_from_its_file(tmp_path, command):
    # As docker-compose.yml runs both: the URL names the user, the secret file
    # holds the password, and neither start-up error line shows it.
    port = free_port()
    env = clean_env(
        DATABASE_URL=f"postgresql://x@127.0.0.1:{port}/x",
        DATABASE_PASSWORD_FILE=password_file(tmp_path, "hunter2-password\n"),
        DB_CONNECT_TIMEOUT="2",
    )

    code, stderr = await run_cli(env, command)

    assert code == 2
    line = one_line(stderr)
    assert f"x:***@127.0.0.1:{port}" in line
    assert "hunter2" not in stderr


async def test_cli_exits_when_the_database_password_file_cannot_be_read(tmp_path):
    env = clean_env(
        DATABASE_URL="postgresql://x@127.0.0.1:1/x",
        DATABASE_PASSWORD_FILE=str(tmp_path / "absent"),
    )

    code, stderr = await run_cli(env, "migrate")

    assert code == 2
    assert "DATABASE_PASSWORD_FILE: cannot read" in one_line(stderr)


async def test_cli_exits_when_the_database_is_not_migrated(empty_database):
    code, stderr = await run_cli(clean_env(DATABASE_URL=empty_database, DB_CONNECT_TIMEOUT="5"))

    assert code == 2
    line = one_line(stderr)
    assert "migrat" in line  # tells the operator what to do
    assert "students" in line  # and what is missing


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),  # an unusable setting
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),  # another one
        ({"API_TOKENS": f"ci:root:{SECRET}"}, "API_TOKENS"),  # a bad token, kept secret
    ],
)
async def test_cli_exits_on_a_bad_setting(settings, variable):
    env = clean_env(DATABASE_URL="postgresql://x@127.0.0.1:1/x")

    code, stderr = await run_cli({**env, **settings})

    assert code == 2
    line = one_line(stderr)
    assert variable in line
    assert SECRET not in stderr


async def test_cli_exits_without_database_url():
    code, stderr = await run_cli(clean_env())

    assert code == 2
    assert "DATABASE_URL" in one_line(stderr)
