"""/enrollments/batch, /students/batch, /courses/batch and /terms/batch

Each item is checked here as its single request checks it (enrollments.ENROLL,
students.CREATE, courses.CREATE, terms.checked), so an invalid item's 422 is
the single request's; the valid ones go to the database in one statement,
which applies them in order (repositories/batches.py). Every
result is `{"status", "outcome", "body"}`: the single request's status and
body, and a slug saying what happened.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..auth import actor, check_registrar
from ..errors import FieldError, Problem, invalid, problem_body
from ..keys import LIMITS, METRICS, WORK
from ..outcomes import ENROLL_RULES, RULES, Outcome
from ..repositories import batches
from ..repositories.enrollments import Applied
from ..validation.body import json_object
from ..validation.fields import (
    MAX_ID,
    batch_items,
    code,
    email,
    exactly_one,
    fields,
    integer,
    nullable,
    one_of,
    rules,
    sourced_id,
)
from . import courses, enrollments, render, students, terms

MAX_ITEMS = 1000

ENROLL_ITEM = {
    "action": one_of("enroll", "drop"),
    "student_id": integer(1, MAX_ID),
    "student_email": email,
    "student_sourced_id": sourced_id,
    "course_id": enrollments.ENROLL["course_id"],
    "course_code": code,
    "course_sourced_id": sourced_id,
    "term_id": nullable(integer(1, MAX_ID)),
    "waitlist": enrollments.ENROLL["waitlist"],
    "override": rules(tuple(RULES)),
    "sourced_id": enrollments.ENROLL["sourced_id"],
}


def _result(applied: Applied) -> dict[str, Any]:
    value = applied.value
    if isinstance(value, Problem):
        return {"status": value.status, "outcome": applied.outcome, "body": problem_body(value)}
    return {"status": applied.outcome.status, "outcome": applied.outcome, "body": value}


def _invalid(problem: Problem) -> dict[str, Any]:
    return {"status": problem.status, "outcome": Outcome.INVALID, "body": problem_body(problem)}


def _enroll_item(raw: dict[str, Any]) -> batches.EnrollItem:
    errors = exactly_one(raw, "student_id", "student_email", "student_sourced_id")
    errors += exactly_one(raw, "course_id", "course_code", "course_sourced_id")
    try:
        data = fields(raw, ENROLL_ITEM)
    except Problem as problem:
        raise invalid(problem.errors + errors) from None
    drop = data.get("action") == "drop"
    for name in ("waitlist", "sourced_id"):
        if drop and name in data:
            errors.append(FieldError(name, "applies to the action enroll only"))
    for name in ("course_id", "course_sourced_id"):
        if "term_id" in data and name in data:
            errors.append(FieldError("term_id", f"qualifies a course_code only, not a {name}"))
    overrides = data.get("override")
    allowed = (Outcome.DROP_DEADLINE_PASSED,) if drop else ENROLL_RULES
    if overrides and not set(overrides.split(",")) <= set(allowed):
        errors.append(FieldError("override", f"must be a list of rules among {', '.join(allowed)}"))
    if errors:
        raise invalid(errors)
    return batches.EnrollItem(
        drop,
        data.get("student_id"),
        data.get("student_email"),
        data.get("course_id"),
        data.get("term_id"),
        data.get("course_code"),
        data.get("waitlist", False),
        overrides,
        data.get("student_sourced_id"),
        data.get("course_sourced_id"),
        data.get("sourced_id"),
    )


def _student_item(raw: dict[str, Any]) -> batches.StudentItem:
    data = fields(raw, students.CREATE, required=("name", "email"))
    return batches.StudentItem(data["name"], data["email"], data.get("sourced_id"))


def _course_item(raw: dict[str, Any]) -> batches.CourseItem:
    data = fields(raw, courses.CREATE, required=("code", "title"))
    return batches.CourseItem(
        data["code"],
        data["title"],
        "capacity" in data,
        data.get("capacity"),
        data.get("waitlist_capacity"),
        data.get("term_id"),
        data.get("credits"),
        data.get("meetings"),
        data.get("prerequisites"),
        data.get("sourced_id"),
    )


def _term_item(raw: dict[str, Any]) -> batches.TermItem:
    data = terms.checked(raw, terms.CREATE, required=terms.REQUIRED)
    named = data.pop("sourced_id", None)
    return batches.TermItem(
        data.pop("code"), data.pop("title"), data.pop("starts_on"), data.pop("ends_on"), data, named
    )


def _checked(request_items: list[dict[str, Any]], check) -> tuple[list, list[int], list]:
    """(results with the invalid items' 422s, the positions of the valid ones, their values)."""
    results: list[Any] = [None] * len(request_items)
    positions: list[int] = []
    values: list[Any] = []
    for i, raw in enumerate(request_items):
        try:
            values.append(check(raw))
        except Problem as problem:
            results[i] = _invalid(problem)
        else:
            positions.append(i)
    return results, positions, values


def _respond(results: list, positions: list[int], applied: list[Applied]) -> web.Response:
    for i, one in zip(positions, applied, strict=True):
        results[i] = _result(one)
    return render.json({"results": results})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _limited(handler: Handler) -> Handler:
    """The handler, run while its client holds one of its LIMIT_BATCHES places (limits.py).

    Inside the request's idempotency transaction when it carries a key: a
    replay is answered before this, so it is never refused; a refusal (429)
    is not kept.
    """

    @functools.wraps(handler)
    async def limited(request: web.Request) -> web.StreamResponse:
        with request.app[LIMITS].batches.place(request):
            return await handler(request)

    return limited


@_limited
async def enroll(request: web.Request) -> web.Response:
    items = batch_items(await json_object(request), MAX_ITEMS)
    if any("override" in item for item in items):
        check_registrar(request, "override")  # 403 for the whole request
    results, positions, valid = _checked(items, _enroll_item)
    applied: list[Applied] = []
    if valid:
        work = request[WORK]
        async with work.block() as conn:
            applied = await batches.enroll(conn, items=valid, actor=actor(request), work=work)
        outcomes = request.app[METRICS].outcomes
        for outcome, n in Counter(a.outcome for a in applied).items():
            if outcome in outcomes:  # a drop is not counted
                outcomes[outcome].inc(n)
    return _respond(results, positions, applied)


@_limited
async def create_students(request: web.Request) -> web.Response:
    items = batch_items(await json_object(request), MAX_ITEMS)
    results, positions, valid = _checked(items, _student_item)
    applied: list[Applied] = []
    if valid:
        work = request[WORK]
        async with work.block() as conn:
            applied = await batches.students(conn, items=valid, actor=actor(request), work=work)
    return _respond(results, positions, applied)


@_limited
async def create_courses(request: web.Request) -> web.Response:
    items = batch_items(await json_object(request), MAX_ITEMS)
    results, positions, valid = _checked(items, _course_item)
    applied: list[Applied] = []
    if valid:
        work = request[WORK]
        async with work.block() as conn:
            applied = await batches.courses(conn, items=valid, actor=actor(request), work=work)
    return _respond(results, positions, applied)


@_limited
async def create_terms(request: web.Request) -> web.Response:
    items = batch_items(await json_object(request), MAX_ITEMS)
    results, positions, valid = _checked(items, _term_item)
    applied: list[Applied] = []
    if valid:
        work = request[WORK]
        async with work.block() as conn:
            applied = await batches.terms(conn, items=valid, actor=actor(request), work=work)
    return _respond(results, positions, applied)
