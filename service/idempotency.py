"""Idempotency-Key on every POST: a retry gets the first answer again and changes nothing.

After the IETF httpapi draft "The Idempotency-Key HTTP Header Field" and
Stripe's practice. The request context (endpoint.py) sends a POST that
carries the header here instead of straight to its handler:

1. The key is checked (1 to 255 visible ASCII characters, surrounding
   double quotes dropped; else 400) and the body read, so the request can
   be told apart from another one with the same key: its fingerprint is a
   digest of the method, the path and the body as a JSON value.
2. One transaction, on one connection: the key's advisory lock
   (pg_try_advisory_xact_lock on a hash of scope and key; taken by another
   request: 409 at once, never a wait), then the stored answer, read after
   the lock so that it sees whatever the previous holder committed. An
   answer to the same request is sent again, byte for byte, with
   Idempotent-Replayed: true; one to another request is 422.
3. Otherwise the handler runs with this transaction as its Work
   (db.InTransaction: a savepoint per block, see db.Savepoint), and its
   answer is stored before the commit: the effect and the record of it
   commit together or not at all.

Answers that changed nothing because the request was at fault (400, 408,
413, 415, 422) or the server was (5xx) are not kept: the transaction rolls
back, and the client may fix the request and send it with the same key.
Requests without the header take none of this path: no transaction, no
statement more.

What is stored is bounded (tables of migration 0014, sql/functions/idempotency.sql):

- In number: a scope holds at most LIMIT_IDEMPOTENCY_KEYS live keys. The
  statement that looks for the stored answer also reads, when there is
  none, the scope's count of keys, which triggers keep (16 rows a scope,
  whatever it holds); at the limit a new key is 429 before the handler
  runs (nothing done, nothing stored), with Retry-After the seconds until
  the scope's oldest key expires. The count is exact for committed keys;
  it is read before the handler and the store, so requests in flight are
  not in it: the limit may be passed by as many as a scope sends at once.
  A replay is never refused.
- In size: the body is stored zlib-compressed, and not at all above
  MAX_STORED_BODY bytes compressed (repositories/idempotency.py). A replay
  of an answer whose body was not kept has its status and Location and an
  empty body.
- In time, for personal data: the answer records the students whose emails
  its body carries (found here, linked by the store statement) and, for a
  hold, the student its path names (the reason is about them), and
  deleting one of them drops the body in the database (a trigger), however
  the student was deleted.

The whole transaction runs again on a deadlock or a serialization failure,
up to retry.ATTEMPTS times: its Work,
db.InTransaction, lets no repository retry one statement alone (retry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import orjson
from aiohttp import hdrs, web
from multidict import istr

from .auth import actor
from .db import TRANSIENT, InTransaction, Work, run
from .errors import FieldError, Problem, render, too_many_requests
from .keys import CONFIG, POOL
from .repositories import idempotency
from .repositories.idempotency import Answer
from .repositories.retry import ATTEMPTS
from .validation.body import read_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

IDEMPOTENCY_KEY = istr("Idempotency-Key")
IDEMPOTENT_REPLAYED = istr("Idempotent-Replayed")
# The request was at fault, or refused by a limit, and nothing changed: sent
# again, fixed or later, it may use the key again.
NOT_KEPT = frozenset({400, 408, 413, 415, 422, 429})
EXPIRE_PERIOD = 60.0  # seconds between expiry passes
STOP_WITHIN = 5.0  # seconds the expiry may take to stop at shutdown
# The longest Retry-After of a scope at its limit, in seconds: the TTL may be
# lowered in the meantime, and a client had better look again within the hour.
MAX_RETRY_AFTER = 3600

_KEY = re.compile(r"[!-~]{1,255}")


def parse_key(values: list[str]) -> str:
    """The key an Idempotency-Key header gives; 400 naming the header when malformed."""
    if len(values) > 1:
        raise _malformed("send the Idempotency-Key header once")
    value = values[0]
    # The draft's structured-field form, a quoted string: the quotes are not the key.
    if len(value) >= 2 and value[0] == '"' == value[-1]:
        value = value[1:-1]
    if not _KEY.fullmatch(value):
        raise _malformed("the Idempotency-Key header must be 1 to 255 visible ASCII characters")
    return value


def _malformed(detail: str) -> Problem:
    return Problem(400, detail, "invalid-idempotency-key")


def fingerprint(method: str, path: str, query: str, body: bytes) -> bytes:
    """A digest of the request: its method, path and query, and its body as a JSON value.

    Key order and white space in the body do not matter; a body that is not
    JSON counts byte for byte (such a request is refused, and not kept).
    """
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode("utf-8", "surrogatepass"))
    try:
        value = json.loads(body, parse_constant=_not_json)
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        digest.update(b"raw:")
        digest.update(body)
    else:
        digest.update(b"json:")
        digest.update(canonical.encode("ascii"))
    return digest.digest()


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def lock_id(scope: str, key: str) -> int:
    """The 64-bit advisory lock of `key` in `scope` (a key holds no newline: unambiguous)."""
    text = f"{key}\n{scope}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, digest_size=8, person=b"idempotency").digest()
    return int.from_bytes(digest, "big", signed=True)


def _in_use() -> Problem:
    return Problem(
        409,
        "a request with this Idempotency-Key is still being processed; retry when it is done",
        "idempotency-key-in-use",
        headers={"Retry-After": "1"},
    )


def _reused() -> Problem:
    return Problem(
        422,
        "this Idempotency-Key was used for a different request (method, path or body);"
        " a new request needs a new key",
        "idempotency-key-reused",
        [FieldError("Idempotency-Key", "was used for a different request")],
    )


def _too_many(limit: int, retry_after: int) -> Problem:
    return too_many_requests(
        f"at most {limit} Idempotency-Keys may be stored at once per client; "
        "retry when the oldest has expired, or send the request without a key",
        limit=limit,
        retry_after=retry_after,
    )


# The routes whose answers carry text about the student the path names.
ABOUT_THE_STUDENT = frozenset({"/students/{student_id}/holds"})


def _path_student(request: web.Request) -> int | None:
    """The student whose hold (its reason) the answer carries, or None."""
    resource = request.match_info.route.resource
    if resource is None or resource.canonical not in ABOUT_THE_STUDENT:
        return None
    raw = request.match_info.get("student_id", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


def emails_in(body: bytes) -> list[str]:
    """The emails an answer's body carries: the words with an @ of its JSON strings.

    A student's email holds no white space (validation.fields.email), so a
    word of a sentence ("a student with email ... already exists") is one
    exactly.
    """
    if b"@" not in body:
        return []
    try:
        values = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        values = [body.decode("utf-8", "replace")]
    found: set[str] = set()
    while values:
        value = values.pop()
        if isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
        elif isinstance(value, str) and "@" in value:
            found.update(word for word in value.split() if "@" in word)
    return sorted(found)


def kept(status: int) -> bool:
    return status < 500 and status not in NOT_KEPT


async def answer(handler: Handler, request: web.Request) -> web.StreamResponse:
    """`handler`'s answer to `request`, which carries an Idempotency-Key, or the stored one."""
    key = parse_key(request.headers.getall(IDEMPOTENCY_KEY))
    body = await read_body(request)  # 408 and 413 here, before any transaction
    digest = fingerprint(request.method, request.path, request.query_string, body)
    scope = actor(request)
    config = request.app[CONFIG]
    ttl = timedelta(seconds=config.idempotency_ttl)
    limit = config.limit_idempotency_keys
    async with request.app[POOL].lend() as conn:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await _once(handler, request, conn, key, scope, digest, ttl, limit)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                # Everything rolled back: running it all again is safe.
                if attempt < ATTEMPTS:
                    continue
                raise  # 503 busy, as outside a transaction (db.BUSY)
    raise AssertionError("unreachable")


