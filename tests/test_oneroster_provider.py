"""The OneRoster 1.2 rostering provider: records made through the service's API, read through the binding.

Every path, envelope and record type; paging and its headers; the filter
grammar; sort, orderBy and fields; the binding's error payload; deletions
seen by a delta query. The query plans of its statements are checked in
tests/test_query_plans.py.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from service import migrations
from service.app import create_app
from service.config import Token

from .api import create_course, create_student, create_term, enroll

P = "/ims/oneroster/rostering/v1p2"
RFC3339_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
SCHOOL = "school"


SOURCED_ID = {
    "students": "select sourced_id from students where id = $1",
    "courses": "select sourced_id from courses where id = $1",
    "terms": "select sourced_id from terms where id = $1",
}


async def sourced_id(db, table: str, row_id: int) -> str:
    return await db.fetchval(SOURCED_ID[table], row_id)


async def row_id(db, sourced: str) -> int:
    return await db.fetchval("select id from students where sourced_id = $1", sourced)


async def get(client, path: str, status: int = 200, **params):
    response = await client.get(f"{P}/{path}", params=params)
    body = await response.json(content_type=None)
    assert response.status == status, body
    return response, body


def status_payload(body: dict, minor: str) -> None:
    """The binding's imsx_StatusInfo, with the codeMinor `minor`."""
    assert body["imsx_codeMajor"] == "failure"
    assert body["imsx_severity"] == "error"
    assert body["imsx_description"]
    assert body["imsx_CodeMinor"] == {
        "imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
        ]
    }
    assert set(body) == {"imsx_codeMajor", "imsx_severity", "imsx_description", "imsx_CodeMinor"}


def links(response) -> dict[str, dict[str, str]]:
    """The Link header's targets by rel, each as its query parameters."""
    found = {}
    for part in response.headers["Link"].split(", "):
        target, rel = re.fullmatch(r'<([^>]*)>; rel="(\w+)"', part).groups()
        url = urlsplit(target)
        assert url.path.startswith(P)
        found[rel] = {k: v[0] for k, v in parse_qs(url.query).items()}
    return found


# --- users and students ------------------------------------------------------------


async def test_a_student_is_a_user_of_role_student_in_the_school(client, db):
    student = await create_student(client, name="Ada King Lovelace", email="ada@example.org")
    sid = await sourced_id(db, "students", student["id"])
    modified = await db.fetchval("select modified_at from students where id = $1", student["id"])

    _, body = await get(client, f"users/{sid}")

    assert body == {
        "user": {
            "sourcedId": sid,
            "status": "active",
            "dateLastModified": modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "username": "ada@example.org",
            "userIds": [],
            "enabledUser": "true",
            "givenName": "Ada King",
            "familyName": "Lovelace",
            "roles": [
                {
                    "roleType": "primary",
                    "role": "student",
                    "org": {"href": f"{P}/orgs/{SCHOOL}", "sourcedId": SCHOOL, "type": "org"},
                }
            ],
            "email": "ada@example.org",
        }
    }
    assert RFC3339_Z.fullmatch(body["user"]["dateLastModified"])


@pytest.mark.parametrize(
    ("name", "given", "family"),
    [
        ("Ada", "", "Ada"),  # one word: the family name alone
        ("Ada  Lovelace", "Ada", "Lovelace"),  # several spaces between words
        ("Élodie Ñúñez", "Élodie", "Ñúñez"),  # letters outside ASCII
    ],
)
async def test_a_name_is_split_at_its_last_space(client, db, name, given, family):
    student = await create_student(client, name=name)

    _, body = await get(client, f"students/{await sourced_id(db, 'students', student['id'])}")

    assert (body["user"]["givenName"], body["user"]["familyName"]) == (given, family)


async def test_users_and_students_list_every_student_under_users(client, db):
    ids = [(await create_student(client))["id"] for _ in range(3)]
    expected = [await sourced_id(db, "students", i) for i in ids]

    for path in ("users", "students"):
        response, body = await get(client, path)

        assert list(body) == ["users"]
        assert [u["sourcedId"] for u in body["users"]] == expected  # id order
        assert response.headers["X-Total-Count"] == "3"
        assert response.content_type == "application/json"


