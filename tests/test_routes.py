"""What holds on every route: HEAD beside GET, and no query parameter passes unknown."""

from __future__ import annotations

from typing import Any

import pytest

from service.oneroster import PREFIX as ONEROSTER
from service.routes import ROUTES
from tests import registration
from tests.api import create_course, create_student, enroll, problem

GET_ROUTES = [(path, "limit" in query) for method, path, _, query in ROUTES if method == "GET"]
# Headers that differ between any two responses, whatever the method.
PER_RESPONSE = {"Date", "X-Request-ID"}


async def seeded(client, db) -> dict[str, Any]:
    """A student enrolled in a course and waiting for a full one, with a hold and a completion.

    Every template names something; the term is written with SQL
    (tests/registration.py).
    """
    student = await create_student(client)
    course = await create_course(client)
    assert (await enroll(client, student["id"], course["id"])).status == 201
    full = await create_course(client, capacity=1, waitlist_capacity=1)
    assert (await enroll(client, (await create_student(client))["id"], full["id"])).status == 201
    body = {"course_id": full["id"], "waitlist": True}
    assert (await client.post(f"/students/{student['id']}/courses", json=body)).status == 202
    hold = await client.post(f"/students/{student['id']}/holds", json={"reason": "Fees"})
    completion = await client.post(f"/students/{student['id']}/completions", json={"code": "M1"})
    term_id = await registration.term(db)
    return {
        # The OneRoster provider's paths name records by sourcedId.
        "students": await db.fetchval(
            "select sourced_id from students where id = $1", student["id"]
        ),
        "courses": await db.fetchval("select sourced_id from courses where id = $1", course["id"]),
        "terms": await db.fetchval("select sourced_id from terms where id = $1", term_id),
        "enrollments": await db.fetchval(
            "select sourced_id from student_courses where student_id = $1", student["id"]
        ),
        "orgs": "school",
        "student_id": student["id"],
        "course_id": course["id"],
        "waiting_for": full["id"],
        "hold_id": (await hold.json())["id"],
        "completion_id": (await completion.json())["id"],
        "term_id": term_id,
    }


# The kind of record each of the provider's collections names by sourcedId.
_SOURCED = {"users": "students", "classes": "courses", "academicSessions": "terms"}
_SOURCED |= {"schools": "orgs"}


def fill(template: str, ids: dict[str, Any]) -> str:
    if template.startswith(ONEROSTER):
        collection = template.removeprefix(ONEROSTER + "/").split("/")[0]
        return template.format(sourcedId=ids[_SOURCED.get(collection, collection)])
    if "/waitlist/" in template:  # the student waits for the full course, not theirs
        ids = {**ids, "course_id": ids["waiting_for"]}
    # /docs/{asset}: the largest file of the reference page.
    return template.format(asset="swagger-ui-bundle.js", **ids)


@pytest.mark.parametrize(("template", "paged"), GET_ROUTES)
async def test_head_answers_like_get_without_a_body(client, db, template, paged):
    path = fill(template, await seeded(client, db)) + ("?limit=1" if paged else "")

    got = await client.get(path)
    head = await client.head(path)

    assert head.status == got.status == 200
    assert await head.read() == b""
    # The counters /metrics shows move with every request, and its length with them.
    changing = PER_RESPONSE | ({"Content-Length"} if template == "/metrics" else set())
    same = {k: v for k, v in got.headers.items() if k not in changing}
    assert {k: v for k, v in head.headers.items() if k not in changing} == same
    if template != "/metrics":
        assert int(head.headers["Content-Length"]) == len(await got.read())


async def test_head_of_a_missing_resource_is_the_same_404_without_a_body(client):
    got = await client.get("/students/999999")
    head = await client.head("/students/999999")

    assert head.status == got.status == 404
    assert head.content_type == got.content_type == "application/problem+json"
    assert head.headers["Content-Length"] == got.headers["Content-Length"]
    assert await head.read() == b""


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/students", {"GET", "HEAD", "POST"}),  # a collection with GET
        ("POST", "/healthz", {"GET", "HEAD"}),  # an operation route, GET only
        ("PUT", "/students/1/courses/1", {"GET", "HEAD", "DELETE"}),  # an enrollment
    ],
)
async def test_a_405_lists_head_wherever_get_is_allowed(client, method, path, allowed):
    response = await client.request(method, path)

    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == allowed


# Every route with a request it would otherwise answer with success or a plain 404.
ALL_ROUTES = [(method, path, query) for method, path, _, query in ROUTES]


@pytest.mark.parametrize(("method", "template", "defined"), ALL_ROUTES)
async def test_a_query_parameter_the_route_does_not_define_is_422_naming_it(
    client, db, method, template, defined
):
    ids = await seeded(client, db)
    before = await db.fetchval("select count(*) from student_courses")

    response = await client.request(method, f"{fill(template, ids)}?limt=5&emial=x", json={})

    assert response.status == 422, await response.text()
    if template.startswith(ONEROSTER):  # the binding's status payload, naming both
        body = await response.json()
        said = body["imsx_description"]
        assert said.index("limt is not a query parameter") < said.index("emial is not")
    else:
        body = await problem(response)
        assert [e["field"] for e in body["errors"]] == ["limt", "emial"]
        assert all("not a query parameter" in e["message"] for e in body["errors"])
    assert await db.fetchval("select count(*) from student_courses") == before  # nothing done


@pytest.mark.parametrize(
    "query",
    [
        "limit=1&limit=2",  # which limit? refused rather than guessed
        "cursor=a&cursor=b",  # the same for a cursor
    ],
)
async def test_a_defined_query_parameter_given_twice_is_422(client, query):
    response = await client.get(f"/students?{query}")

    assert response.status == 422
    body = await problem(response)
    assert [e["field"] for e in body["errors"]] == [query.split("=")[0]]


@pytest.mark.parametrize(
    "query",
    [
        "limit=1",  # a defined parameter
        "",  # none at all
        "limit=1&",  # an empty pair after it carries no parameter
    ],
)
async def test_the_defined_query_parameters_pass(client, db, query):
    await seeded(client, db)

    response = await client.get(f"/students?{query}")

    assert response.status == 200, await response.text()
