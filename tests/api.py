"""Small helpers that call the API the way the README does."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient

_serial = itertools.count(1)

# A course's own fields, in the order the service writes them: how every
# view of a course begins (a course, an enrollment, a place in a queue).
COURSE_FIELDS = [
    "id",
    "code",
    "title",
    "capacity",
    "waitlist_capacity",
    "enrolled",
    "waitlisted",
    "created_at",
    "term_id",
    "credits",
    "meetings",
    "prerequisites",
]
# A course as GET /courses/{id} answers it: then its sourced_id.
COURSE_BODY = [*COURSE_FIELDS, "sourced_id"]

# A term's fields, in the order the service writes them.
TERM_FIELDS = [
    "id",
    "code",
    "title",
    "starts_on",
    "ends_on",
    "registration_opens_at",
    "registration_closes_at",
    "drop_deadline",
    "max_credits",
    "created_at",
    "sourced_id",
]


async def create_student(client: TestClient, **fields: Any) -> dict[str, Any]:
    n = next(_serial)
    body = {"name": f"Student {n}", "email": f"student{n}@example.org", **fields}
    response = await client.post("/students", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def create_course(client: TestClient, **fields: Any) -> dict[str, Any]:
    n = next(_serial)
    body = {"code": f"C{n}", "title": f"Course {n}", **fields}
    response = await client.post("/courses", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def create_term(client: TestClient, **fields: Any) -> dict[str, Any]:
    n = next(_serial)
    body = {
        "code": f"T{n}",
        "title": f"Term {n}",
        "starts_on": "2027-01-11",
        "ends_on": "2027-05-07",
        **fields,
    }
    response = await client.post("/terms", json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def enroll(client: TestClient, student_id: int, course_id: int):
    return await client.post(f"/students/{student_id}/courses", json={"course_id": course_id})


async def problem(response) -> dict[str, Any]:
    """The body of an error response, after checking it is problem+json."""
    assert response.content_type == "application/problem+json", response.content_type
    body = await response.json(content_type=None)
    assert body["status"] == response.status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


async def walk(client: TestClient, path: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a paginated list, following next_cursor."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(path, params=params)
        assert response.status == 200, await response.text()
        page = await response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            assert "Link" not in response.headers
            return items
        assert 'rel="next"' in response.headers["Link"]
        params = {"limit": limit, "cursor": page["next_cursor"]}
