"""The binding's status payload (imsx_StatusInfo) for every error on the provider's paths.

The request context (service/endpoint.py) renders a Problem raised on a path
under PREFIX with `render` below instead of as problem+json: the same status
and headers (WWW-Authenticate, Retry-After), the binding's body. The
codeMinor values are the binding's vocabulary (imsx_CodeMinorFieldDType of
the official OpenAPI document), and invalid_sort_field, which the contract
names and that vocabulary lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web

from ..errors import Problem

INVALID_FILTER_FIELD = "invalid_filter_field"
INVALID_SELECTION_FIELD = "invalid_selection_field"
INVALID_SORT_FIELD = "invalid_sort_field"
INVALID_DATA = "invaliddata"

# The codeMinor of a status no refusal of the provider names itself.
_BY_STATUS = {
    401: "unauthorisedrequest",
    403: "forbidden",
    404: "unknownobject",
    429: "server_busy",
    503: "server_busy",
    500: "internal_server_error",
}


@dataclass
class Refusal(Problem):
    """A request the binding refuses (400), with the codeMinor that says why."""

    code_minor: str = INVALID_DATA


def bad_request(detail: str, code_minor: str) -> Refusal:
    return Refusal(400, detail, code_minor=code_minor)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def status_body(problem: Problem) -> dict:
    if isinstance(problem, Refusal):
        minor = problem.code_minor
    else:
        minor = _BY_STATUS.get(problem.status, INVALID_DATA)
    detail = problem.detail
    if problem.errors:
        detail += ": " + "; ".join(f"{e.field} {e.message}" for e in problem.errors)
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": detail,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
            ]
        },
    }


def render(problem: Problem) -> web.Response:
    return web.Response(
        status=problem.status,
        body=orjson.dumps(status_body(problem)),
        content_type="application/json",
        headers=problem.headers,
    )
