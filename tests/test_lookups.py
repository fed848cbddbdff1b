"""Lookups: ?email=, ?code= and ?q= on /students and /courses, and cursors bound to their list."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from service.repositories import students as students_repository

from .api import create_course, create_student, problem


async def page(client, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def ids(client, path: str, **params: Any) -> list[int]:
    return [item["id"] for item in (await page(client, path, **params))["items"]]


async def refused(client, path: str, **params: Any) -> list[str]:
    """The fields a 422 names."""
    response = await client.get(path, params=params)
    assert response.status == 422, await response.text()
    return [error["field"] for error in (await problem(response))["errors"]]


async def walk_all(client, path: str, limit: int, **filters: Any) -> list[int]:
    """Every id of a filtered list, page by page, following the Link header as given."""
    seen: list[int] = []
    response = await client.get(path, params={**filters, "limit": limit})
    while True:
        assert response.status == 200, await response.text()
        body = await response.json()
        assert len(body["items"]) <= limit
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return seen
        [link] = re.findall(r'^<([^>]+)>; rel="next"$', response.headers["Link"])
        response = await client.get(link)


# --- exact lookups ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("José@Example.org", "JOSÉ@example.org"),  # É and é, the contract's example
        ("élodie@exämple.test", "ÉLODIE@EXÄMPLE.TEST"),  # beyond ASCII, where lower() in C fails
        ("ivan@пример.test", "IVAN@ПРИМЕР.TEST"),  # Cyrillic
        ("ada@example.org", "  ada@example.org\t"),  # trimmed like the field
    ],
)
async def test_email_finds_the_student_in_any_letter_case(client, stored, asked):
    student = await create_student(client, email=stored)
    await create_student(client)

    body = await page(client, "/students", email=asked)

    assert body == {"items": [student], "next_cursor": None}


async def test_email_is_exact_not_a_substring(client):
    await create_student(client, email="jose@example.org")  # no accent: another email
    await create_student(client, email="xjosé@example.org")

    assert await page(client, "/students", email="josé@example.org") == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(("stored", "asked"), [("Ärzte-1", "ärzte-1"), ("CS-101", "cs-101")])
async def test_code_finds_the_course_in_any_letter_case(client, stored, asked):
    course = await create_course(client, code=stored)
    await create_course(client)

    body = await page(client, "/courses", code=asked)

    assert body == {"items": [course], "next_cursor": None}


async def test_no_match_is_an_empty_page(client):
    await create_student(client)
    await create_course(client)

    assert await page(client, "/students", email="nobody@example.org") == {
        "items": [],
        "next_cursor": None,
    }
    assert await page(client, "/courses", code="NOPE-1") == {"items": [], "next_cursor": None}
    assert await page(client, "/students", q="nobody") == {"items": [], "next_cursor": None}
    assert await page(client, "/courses", q="nothing") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/students", {"email": "not-an-email"}, "email"),  # no @: no student has it
        ("/students", {"email": ""}, "email"),
        ("/courses", {"code": "CS 101"}, "code"),  # white space, as the field refuses
        ("/courses", {"code": "x" * 33}, "code"),
        ("/students", {"q": "ab"}, "q"),  # too short
        ("/students", {"q": "  ab  "}, "q"),  # two characters once trimmed
        ("/students", {"q": "x" * 101}, "q"),  # too long
        ("/courses", {"q": ""}, "q"),
        ("/students", {"q": "a\x01b"}, "q"),  # a control character
        ("/students", {"emial": "a@b.c"}, "emial"),  # a typo is not "no filter"
        ("/courses", {"email": "a@b.c"}, "email"),  # a filter of the other list
    ],
)
async def test_bad_filters_are_422_naming_them(client, path, params, field):
    assert await refused(client, path, **params) == [field]


async def test_every_bad_parameter_is_named_at_once(client):
    fields = await refused(client, "/students", q="ab", limit="0", cursor="nonsense")
    assert sorted(fields) == ["cursor", "limit", "q"]


# --- ?q= --------------------------------------------------------------------------


async def test_q_finds_students_by_name_or_email_in_any_letter_case(client):
    zoe = await create_student(client, name="Zoë Ångström", email="zoe@example.org")
    kwame = await create_student(client, name="Kwame", email="kwame@accra.test")
    bob = await create_student(client, name="Bob", email="bob@example.org")

    assert await ids(client, "/students", q="ångs") == [zoe["id"]]  # name
    assert await ids(client, "/students", q="ZOË ÅNG") == [zoe["id"]]  # inner space kept
    assert await ids(client, "/students", q="ACCRA") == [kwame["id"]]  # email only
    assert await ids(client, "/students", q="example.ORG") == [zoe["id"], bob["id"]]


async def test_q_finds_courses_by_code_or_title(client):
    maths = await create_course(client, code="MATH-201", title="Linear Algebra")
    physics = await create_course(client, code="PHY-1", title="Mécanique")
    await create_course(client, code="ART-1", title="Drawing")

    assert await ids(client, "/courses", q="math") == [maths["id"]]  # code
    assert await ids(client, "/courses", q="ALGEB") == [maths["id"]]  # title
    assert await ids(client, "/courses", q="MÉCA") == [physics["id"]]  # É and é
    assert await ids(client, "/courses", q="Y-1") == [physics["id"]]


async def test_q_never_matches_across_the_name_and_the_email(client):
    # name || email would be "Annabel@x.test": "nabel" spans the two.
    await create_student(client, name="Ann", email="abel@x.test")

    assert await ids(client, "/students", q="nnabe") == []
    assert await ids(client, "/students", q="Ann") != []


@pytest.mark.parametrize(
    ("names", "q", "found"),
    [
        (["100% Pure", "1000 Pure"], "0% P", [0]),  # % is itself, not "anything"
        (["a_b_c", "axbxc"], "a_b", [0]),  # _ is itself, not "any character"
        (["back\\slash", "backslash"], "k\\s", [0]),  # a backslash is itself too
        (["50%_off", "50xoff"], "%_o", [0]),
    ],
)
async def test_wildcards_in_q_are_literal(client, names, q, found):
    made = [await create_student(client, name=name) for name in names]

    assert await ids(client, "/students", q=q) == [made[i]["id"] for i in found]


async def test_email_and_q_together_both_apply(client):
    ada = await create_student(client, name="Ada Lovelace", email="ada@example.org")
    await create_student(client, name="Ada King", email="king@example.org")

    assert await ids(client, "/students", email="ADA@example.org", q="love") == [ada["id"]]
    assert await ids(client, "/students", email="ADA@example.org", q="king") == []


# --- pages and cursors ------------------------------------------------------------


async def test_q_pages_walk_every_match_once_in_id_order(client):
    matching = []
    for n in range(23):
        student = await create_student(client, name=f"Lovelace {n}")
        matching.append(student["id"])
        await create_student(client, name=f"Other {n}")  # between every two matches

    for limit in (1, 4, 23, 50):
        assert await walk_all(client, "/students", limit, q="lovelace") == matching


async def test_the_link_header_keeps_the_filters(client):
    for n in range(3):
        await create_student(client, name=f"Grace Hopper {n}")
    response = await client.get("/students", params={"q": "grace h", "limit": 2})
    body = await response.json()

    [link] = re.findall(r'^<([^>]+)>; rel="next"$', response.headers["Link"])

    assert link.startswith("/students?")
    assert "q=grace+h" in link or "q=grace%20h" in link
    assert f"cursor={body['next_cursor']}" in link and "limit=2" in link


async def test_a_cursor_is_valid_only_for_its_list_and_filters(client):
    for n in range(3):
        await create_student(client, name=f"Lovelace {n}", email=f"lovelace{n}@example.org")
        await create_course(client, code=f"LOVE-{n}", title=f"Lovelace {n}")
    cursor = (await page(client, "/students", q="lovelace", limit=1))["next_cursor"]
    plain = (await page(client, "/students", limit=1))["next_cursor"]
    assert cursor and plain

    # Its own list and filters: fine, with any limit.
    assert await ids(client, "/students", q="lovelace", cursor=cursor, limit=5)
    # Other filters, no filters, another list: 422 naming the cursor.
    assert await refused(client, "/students", q="lovelacf", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", q="LOVELACE", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", cursor=cursor) == ["cursor"]
    assert await refused(client, "/students", q="lovelace", email="a@b.c", cursor=cursor) == [
        "cursor"
    ]
    assert await refused(client, "/courses", q="lovelace", cursor=cursor) == ["cursor"]
    # An unfiltered list's cursor is bound as well.
    assert await refused(client, "/courses", cursor=plain) == ["cursor"]
    assert await refused(client, "/students", q="lovelace", cursor=plain) == ["cursor"]
    student = (await page(client, "/students", limit=1))["items"][0]["id"]
    assert await refused(client, f"/students/{student}/courses", cursor=plain) == ["cursor"]


def v1(last_id: int) -> str:
    """A cursor as the service issued them before they were bound to a list."""
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


async def test_cursors_from_before_binding_still_walk_the_lists_without_filters(client):
    made = [(await create_student(client, name=f"Lovelace {n}"))["id"] for n in range(3)]

    # A walk a client began before an upgrade goes on.
    assert await ids(client, "/students", cursor=v1(made[0])) == made[1:]
    # Filters did not exist then: no such cursor can be theirs.
    assert await refused(client, "/students", q="lovelace", cursor=v1(made[0])) == ["cursor"]


async def test_feed_cursors_are_bound_to_the_feeds_filters(client):
    a = await create_student(client)
    b = await create_student(client)
    cursor = (await page(client, "/events", student_id=a["id"]))["next_cursor"]

    assert await ids(client, "/events", student_id=a["id"], cursor=cursor) == []
    assert await refused(client, "/events", student_id=b["id"], cursor=cursor) == ["cursor"]
    assert await refused(client, "/events", cursor=cursor) == ["cursor"]
    # wait is no filter: a follower may change it.
    assert await ids(client, "/events", student_id=a["id"], cursor=cursor, wait=0) == []
    # A follower's cursor from before the upgrade still works, filters or not.
    assert await ids(client, "/events", student_id=b["id"], cursor=v1(1)) == [
        event["id"] for event in (await page(client, "/events", student_id=b["id"]))["items"]
    ]


# --- the plan ---------------------------------------------------------------------


async def test_q_reads_its_matches_with_the_generic_plan_even_where_custom_plans_are_forced(db):
    # Planned with the text, the first step costs more to plan than to run
    # (service/repositories/search.py). The session forces custom plans; the
    # search must still use the generic one.
    await db.execute("set plan_cache_mode = force_custom_plan")
    for q in ("ada", "grace", "zoë", "ada", "bob", "eve", "ada"):
        await students_repository.list_page(db, after=0, limit=50, q=q)

    row = await db.fetchrow(
        "select generic_plans, custom_plans from pg_prepared_statements where statement = $1",
        students_repository.Q.search,
    )

    assert dict(row) == {"generic_plans": 7, "custom_plans": 0}


async def test_common_text_pages_walk_every_match_once_in_id_order(client, db):
    # More matches than the first step reads (bound 5 here, 2000 in service):
    # the pages come from the walk in id order.
    matching = []
    for n in range(12):
        matching.append((await create_student(client, name=f"Common {n}"))["id"])
        await create_student(client, name=f"Other {n}")

    seen, after = [], 0
    while True:
        page_ = await students_repository.list_page(db, after=after, limit=5, q="commo", bound=5)
        seen += [student.id for student in page_.items]
        if page_.last_key is None:
            break
        after = page_.last_key

    assert seen == matching
    # Through the API, with the service's bound: the same.
    assert await walk_all(client, "/students", 5, q="commo") == matching