async def _once(
    handler: Handler,
    request: web.Request,
    conn: asyncpg.Connection,
    key: str,
    scope: str,
    digest: bytes,
    ttl: timedelta,
    limit: int,
) -> web.StreamResponse:
    # Why a transaction: the answer is stored with the effect, atomically, and
    # the key's lock is held until both are committed.
    transaction = conn.transaction()
    await transaction.start()
    try:
        response, keep = await _in_transaction(
            handler, request, conn, key, scope, digest, ttl, limit
        )
    except Exception:
        if not conn.is_closed():  # closed: the server has rolled it back
            await transaction.rollback()
        raise
    # Cancelled (BaseException): the pool retires a connection left in a transaction.
    # A cancelled request does not get here: the request context runs answer()
    # uncancelled (db.uncancelled), as a COMMIT that waits for the synchronous
    # standby and is cancelled stands unreplicated; a failover would lose it.
    if keep:
        await transaction.commit()
    else:
        await transaction.rollback()
    return response


async def _in_transaction(
    handler: Handler,
    request: web.Request,
    conn: asyncpg.Connection,
    key: str,
    scope: str,
    digest: bytes,
    ttl: timedelta,
    limit: int,
) -> tuple[web.StreamResponse, bool]:
    """The answer, and whether to commit what the handler did and the record of it."""
    if not await idempotency.lock(conn, lock_id=lock_id(scope, key)):
        raise _in_use()
    found = await idempotency.get(conn, scope=scope, key=key, ttl=ttl, limit=limit)
    if (stored := found.answer) is not None:
        if stored.fingerprint != digest:
            raise _reused()
        return _replay(stored), False
    if found.held >= limit:
        seconds = await idempotency.first_expiry(conn, scope=scope, ttl=ttl) or 1
        raise _too_many(limit, min(max(seconds, 1), MAX_RETRY_AFTER))
    response = await _handle(handler, request, InTransaction(conn))
    if not kept(response.status):
        return response, False
    answer = _record(response, digest)
    emails = emails_in(answer.body) if answer.body is not None else []
    student = _path_student(request)
    if not await idempotency.store(
        conn, key=key, answer=answer, ttl=ttl, actor=scope, emails=emails, student_id=student
    ):
        log.info(
            "idempotency: the %d-byte answer to %s %s was too large to keep; its status was kept",
            len(answer.body or b""),
            request.method,
            request.path,
        )
    return response, True