async def test_an_unknown_sourced_id_is_404_in_the_bindings_form(client):
    for path in ("users", "students", "classes", "courses", "terms", "academicSessions"):
        _, body = await get(client, f"{path}/nobody", 404)
        status_payload(body, "unknownobject")
    for path in ("enrollments", "orgs", "schools"):
        _, body = await get(client, f"{path}/nobody", 404)
        status_payload(body, "unknownobject")


# --- terms, classes, courses, enrollments, orgs -------------------------------------


async def setup_roster(client, db):
    """A term with two courses, a course in no term, three students, four enrollments."""
    term = await create_term(
        client, title="Spring 2027", starts_on="2027-01-11", ends_on="2027-05-07"
    )
    algebra = await create_course(client, code="MATH-1", title="Algebra", term_id=term["id"])
    poetry = await create_course(client, code="LIT-2", title="Poetry", term_id=term["id"])
    loose = await create_course(client, code="ART-3", title="Drawing")
    students = [
        await create_student(client, name="Ada Lovelace", email="ada@example.org"),
        await create_student(client, name="Grace Hopper", email="grace@example.org"),
        await create_student(client, name="Alan Turing", email="alan@example.org"),
    ]
    for student, course in [(0, algebra), (1, algebra), (1, poetry), (2, loose)]:
        response = await enroll(client, students[student]["id"], course["id"])
        assert response.status == 201
    ids = {
        "term": await sourced_id(db, "terms", term["id"]),
        "algebra": await sourced_id(db, "courses", algebra["id"]),
        "poetry": await sourced_id(db, "courses", poetry["id"]),
        "loose": await sourced_id(db, "courses", loose["id"]),
        "students": [await sourced_id(db, "students", s["id"]) for s in students],
        "student_rows": [s["id"] for s in students],
        "course_rows": {"algebra": algebra["id"], "poetry": poetry["id"], "loose": loose["id"]},
    }
    return ids


async def test_a_term_is_an_academic_session_of_type_term(client, db):
    ids = await setup_roster(client, db)

    for path in ("terms", "academicSessions"):
        response, body = await get(client, path)
        assert list(body) == ["academicSessions"]  # /terms too, as the binding has it
        assert response.headers["X-Total-Count"] == "1"
        [session] = body["academicSessions"]
        assert session["sourcedId"] == ids["term"]
        assert {k: session[k] for k in ("title", "startDate", "endDate", "type", "schoolYear")} == {
            "title": "Spring 2027",
            "startDate": "2027-01-11",
            "endDate": "2027-05-07",
            "type": "term",
            "schoolYear": "2027",
        }
        assert session["status"] == "active" and RFC3339_Z.fullmatch(session["dateLastModified"])
    _, single = await get(client, f"terms/{ids['term']}")
    assert single == {"academicSession": session}
    _, single = await get(client, f"academicSessions/{ids['term']}")
    assert single == {"academicSession": session}


async def test_a_course_is_a_class_of_its_term_and_a_course_of_the_school(client, db):
    ids = await setup_roster(client, db)
    school = {"href": f"{P}/orgs/{SCHOOL}", "sourcedId": SCHOOL, "type": "org"}

    _, body = await get(client, f"classes/{ids['algebra']}")
    algebra = body["class"]
    assert algebra == {
        "sourcedId": ids["algebra"],
        "status": "active",
        "dateLastModified": algebra["dateLastModified"],
        "title": "Algebra",
        "classCode": "MATH-1",
        "classType": "scheduled",
        "course": {
            "href": f"{P}/courses/{ids['algebra']}",
            "sourcedId": ids["algebra"],
            "type": "course",
        },
        "school": school,
        "terms": [
            {
                "href": f"{P}/academicSessions/{ids['term']}",
                "sourcedId": ids["term"],
                "type": "academicSession",
            }
        ],
    }
    _, body = await get(client, f"classes/{ids['loose']}")
    assert body["class"]["terms"] == []  # a course in no term

    _, body = await get(client, f"courses/{ids['algebra']}")
    assert body == {
        "course": {
            "sourcedId": ids["algebra"],
            "status": "active",
            "dateLastModified": algebra["dateLastModified"],
            "title": "Algebra",
            "courseCode": "MATH-1",
            "org": school,
        }
    }
    for path in ("classes", "courses"):
        response, body = await get(client, path)
        assert [c["sourcedId"] for c in body[path]] == [ids["algebra"], ids["poetry"], ids["loose"]]
        assert response.headers["X-Total-Count"] == "3"


