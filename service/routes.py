"""The URL map. Every route here is described in openapi.json, and vice versa."""

from __future__ import annotations

from aiohttp import web

from .endpoint import CATCH_ALL, UNMATCHED, Handler, endpoint, unmatched
from .handlers import courses, enrollments, operations, students

# (method, path template, handler). HEAD is not served: only what is listed.
# The router tries the routes under one prefix (/students, /courses) in this
# order, a regular expression each: the busiest come first.
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/students/{student_id}/courses", enrollments.list_courses),
    ("POST", "/students/{student_id}/courses", enrollments.enroll),
    ("GET", "/students/{student_id}/courses/{course_id}", enrollments.get),
    ("DELETE", "/students/{student_id}/courses/{course_id}", enrollments.delete),
    ("GET", "/courses/{course_id}/students", enrollments.list_students),
    ("POST", "/students", students.create),
    ("GET", "/students", students.list_),
    ("GET", "/students/{student_id}", students.get),
    ("PATCH", "/students/{student_id}", students.update),
    ("DELETE", "/students/{student_id}", students.delete),
    ("POST", "/courses", courses.create),
    ("GET", "/courses", courses.list_),
    ("GET", "/courses/{course_id}", courses.get),
    ("PATCH", "/courses/{course_id}", courses.update),
    ("DELETE", "/courses/{course_id}", courses.delete),
    ("GET", "/healthz", operations.healthz),
    ("GET", "/readyz", operations.readyz),
    ("GET", "/openapi.json", operations.openapi),
    ("GET", "/metrics", operations.metrics),
]


def setup(app: web.Application) -> None:
    """Register every route inside the request context (service/endpoint.py)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, endpoint(app, method, path, handler))
    # Last: whatever matched nothing above, answered as problem+json.
    app.router.add_route("*", CATCH_ALL, endpoint(app, "*", UNMATCHED, unmatched))