async def _handle(handler: Handler, request: web.Request, work: Work) -> web.StreamResponse:
    try:
        return await run(handler, request, work)
    except Problem as problem:
        if not kept(problem.status):
            raise  # rolls back; the request context renders it
        return render(problem)  # a 404 or 409 of the effect: kept like a success


def _record(response: web.StreamResponse, digest: bytes) -> Answer:
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        raise TypeError(f"an answer to a POST must have a body of bytes, not {type(body)}")
    headers = response.headers
    return Answer(
        digest, response.status, headers.get(hdrs.CONTENT_TYPE), headers.get(hdrs.LOCATION), body
    )


def _replay(stored: Answer) -> web.Response:
    headers = {IDEMPOTENT_REPLAYED: "true"}
    # No body kept, no content type: an empty body is no JSON document.
    if stored.content_type is not None and stored.body is not None:
        headers[hdrs.CONTENT_TYPE] = stored.content_type
    if stored.location is not None:
        headers[hdrs.LOCATION] = stored.location
    return web.Response(status=stored.status, body=stored.body, headers=headers)


async def expire_all(
    app: web.Application, ttl: timedelta, stopping: asyncio.Event | None = None
) -> int:
    """Delete every key older than `ttl`, a batch per statement; how many went."""
    total = 0
    while stopping is None or not stopping.is_set():
        async with app[POOL].lend() as conn:
            deleted = await idempotency.expire(conn, ttl=ttl)
        total += deleted
        if deleted < idempotency.EXPIRE_BATCH:
            return total
        await asyncio.sleep(0.05)  # let requests through between batches
    return total


async def expiry(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: delete expired keys at start and every EXPIRE_PERIOD seconds."""
    ttl = timedelta(seconds=app[CONFIG].idempotency_ttl)
    stopping = asyncio.Event()

    async def run() -> None:
        while not stopping.is_set():
            try:
                if deleted := await expire_all(app, ttl, stopping):
                    log.info("idempotency: deleted %d keys older than %s", deleted, ttl)
            except TRANSIENT as exc:
                log.warning("idempotency expiry: database unavailable: %s", exc)
            except Exception:
                log.exception("idempotency expiry: could not delete expired keys")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), EXPIRE_PERIOD)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        stopping.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_WITHIN)
        except TimeoutError:
            log.warning("the idempotency expiry did not stop in %ss and was cancelled", STOP_WITHIN)