async def test_an_enrollment_is_a_students_in_a_class_of_the_school(client, db):
    ids = await setup_roster(client, db)
    row = await db.fetchrow(
        "select sourced_id, enrolled_at from student_courses where student_id = $1 and course_id = $2",
        ids["student_rows"][0],
        ids["course_rows"]["algebra"],
    )

    _, body = await get(client, f"enrollments/{row['sourced_id']}")

    ada = ids["students"][0]
    assert body == {
        "enrollment": {
            "sourcedId": row["sourced_id"],
            "status": "active",
            "dateLastModified": row["enrolled_at"]
            .astimezone(UTC)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "user": {"href": f"{P}/users/{ada}", "sourcedId": ada, "type": "user"},
            "class": {
                "href": f"{P}/classes/{ids['algebra']}",
                "sourcedId": ids["algebra"],
                "type": "class",
            },
            "school": {"href": f"{P}/orgs/{SCHOOL}", "sourcedId": SCHOOL, "type": "org"},
            "role": "student",
            "primary": "false",
        }
    }
    response, body = await get(client, "enrollments")
    assert response.headers["X-Total-Count"] == "4"
    assert len(body["enrollments"]) == 4


async def test_the_school_is_the_one_org(client, config, aiohttp_client):
    named = replace(config, oneroster_school_name="Lincoln High", oneroster_school_id="lincoln-hs")
    client = await aiohttp_client(create_app(named))

    for path in ("orgs", "schools"):
        response, body = await get(client, path)
        assert response.headers["X-Total-Count"] == "1"
        [org] = body["orgs"]
        assert {k: org[k] for k in ("sourcedId", "status", "name", "type", "identifier")} == {
            "sourcedId": "lincoln-hs",
            "status": "active",
            "name": "Lincoln High",
            "type": "school",
            "identifier": "lincoln-hs",
        }
        assert RFC3339_Z.fullmatch(org["dateLastModified"])
    for path in ("orgs/lincoln-hs", "schools/lincoln-hs"):
        _, body = await get(client, path)
        assert body == {"org": org}
    _, body = await get(client, "orgs", filter="name='Other'")
    assert body == {"orgs": []}


async def test_the_nested_collections(client, db):
    ids = await setup_roster(client, db)
    ada, grace, _ = ids["students"]

    _, body = await get(client, f"classes/{ids['algebra']}/students")
    assert [u["sourcedId"] for u in body["users"]] == [ada, grace]
    _, body = await get(client, f"students/{grace}/classes")
    assert [c["sourcedId"] for c in body["classes"]] == [ids["algebra"], ids["poetry"]]
    response, body = await get(client, f"terms/{ids['term']}/classes")
    assert [c["sourcedId"] for c in body["classes"]] == [ids["algebra"], ids["poetry"]]
    assert response.headers["X-Total-Count"] == "2"
    response, body = await get(client, f"schools/{SCHOOL}/classes")
    assert len(body["classes"]) == 3

    # An owner that does not exist, and one that exists with nothing.
    for path in ("classes/nothing/students", "students/nobody/classes", "terms/never/classes"):
        _, body = await get(client, path, 404)
        status_payload(body, "unknownobject")
    _, body = await get(client, "schools/elsewhere/classes", 404)
    status_payload(body, "unknownobject")
    empty = await create_course(client, code="EMPTY", title="Empty")
    _, body = await get(client, f"classes/{await sourced_id(db, 'courses', empty['id'])}/students")
    assert body == {"users": []}


# --- paging -------------------------------------------------------------------------


