"""The URL map. Every route here is described in openapi.json, and vice versa."""

from __future__ import annotations

from aiohttp import web

from .handlers import courses, enrollments, operations, students


def setup(app: web.Application) -> None:
    app.add_routes(
        [
            web.post("/students", students.create),
            web.get("/students", students.list_, allow_head=False),
            web.get("/students/{student_id}", students.get, allow_head=False),
            web.patch("/students/{student_id}", students.update),
            web.delete("/students/{student_id}", students.delete),
            web.post("/students/{student_id}/courses", enrollments.enroll),
            web.get("/students/{student_id}/courses", enrollments.list_courses, allow_head=False),
            web.get(
                "/students/{student_id}/courses/{course_id}", enrollments.get, allow_head=False
            ),
            web.delete("/students/{student_id}/courses/{course_id}", enrollments.delete),
            web.post("/courses", courses.create),
            web.get("/courses", courses.list_, allow_head=False),
            web.get("/courses/{course_id}", courses.get, allow_head=False),
            web.patch("/courses/{course_id}", courses.update),
            web.delete("/courses/{course_id}", courses.delete),
            web.get("/courses/{course_id}/students", enrollments.list_students, allow_head=False),
            web.get("/healthz", operations.healthz, allow_head=False),
            web.get("/readyz", operations.readyz, allow_head=False),
            web.get("/openapi.json", operations.openapi, allow_head=False),
            web.get("/metrics", operations.metrics, allow_head=False),
        ]
    )
