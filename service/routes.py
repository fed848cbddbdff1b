"""The URL map. Every route here is described in openapi.json, and vice versa."""

from __future__ import annotations

from aiohttp import web

from . import cors
from .endpoint import CATCH_ALL, TOKEN_PATH, UNMATCHED, Handler, endpoint, unmatched
from .errors import Problem
from .handlers import (
    batches,
    completions,
    courses,
    docs,
    enrollments,
    events,
    holds,
    oauth,
    operations,
    student_terms,
    students,
    terms,
    waitlist,
)
from .keys import CONFIG
from .oneroster import PREFIX as OR
from .oneroster import handlers as oneroster
from .oneroster.query import COLLECTION as OR_LIST
from .oneroster.query import SINGLE as OR_ONE
from .oneroster.records import ACADEMIC_SESSION, CLASS, COURSE, ENROLLMENT, ORG, USER

# The query parameters a route defines; any other is 422 (endpoint.py).
PAGE = frozenset({"limit", "cursor"})
NONE: frozenset[str] = frozenset()
STUDENTS = PAGE | {"email", "q", "sourced_id"}
COURSES = PAGE | {"code", "q", "term_id", "sourced_id"}
TERMS = PAGE | {"code", "sourced_id"}
DROP = frozenset({"override"})

# (method, path template, handler, query parameters). Every GET route also
# answers HEAD. The router tries the routes under one prefix (/students,
# /courses) in this order, a regular expression each: the busiest come first.
ROUTES: list[tuple[str, str, Handler, frozenset[str]]] = [
    ("GET", "/students/{student_id}/courses", enrollments.list_courses, PAGE),
    ("POST", "/students/{student_id}/courses", enrollments.enroll, NONE),
    ("GET", "/students/{student_id}/courses/{course_id}", enrollments.get, NONE),
    ("DELETE", "/students/{student_id}/courses/{course_id}", enrollments.delete, DROP),
    ("GET", "/courses/{course_id}/students", enrollments.list_students, PAGE),
    ("GET", "/students/{student_id}/waitlist", waitlist.list_courses, PAGE),
    ("GET", "/students/{student_id}/waitlist/{course_id}", waitlist.get, NONE),
    ("DELETE", "/students/{student_id}/waitlist/{course_id}", waitlist.leave, NONE),
    ("GET", "/courses/{course_id}/waitlist", waitlist.list_students, PAGE),
    ("GET", "/students/{student_id}/holds", holds.list_, PAGE),
    ("POST", "/students/{student_id}/holds", holds.create, NONE),
    ("GET", "/students/{student_id}/holds/{hold_id}", holds.get, NONE),
    ("DELETE", "/students/{student_id}/holds/{hold_id}", holds.delete, NONE),
    ("GET", "/students/{student_id}/completions", completions.list_, PAGE),
    ("POST", "/students/{student_id}/completions", completions.create, NONE),
    ("GET", "/students/{student_id}/completions/{completion_id}", completions.get, NONE),
    ("DELETE", "/students/{student_id}/completions/{completion_id}", completions.delete, NONE),
    ("GET", "/students/{student_id}/terms/{term_id}", student_terms.get, NONE),
    ("PUT", "/students/{student_id}/terms/{term_id}", student_terms.put, NONE),
    ("POST", "/students", students.create, NONE),
    ("GET", "/students", students.list_, STUDENTS),
    ("GET", "/students/{student_id}", students.get, NONE),
    ("PATCH", "/students/{student_id}", students.update, NONE),
    ("DELETE", "/students/{student_id}", students.delete, NONE),
    ("POST", "/courses", courses.create, NONE),
    ("GET", "/courses", courses.list_, COURSES),
    ("GET", "/courses/{course_id}", courses.get, NONE),
    ("PATCH", "/courses/{course_id}", courses.update, NONE),
    ("DELETE", "/courses/{course_id}", courses.delete, NONE),
    ("POST", "/terms", terms.create, NONE),
    ("GET", "/terms", terms.list_, TERMS),
    ("GET", "/terms/{term_id}", terms.get, NONE),
    ("PATCH", "/terms/{term_id}", terms.update, NONE),
    ("DELETE", "/terms/{term_id}", terms.delete, NONE),
    ("POST", "/enrollments/batch", batches.enroll, NONE),
    ("POST", "/students/batch", batches.create_students, NONE),
    ("POST", "/courses/batch", batches.create_courses, NONE),
    ("POST", "/terms/batch", batches.create_terms, NONE),
    ("GET", "/events", events.list_, events.QUERY),
    ("GET", "/healthz", operations.healthz, NONE),
    ("GET", "/readyz", operations.readyz, NONE),
    ("GET", "/openapi.json", operations.openapi, NONE),
    ("GET", "/docs", docs.page, NONE),
    ("GET", "/docs/{asset}", docs.asset, NONE),
    ("GET", "/metrics", operations.metrics, NONE),
]
# Only on an instance with tokens: without them there is no client to
# authenticate, and the whole API is open (handlers/oauth.py).
TOKEN_ROUTES: list[tuple[str, str, Handler, frozenset[str]]] = [
    ("POST", TOKEN_PATH, oauth.token, NONE),
]