async def test_pages_carry_the_total_and_links_to_first_last_prev_next(client, db):
    for _ in range(5):
        await create_student(client)

    response, body = await get(client, "users", limit="2", offset="2", filter="status='active'")

    assert len(body["users"]) == 2
    assert response.headers["X-Total-Count"] == "5"
    found = links(response)
    assert {rel: (q["limit"], q["offset"]) for rel, q in found.items()} == {
        "first": ("2", "0"),
        "last": ("2", "4"),
        "prev": ("2", "0"),
        "next": ("2", "4"),
    }
    assert all(q["filter"] == "status='active'" for q in found.values())  # kept

    response, body = await get(client, "users", limit="2", offset="4")
    assert len(body["users"]) == 1
    assert "next" not in links(response)
    response, body = await get(client, "users", limit="2")
    assert set(links(response)) == {"first", "last", "next"}


async def test_walking_the_pages_returns_every_record_once(client, db):
    made = [
        await sourced_id(db, "students", (await create_student(client))["id"]) for _ in range(7)
    ]
    seen = []
    params = {"limit": "3"}
    while True:
        response, body = await get(client, "users", **params)
        seen += [u["sourcedId"] for u in body["users"]]
        nxt = links(response).get("next")
        if nxt is None:
            break
        params = nxt

    assert seen == made


async def test_the_base_url_makes_links_and_hrefs_absolute(client, config, aiohttp_client, db):
    based = replace(config, oneroster_base_url="https://sis.example.edu")
    client = await aiohttp_client(create_app(based))
    await create_student(client)

    response, body = await get(client, "users")

    assert response.headers["Link"].startswith(f"<https://sis.example.edu{P}/users?")
    org = body["users"][0]["roles"][0]["org"]
    assert org["href"] == f"https://sis.example.edu{P}/orgs/{SCHOOL}"


@pytest.mark.parametrize(
    ("params", "minor"),
    [
        ({"limit": "0"}, "invaliddata"),  # below the binding's minimum
        ({"limit": "1001"}, "invaliddata"),  # above the service's maximum
        ({"limit": "ten"}, "invaliddata"),
        ({"offset": "-1"}, "invaliddata"),
        ({"orderBy": "up"}, "invaliddata"),
        ({"sort": "shoeSize"}, "invalid_sort_field"),
        ({"sort": "roles"}, "invalid_sort_field"),  # a field, but a list: not sortable
        ({"fields": "sourcedId,shoeSize"}, "invalid_selection_field"),
        ({"filter": "shoeSize='42'"}, "invalid_filter_field"),
    ],
)
async def test_bad_parameters_are_400_in_the_bindings_form(client, params, minor):
    _, body = await get(client, "users", 400, **params)

    status_payload(body, minor)


async def test_the_limit_goes_up_to_1000(client):
    response, body = await get(client, "users", limit="1000")

    assert body == {"users": []}
    assert response.headers["X-Total-Count"] == "0"


async def test_an_unknown_parameter_is_refused_in_the_bindings_form(client):
    _, body = await get(client, "users", 422, search="ada")

    status_payload(body, "invaliddata")
    assert "search" in body["imsx_description"]


async def test_an_unknown_path_under_the_prefix_is_404_in_the_bindings_form(client):
    for path in ("teachers", "users/x/classes/y", "demographics"):
        _, body = await get(client, path, 404)
        status_payload(body, "unknownobject")
    response = await client.get("/nothing-here")
    assert response.content_type == "application/problem+json"  # elsewhere: problem+json


async def test_401_and_403_keep_their_headers_in_the_bindings_form(config, aiohttp_client):
    token = Token("reader", "read", "a-reader-secret-of-16+")
    client = await aiohttp_client(create_app(replace(config, tokens=(token,))))

    response = await client.get(f"{P}/users")
    body = await response.json()
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    status_payload(body, "unauthorisedrequest")

    # A read token may not write: 403, before the path is found to be read-only.
    response = await client.post(f"{P}/users", headers={"Authorization": f"Bearer {token.secret}"})
    body = await response.json()
    assert response.status == 403
    status_payload(body, "forbidden")

    response = await client.get(f"{P}/users", headers={"Authorization": f"Bearer {token.secret}"})
    assert response.status == 200


# --- fields, sort ---------------------------------------------------------------------


async def test_fields_keeps_only_the_named_fields(client, db):
    student = await create_student(client, name="Ada Lovelace")
    sid = await sourced_id(db, "students", student["id"])

    _, body = await get(client, "users", fields="sourcedId,familyName,middleName")
    assert body == {"users": [{"sourcedId": sid, "familyName": "Lovelace"}]}  # middleName: none

    _, body = await get(client, f"users/{sid}", fields="givenName")
    assert body == {"user": {"givenName": "Ada"}}


@pytest.mark.parametrize(
    ("order", "expected"), [("asc", ["A", "B", "C"]), ("desc", ["C", "B", "A"])]
)
async def test_sort_and_order_by(client, order, expected):
    for family in ("B", "C", "A"):
        await create_student(client, name=f"Ann {family}")

    _, body = await get(client, "users", sort="familyName", orderBy=order)

    assert [u["familyName"] for u in body["users"]] == expected


async def test_sort_in_code_point_order_then_by_id(client):
    for name in ("x b", "x B", "x a", "x b"):
        await create_student(client, name=name)

    _, body = await get(client, "users", sort="familyName")

    assert [u["familyName"] for u in body["users"]] == ["B", "a", "b", "b"]


# --- filters ----------------------------------------------------------------------------


@pytest.fixture
async def three(client, db):
    """Three students, by family name."""
    made = {}
    for name, email in [
        ("Mary O'Brien", "mary@example.org"),
        ("Ada Lovelace", "ada@example.org"),
        ("Grace Hopper", "grace@example.org"),
    ]:
        student = await create_student(client, name=name, email=email)
        made[name.split()[-1]] = await sourced_id(db, "students", student["id"])
    return made


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("familyName='Lovelace'", ["Lovelace"]),
        ("familyName='O''Brien'", ["O'Brien"]),  # a doubled quote is one quote
        ("familyName!='Lovelace'", ["O'Brien", "Hopper"]),
        ("familyName>'Lovelace'", ["O'Brien"]),  # code point order
        ("familyName>='Lovelace'", ["O'Brien", "Lovelace"]),
        ("familyName<'Lovelace'", ["Hopper"]),
        ("familyName<='Lovelace'", ["Lovelace", "Hopper"]),
        ("email~'GRACE'", ["Hopper"]),  # contains, any letter case
        ("givenName~'a'", ["O'Brien", "Lovelace", "Hopper"]),
        ("givenName~'r' AND familyName~'E'", ["O'Brien", "Hopper"]),
        ("familyName='Lovelace' OR familyName='Hopper'", ["Lovelace", "Hopper"]),
        ("familyName = 'Lovelace'", ["Lovelace"]),  # spaces around the operator
        ("middleName='x'", []),  # a field the binding has and no record carries
        ("status='active' AND enabledUser='true' AND primaryOrg.sourcedId!='x'", []),
    ],
)
async def test_filter_operators(client, three, expression, expected):
    response, body = await get(client, "users", filter=expression)

    assert [u["familyName"] for u in body["users"]] == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


@pytest.mark.parametrize(
    "expression",
    [
        "(status='active' OR status='tobedeleted')",  # parentheses: not in the grammar
        "status='active' AND familyName='x' OR familyName='y'",  # AND and OR mixed
        "shoeSize='42'",  # not a field of a user
        "roles='student'",  # not a field a filter can name
        "familyName='unterminated",
        "familyName=Lovelace",  # unquoted
        "familyName=='x'",
        "dateLastModified>'yesterday'",
        "dateLastModified>'2026-01-01T00:00:00'",  # a time without Z or an offset
        "status='active' and familyName='x'",  # the binding's AND is upper case
        "",
    ],
)
async def test_a_filter_outside_the_grammar_is_400_invalid_filter_field(client, expression):
    _, body = await get(client, "users", 400, filter=expression)

    status_payload(body, "invalid_filter_field")


async def test_a_timestamp_may_have_an_offset_or_z(client, db, three):
    await db.execute(
        "update students set modified_at = '2026-11-01T12:00:00Z' where email like 'ada%'"
    )

    for value, expected in [
        ("2026-11-01T12:00:00Z", []),
        ("2026-11-01T12:59:59+01:00", ["Lovelace"]),  # 11:59:59Z
        ("2026-11-01T13:00:00+01:00", []),  # 12:00:00Z exactly: not after it
        ("2026-11-01T06:59:59.999999-05:00", ["Lovelace"]),
    ]:
        _, body = await get(
            client, "users", filter=f"dateLastModified>'{value}' AND familyName='Lovelace'"
        )
        assert [u["familyName"] for u in body["users"]] == expected, value
    _, body = await get(client, "users", filter="dateLastModified>='2026-11-01T12:00:00Z'")
    assert "Lovelace" in [u["familyName"] for u in body["users"]]  # >=: from it on


