"""Domain errors and their rendering as RFC 9457 problem+json."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

import orjson
from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


@dataclass
class Problem(Exception):
    """An error a client can act on; rendered as problem+json by the request context (endpoint.py)."""

    status: int
    detail: str
    slug: str = ""
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


def not_found(detail: str) -> Problem:
    return Problem(404, detail, "not-found")


def conflict(detail: str, slug: str = "conflict") -> Problem:
    return Problem(409, detail, slug)


def sourced_id_taken(kind: str, sourced_id: str) -> Problem:
    """A create naming a sourced_id another record of its kind (student, course, term, enrollment) has."""
    article = "an" if kind[0] in "aeiou" else "a"
    return conflict(
        f"{article} {kind} with sourced_id {sourced_id} already exists", "sourced-id-taken"
    )


def precondition_failed(detail: str) -> Problem:
    """If-Match named no current version of the resource (service/conditional.py)."""
    return Problem(412, detail, "precondition-failed")


def invalid(errors: list[FieldError]) -> Problem:
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return Problem(422, f"invalid fields: {fields}", "validation-error", errors)


def unavailable(retry_after: int, *, in_doubt: bool = False) -> Problem:
    """The database is away (db.UNAVAILABLE); `in_doubt`: a change's fate is unknown.

    In doubt when the connection dropped after the change's statement or
    COMMIT was sent: the server may have committed it. A retry with the
    same Idempotency-Key replays the stored answer if it did, and runs the
    change once if not (service/idempotency.py).
    """
    if in_doubt:
        detail = (
            "the connection to the database was lost while this change was being"
            " committed: it may or may not have been made. A POST sent again with"
            " the same Idempotency-Key gets the first answer if it was made and"
            " makes it once if not; otherwise read the resource before sending"
            " the change again"
        )
    else:
        detail = "the database cannot be reached; retry later"
    return Problem(503, detail, "database-unavailable", headers={"Retry-After": str(retry_after)})


def too_many_requests(detail: str, *, limit: int, retry_after: int) -> Problem:
    """A client over one of its limits (service/limits.py); nothing was done.

    The RateLimit-* fields follow the IETF httpapi draft's first form
    (draft-polli-ratelimit-headers-03): the limit, none left, when to look again.
    """
    return Problem(
        429,
        detail,
        "too-many-requests",
        headers={
            "Retry-After": str(retry_after),
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(retry_after),
        },
    )


BUSY_RETRY_AFTER = 1  # seconds: contention is over well within it


def busy(detail: str = "the course changed under too many concurrent requests; retry") -> Problem:
    """The database is there but the change could not get its turn: the client may retry.

    The answer to a deadlock or serialization failure that outlasted the
    retries, or to a lock or statement that ran out of time (db.BUSY),
    rendered by the request context (endpoint.py).
    """
    return Problem(503, detail, "busy", headers={"Retry-After": str(BUSY_RETRY_AFTER)})


def problem_body(problem: Problem) -> dict:
    """The problem+json object: a response's body, or a batch item's (service/handlers/batches.py)."""
    body: dict = {
        "type": f"/problems/{problem.slug}" if problem.slug else "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in problem.errors]
    return body


def render(problem: Problem) -> web.Response:
    return web.Response(
        status=problem.status,
        body=orjson.dumps(problem_body(problem)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )
