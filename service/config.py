"""Settings, read once from the environment and checked before anything starts.

Secrets can come from files, so that none has to sit in the environment
(Docker secrets, Kubernetes secret volumes):

DATABASE_PASSWORD_FILE
    A file holding the database password alone. Its text, less trailing
    newlines (as the postgres image reads POSTGRES_PASSWORD_FILE), becomes the
    password of DATABASE_URL, which then names the user but holds no password:
    DATABASE_URL=postgresql://enrollment_app@db:5432/enrollment. Every command
    reads it, `migrate` included.
API_TOKENS_FILE
    Tokens, one name:scope:secret a line, added to those in API_TOKENS. A
    secret still holding a template's placeholder (REPLACE-ME) is refused.

A file that cannot be read, or holds nothing usable, stops the start with a
ConfigError naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

# Words that mark a secret copied from a template (deploy/secrets/api_tokens.example)
# instead of generated: a random secret never contains them.
PLACEHOLDERS = ("replace-me", "change-me", "changeme", "placeholder")
# IDEMPOTENCY_TTL at most (30 days): a client retries within minutes or hours.
MAX_IDEMPOTENCY_TTL = 30 * 86_400
# ACCESS_TOKEN_TTL bounds. Clients renew ahead of expires_in (timeback-oneroster
# 60 s ahead), so a lifetime near that would have them ask on every request;
# an access token cannot be revoked before it expires (service/access_tokens.py),
# so it lives a day at most.
MIN_ACCESS_TOKEN_TTL = 120
MAX_ACCESS_TOKEN_TTL = 86_400


class ConfigError(ValueError):
    """A setting has a value the service cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    scope: str  # "read", "write" or "registrar" (write, and may override rules)
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Config:
    # Out of repr: the URL may carry the password.
    database_url: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    pool_min_size: int = 2
    pool_max_size: int = 32
    connect_timeout: float = 5.0
    acquire_timeout: float = 5.0
    statement_timeout: float = 5.0
    statement_cache_size: int = 100
    # Send statement/lock timeouts as connection start-up parameters. PgBouncer
    # refuses unknown start-up parameters: turn this off behind it and set the
    # timeouts on the database role instead (see README).
    session_settings: bool = True
    shutdown_timeout: float = 10.0
    # aiohttp closes a connection that has not sent a complete request head
    # within keepalive_timeout, so this also cuts off slow-header clients.
    keepalive_timeout: float = 15.0
    body_timeout: float = 10.0
    retry_after: int = 2
    tokens: tuple[Token, ...] = ()
    require_tokens: bool = False
    # Seconds an access token of POST /oauth/token lives (service/access_tokens.py).
    access_token_ttl: int = 3600
    events_retention_days: int | None = None  # None: keep every event
    # How long the answer to a POST with an Idempotency-Key is kept (24 h).
    idempotency_ttl: float = 86_400.0
    log_level: str = "INFO"
    access_log: bool = True
    # Origins (scheme://host[:port]) whose pages may call the API (service/cors.py).
    cors_origins: tuple[str, ...] = ()
    # What one token (or, without tokens, one client address) may hold at once
    # in one worker process (service/limits.py); beyond it, 429.
    limit_long_polls: int = 100
    limit_searches: int = 4
    limit_batches: int = 4
    # Idempotency keys one token may have stored at once (all workers together).
    limit_idempotency_keys: int = 100_000
    # The OneRoster provider's one org, a school (docs/oneroster.md): its
    # name and sourcedId; its dateLastModified is when the settings were read.
    oneroster_school_name: str = "School"
    oneroster_school_id: str = "school"
    oneroster_school_modified_at: datetime = field(
        default_factory=lambda: datetime.now(UTC), compare=False
    )
    # scheme://host[:port][/prefix] the provider's href and Link URLs start
    # with; "" for references relative to the host the client called.
    oneroster_base_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        reader = _Reader(env)
        tokens = _parse_tokens(env.get("API_TOKENS", ""), "API_TOKENS")
        if tokens_file := env.get("API_TOKENS_FILE"):
            tokens += _parse_tokens(_read_file(tokens_file, "API_TOKENS_FILE"), "API_TOKENS_FILE")
        names = [t.name for t in tokens]
        if len(set(names)) != len(names):
            raise ConfigError("API_TOKENS: token names must be unique")
        config = cls(
            database_url=_database_url(env),
            host=env.get("HOST", cls.host),
            port=reader.integer("PORT", cls.port, 0, 65535),
            workers=reader.integer("WEB_CONCURRENCY", os.cpu_count() or 1, 1, 64),
            pool_min_size=reader.integer("DB_POOL_MIN_SIZE", cls.pool_min_size, 0, 1000),
            pool_max_size=reader.integer("DB_POOL_MAX_SIZE", cls.pool_max_size, 1, 1000),
            connect_timeout=reader.seconds("DB_CONNECT_TIMEOUT", cls.connect_timeout),
            acquire_timeout=reader.seconds("DB_ACQUIRE_TIMEOUT", cls.acquire_timeout),
            statement_timeout=reader.seconds("DB_STATEMENT_TIMEOUT", cls.statement_timeout),
            statement_cache_size=reader.integer(
                "DB_STATEMENT_CACHE_SIZE", cls.statement_cache_size, 0, 100_000
            ),
            session_settings=reader.boolean("DB_SESSION_SETTINGS", cls.session_settings),
            shutdown_timeout=reader.seconds("SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            body_timeout=reader.seconds("BODY_TIMEOUT", cls.body_timeout),
            keepalive_timeout=reader.seconds("KEEPALIVE_TIMEOUT", cls.keepalive_timeout),
            tokens=tokens,
            require_tokens=reader.boolean("REQUIRE_TOKENS", cls.require_tokens),
            access_token_ttl=reader.integer(
                "ACCESS_TOKEN_TTL",
                cls.access_token_ttl,
                MIN_ACCESS_TOKEN_TTL,
                MAX_ACCESS_TOKEN_TTL,
            ),
            events_retention_days=reader.integer("EVENTS_RETENTION_DAYS", None, 1, 36_500),
            idempotency_ttl=reader.seconds(
                "IDEMPOTENCY_TTL", cls.idempotency_ttl, high=MAX_IDEMPOTENCY_TTL
            ),
            log_level=reader.choice(
                "LOG_LEVEL", cls.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            access_log=reader.boolean("ACCESS_LOG", cls.access_log),
            cors_origins=_parse_origins(env.get("CORS_ORIGINS", "")),
            limit_long_polls=reader.integer("LIMIT_LONG_POLLS", cls.limit_long_polls, 1, 100_000),
            limit_searches=reader.integer("LIMIT_SEARCHES", cls.limit_searches, 1, 10_000),
            limit_batches=reader.integer("LIMIT_BATCHES", cls.limit_batches, 1, 10_000),
            limit_idempotency_keys=reader.integer(
                "LIMIT_IDEMPOTENCY_KEYS", cls.limit_idempotency_keys, 1, 100_000_000
            ),
            oneroster_school_name=_school_name(env.get("ONEROSTER_SCHOOL_NAME", "")),
            oneroster_school_id=_sourced_id(env.get("ONEROSTER_SCHOOL_ID", "")),
            oneroster_base_url=_base_url(env.get("ONEROSTER_BASE_URL", "")),
        )
        if config.require_tokens and not config.tokens:
            raise ConfigError(
                "REQUIRE_TOKENS is set but neither API_TOKENS nor API_TOKENS_FILE gives a token"
            )
        if config.pool_min_size > config.pool_max_size:
            raise ConfigError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        return config


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def integer(self, name: str, default: Any, low: int, high: int) -> Any:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def seconds(self, name: str, default: float, high: float = 3600) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not 0 < value <= high:
            raise ConfigError(f"{name} must be between 0 and {high:g} seconds, got {raw}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.env.get(name, "").strip().upper()
        if not raw:
            return default
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw


def _read_file(path: str, variable: str) -> str:
    try:
        # newline="": the text as the shell would see it, a CR left as a CR.
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{variable}: cannot read {path}: {reason}") from exc


def _database_url(env: Mapping[str, str]) -> str | None:
    """DATABASE_URL, with the password from DATABASE_PASSWORD_FILE put in."""
    url = env.get("DATABASE_URL") or None
    path = env.get("DATABASE_PASSWORD_FILE")
    if not path:
        return url
    if url is None:
        raise ConfigError("DATABASE_PASSWORD_FILE is set but DATABASE_URL is not")
    # Only trailing newlines go, as in the shell's $(< file): a password may
    # end in spaces.
    password = _read_file(path, "DATABASE_PASSWORD_FILE").rstrip("\n")
    if not password:
        raise ConfigError(f"DATABASE_PASSWORD_FILE: {path} is empty")
    if "\n" in password or "\r" in password:
        raise ConfigError(f"DATABASE_PASSWORD_FILE: {path} must hold the password on one line")
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    query = {key for key, _ in parse_qsl(parts.query)}
    # Two passwords would leave one of them silently unused.
    if ":" in user or "password" in query:
        raise ConfigError(
            "DATABASE_PASSWORD_FILE is set but DATABASE_URL holds a password too: give it once"
        )
    if not user:
        raise ConfigError(
            "DATABASE_PASSWORD_FILE is set but DATABASE_URL names no user (postgresql://user@host/db)"
        )
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _school_name(raw: str) -> str:
    """ONEROSTER_SCHOOL_NAME: 1..255 characters once trimmed, no control characters."""
    name = raw.strip()
    if not name:
        return Config.oneroster_school_name
    if len(name) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ConfigError(
            "ONEROSTER_SCHOOL_NAME must be 1 to 255 characters without control characters"
        )
    return name


def _sourced_id(raw: str) -> str:
    """ONEROSTER_SCHOOL_ID: a sourcedId as the database takes one (sourced_id_valid())."""
    value = raw.strip()
    if not value:
        return Config.oneroster_school_id
    if len(value) > 255 or re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ConfigError(
            "ONEROSTER_SCHOOL_ID must be 1 to 255 characters without spaces or control characters"
        )
    return value


def _base_url(raw: str) -> str:
    """ONEROSTER_BASE_URL: http(s)://host[:port][/prefix], kept without a trailing slash."""
    text = raw.strip()
    if not text:
        return ""
    problem = f"ONEROSTER_BASE_URL: {text!r} is not http(s)://host[:port][/prefix]"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(problem) from None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or "?" in text
        or "#" in text
        or re.search(r"[\s\x00-\x1f\x7f]", text)
    ):
        raise ConfigError(problem)
    return text.rstrip("/")


# Browsers send the default port of a scheme as no port at all.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse_origins(text: str) -> tuple[str, ...]:
    """CORS_ORIGINS: a comma list of origins, each as a browser sends it in `Origin`.

    The `Origin` header is compared as a string, so each entry is checked and
    written the way browsers write it: lower-case scheme and host, no default
    port, no path. An entry that could never match is refused rather than
    silently ignored.
    """
    origins: list[str] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        problem = f"CORS_ORIGINS: {entry!r} is not an origin (scheme://host[:port], no path)"
        try:
            parts = urlsplit(entry)
            port = parts.port
        except ValueError:
            raise ConfigError(problem) from None
        scheme = parts.scheme.lower()
        if (
            scheme not in _DEFAULT_PORTS
            or not parts.hostname
            # As browsers send it: an IDN in punycode, an IPv6 literal in brackets.
            or not re.fullmatch(r"[a-z0-9_.-]+|[0-9a-f:.]+", parts.hostname)
            or parts.username is not None
            or parts.password is not None
            or parts.path
            or parts.query
            or parts.fragment
            or "#" in entry
            or "?" in entry
        ):
            raise ConfigError(problem)
        host = parts.hostname  # lower case already
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal keeps its brackets
        origin = f"{scheme}://{host}"
        if port is not None and port != _DEFAULT_PORTS[scheme]:
            origin += f":{port}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _parse_tokens(text: str, source: str) -> tuple[Token, ...]:
    """Parse `name:scope:secret` entries separated by commas or new lines."""
    tokens = []
    # Comments are whole lines starting with #; drop them before splitting on
    # commas so a comma inside a comment is harmless.
    lines = (line for line in text.splitlines() if not line.strip().startswith("#"))
    for entry in ",".join(lines).split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        scope, _, secret = rest.partition(":")
        if not name or scope not in ("read", "write", "registrar") or not secret:
            # The entry may hold a secret: name only its position, never its text.
            raise ConfigError(
                f"{source}: entry {len(tokens) + 1} is not name:scope:secret with scope read, write or registrar"
            )
        if any(word in secret.lower() for word in PLACEHOLDERS):
            raise ConfigError(
                f"{source}: the secret of token {name!r} is a placeholder:"
                " generate one with `openssl rand -hex 32`"
            )
        if len(secret) < 16:
            raise ConfigError(
                f"{source}: the secret of token {name!r} is shorter than 16 characters"
            )
        tokens.append(Token(name=name, scope=scope, secret=secret))
    return tuple(tokens)