async def test_filter_by_sourced_id(client, three):
    response, body = await get(client, "users", filter=f"sourcedId='{three['Hopper']}'")

    assert [u["sourcedId"] for u in body["users"]] == [three["Hopper"]]
    assert response.headers["X-Total-Count"] == "1"


async def test_filter_by_sourced_id_and_a_time_takes_both(client, db, three):
    await db.execute("update students set modified_at = '2026-11-01T12:00:00Z'")
    lovelace = f"sourcedId='{three['Lovelace']}'"

    _, before = await get(client, "users", filter=f"{lovelace} AND dateLastModified>'2026-11-01'")
    _, after = await get(client, "users", filter=f"{lovelace} AND dateLastModified>'2026-11-02'")

    assert [u["sourcedId"] for u in before["users"]] == [three["Lovelace"]]
    assert after == {"users": []}  # not changed since: not there


async def test_filter_on_a_guid_refs_sourced_id(client, db):
    ids = await setup_roster(client, db)

    _, body = await get(client, "enrollments", filter=f"class.sourcedId='{ids['algebra']}'")

    assert sorted(e["user"]["sourcedId"] for e in body["enrollments"]) == sorted(
        ids["students"][:2]
    )


# --- deltas and deletions ------------------------------------------------------------


async def test_a_delta_query_returns_what_changed_since(client, db, three):
    await db.execute("update students set modified_at = now() - interval '1 day'")
    since = datetime.now(UTC) - timedelta(hours=1)
    hopper = await row_id(db, three["Hopper"])
    response = await client.patch(f"/students/{hopper}", json={"name": "Grace Brewster Hopper"})
    assert response.status == 200

    _, body = await get(client, "users", filter=f"dateLastModified>'{since.isoformat()}'")

    assert [(u["sourcedId"], u["givenName"]) for u in body["users"]] == [
        (three["Hopper"], "Grace Brewster")
    ]