# The OneRoster 1.2 rostering provider, read-only, under its prefix
# (service/oneroster/, docs/oneroster.md): (path, handler, query parameters).
# `terms` answer as academicSessions, `students` as users, as the binding has them.
ONEROSTER: list[tuple[str, Handler, frozenset[str]]] = [
    (
        "academicSessions",
        oneroster.collection("terms", "academicSessions", ACADEMIC_SESSION),
        OR_LIST,
    ),
    ("academicSessions/{sourcedId}", oneroster.single("terms", ACADEMIC_SESSION), OR_ONE),
    ("terms", oneroster.collection("terms", "academicSessions", ACADEMIC_SESSION), OR_LIST),
    ("terms/{sourcedId}", oneroster.single("terms", ACADEMIC_SESSION), OR_ONE),
    (
        "terms/{sourcedId}/classes",
        oneroster.owned("term_classes", "classes", "term", CLASS),
        OR_LIST,
    ),
    ("classes", oneroster.collection("classes", "classes", CLASS), OR_LIST),
    ("classes/{sourcedId}", oneroster.single("classes", CLASS), OR_ONE),
    (
        "classes/{sourcedId}/students",
        oneroster.owned("class_students", "users", "class", USER),
        OR_LIST,
    ),
    ("courses", oneroster.collection("courses", "courses", COURSE), OR_LIST),
    ("courses/{sourcedId}", oneroster.single("courses", COURSE), OR_ONE),
    ("users", oneroster.collection("users", "users", USER), OR_LIST),
    ("users/{sourcedId}", oneroster.single("users", USER), OR_ONE),
    ("students", oneroster.collection("users", "users", USER), OR_LIST),
    ("students/{sourcedId}", oneroster.single("users", USER), OR_ONE),
    (
        "students/{sourcedId}/classes",
        oneroster.owned("student_classes", "classes", "student", CLASS),
        OR_LIST,
    ),
    ("enrollments", oneroster.collection("enrollments", "enrollments", ENROLLMENT), OR_LIST),
    ("enrollments/{sourcedId}", oneroster.single("enrollments", ENROLLMENT), OR_ONE),
    ("orgs", oneroster.orgs(ORG), OR_LIST),
    ("orgs/{sourcedId}", oneroster.org(ORG), OR_ONE),
    ("schools", oneroster.orgs(ORG), OR_LIST),
    ("schools/{sourcedId}", oneroster.org(ORG), OR_ONE),
    ("schools/{sourcedId}/classes", oneroster.school_classes(CLASS), OR_LIST),
]
ROUTES += [("GET", f"{OR}/{path}", handler, query) for path, handler, query in ONEROSTER]


# Paths that a route template of another resource also matches: any other
# method on them is 405 with their Allow, not the other route's answer
# (PATCH /students/batch is not PATCH /students/{student_id}).
SHADOWING = {"/students/batch": "POST", "/courses/batch": "POST", "/terms/batch": "POST"}


def setup(app: web.Application) -> None:
    """Register every route inside the request context (service/endpoint.py)."""
    token_routes = TOKEN_ROUTES if app[CONFIG].tokens else []
    for method, path, handler, query in ROUTES + token_routes:
        app.router.add_route(method, path, endpoint(app, method, path, handler, query))
        if method == "GET":
            # RFC 9110 9.1: HEAD wherever GET; aiohttp sends the headers, no body.
            app.router.add_route("HEAD", path, endpoint(app, "HEAD", path, handler, query))
    cors.setup(app, app[CONFIG].cors_origins)
    for path, allow in SHADOWING.items():
        app.router.add_route("*", path, endpoint(app, "*", path, _not_allowed(allow), None))
    # Last: whatever matched nothing above, answered as problem+json.
    app.router.add_route("*", CATCH_ALL, endpoint(app, "*", UNMATCHED, unmatched, None))


def _not_allowed(allow: str) -> Handler:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        raise Problem(405, "this method is not allowed on this path", headers={"Allow": allow})

    return not_allowed