async def test_deleted_students_appear_as_tobedeleted_in_a_delta_query_only(client, db, three):
    since = datetime.now(UTC) - timedelta(minutes=5)
    student_id = await db.fetchval(
        "select id from students where sourced_id = $1", three["Lovelace"]
    )
    assert (await client.delete(f"/students/{student_id}")).status == 204
    deleted_at = await db.fetchval(
        "select deleted_at from tombstones where sourced_id = $1", three["Lovelace"]
    )

    response, body = await get(client, "users", filter=f"dateLastModified>'{since.isoformat()}'")

    gone = [u for u in body["users"] if u["status"] == "tobedeleted"]
    assert gone == [
        {
            "sourcedId": three["Lovelace"],
            "status": "tobedeleted",
            "dateLastModified": deleted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    ]  # no personal field
    assert body["users"][-1] == gone[0]  # after the live records
    assert response.headers["X-Total-Count"] == str(len(body["users"]))
    # Without a delta predicate, a deleted record is simply not there.
    _, body = await get(client, "users")
    assert three["Lovelace"] not in [u["sourcedId"] for u in body["users"]]
    _, body = await get(client, f"users/{three['Lovelace']}", 404)
    # A delta query from after the deletion does not return it.
    later = (deleted_at + timedelta(seconds=1)).isoformat()
    _, body = await get(client, "users", filter=f"dateLastModified>'{later}'")
    assert body == {"users": []}


async def test_a_deleted_enrollment_appears_as_tobedeleted_in_a_delta_query(client, db):
    ids = await setup_roster(client, db)
    since = datetime.now(UTC) - timedelta(minutes=5)
    enrollment = await db.fetchval(
        "select sourced_id from student_courses where student_id = $1",
        ids["student_rows"][2],
    )
    response = await client.delete(
        f"/students/{ids['student_rows'][2]}/courses/{ids['course_rows']['loose']}"
    )
    assert response.status == 204

    _, body = await get(
        client,
        "enrollments",
        filter=f"dateLastModified>='{since.isoformat()}' AND status='tobedeleted'",
    )

    assert [(e["sourcedId"], e["status"], set(e)) for e in body["enrollments"]] == [
        (enrollment, "tobedeleted", {"sourcedId", "status", "dateLastModified"})
    ]
    _, body = await get(client, "enrollments")
    assert enrollment not in [e["sourcedId"] for e in body["enrollments"]]


async def test_tobedeleted_records_page_after_the_live_ones(client, db):
    since = datetime.now(UTC) - timedelta(minutes=5)
    ids = [(await create_student(client))["id"] for _ in range(4)]
    for student_id in ids[:2]:
        assert (await client.delete(f"/students/{student_id}")).status == 204
    expected = [await sourced_id(db, "students", i) for i in ids[2:]]
    expected += [
        r["sourced_id"]
        for r in await db.fetch("select sourced_id from tombstones order by deleted_at, ctid")
    ]

    seen = []
    for offset in range(0, 4, 1):
        response, body = await get(
            client,
            "users",
            filter=f"dateLastModified>'{since.isoformat()}'",
            limit="1",
            offset=str(offset),
        )
        assert response.headers["X-Total-Count"] == "4"
        seen += [u["sourcedId"] for u in body["users"]]

    assert seen == expected


# --- counts ---------------------------------------------------------------------------


async def kept(db, kind: str) -> int:
    return await db.fetchval(
        "select coalesce(sum(counted), 0) from row_counts where kind = $1", kind
    )


async def test_the_kept_counts_follow_every_insert_and_delete(client, db):
    ids = [(await create_student(client))["id"] for _ in range(3)]
    items = [{"name": f"Batch {n}", "email": f"batch{n}@example.org"} for n in range(40)]
    response = await client.post("/students/batch", json={"items": items})
    assert response.status == 200
    assert (await client.delete(f"/students/{ids[0]}")).status == 204
    course = await create_course(client)
    await create_course(client)
    assert (await client.delete(f"/courses/{course['id']}")).status == 204

    assert await kept(db, "student") == await db.fetchval("select count(*) from students") == 42
    assert await kept(db, "course") == await db.fetchval("select count(*) from courses") == 1
    for path, total in (("users", 42), ("students", 42), ("classes", 1), ("courses", 1)):
        response, _ = await get(client, path, limit="1")
        assert response.headers["X-Total-Count"] == str(total), path


async def test_the_kept_counts_are_exact_under_concurrent_writes(wide, db):
    async def one(n: int) -> None:
        response = await wide.post(
            "/students", json={"name": f"Rush {n}", "email": f"rush{n}@example.org"}
        )
        assert response.status == 201
        if n % 3 == 0:
            assert (await wide.delete(f"/students/{(await response.json())['id']}")).status == 204

    await asyncio.gather(*(one(n) for n in range(60)))

    assert await kept(db, "student") == await db.fetchval("select count(*) from students") == 40


async def test_the_kept_counts_start_exact_on_a_database_with_students(empty_database):
    migrations.apply(empty_database, target="0019_sourced_ids_filled")
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "insert into students (name, email)"
            " select 'Old ' || n, 'old' || n || '@example.org' from generate_series(1, 37) n"
        )
        await conn.execute("insert into courses (code, title) values ('OLD-1', 'Old')")
        migrations.apply(empty_database)
        assert await kept(conn, "student") == 37
        assert await kept(conn, "course") == 1
        # A file applied again (its text changed) leaves the kept counts as they are.
        await conn.execute("update row_counts set counted = counted + 1000 where shard = 0")
        await conn.execute("delete from schema_functions where file = 'oneroster.sql'")
        migrations.apply(empty_database)
        assert await kept(conn, "student") == 1037
    finally:
        await conn.close()


async def test_a_503_keeps_its_retry_after_in_the_bindings_form(config, aiohttp_client, db):
    client = await aiohttp_client(create_app(replace(config, statement_timeout=0.5)))
    async with db.transaction():
        # Nothing reads students while this lock is held: the statement times out.
        await db.execute("lock table students in access exclusive mode")
        response = await client.get(f"{P}/users")
        body = await response.json()

    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    status_payload(body, "server_busy")
