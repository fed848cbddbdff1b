"""Property-based contract test: schemathesis explores every operation in /openapi.json.

Each operation becomes one pytest item. The item starts the real app on a real
port (its own event loop in a thread) against a fresh, migrated database, seeds
a few students, courses and enrollments through the API, then lets schemathesis
send generated requests: the examples, coverage (boundary and malformed values,
missing parameters, wrong methods and content types) and fuzzing phases, in
positive and negative generation modes. Every response goes through every
schemathesis check that applies to single requests: not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, positive_data_acceptance,
ignored_auth (a successful request is replayed without the token and with a
wrong one, expecting 401), missing_required_header, unsupported_method and allow_header_conformance (undocumented methods get 405
with an Allow header).

Every operation is explored against two instances, each with the document it
serves: one with a write token, as in production, where negative cases include
a missing or wrong Authorization header, so the documented 401s are checked
too; and one without tokens, as `make run` starts it, whose document declares
no security requirement (ignored_auth then has nothing to replay). 404 (an id
that names nothing) and 409 (a taken email, a full course or waitlist) stay
acceptable answers to schema-valid requests: schemathesis allows them by default
and the contract says so. So is 412: an If-Match the fuzzer makes up names no
version of the row (two in three are swapped for `*`, which passes).
Two kinds of schema-valid input are rejected by the contract on purpose, and
`rejected_by_contract` names them; a third, a `?q=` the trigram index may not
narrow, is refused or searched depending on the database (`q_may_be_refused`).

GET /events is explored like the lists, on the events the seeding recorded. Its
long poll (`wait`, up to 30 seconds) would make every case with an empty page wait
out its full `wait`: `short_wait` turns every valid `wait` into 0 or 1 second before
the request is sent, in every phase, and leaves invalid ones as they are.

`make fuzz` runs the same test with FUZZ_EXAMPLES (default 1000) fuzzed requests
per operation instead of 25. The number of generated requests is printed at the
end of the run and written to .data/contract-cases.json.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.meta import TestPhase

from service.app import create_app, openapi_document
from service.config import Config, Token
from service.errors import Problem
from service.handlers import completions, student_terms, terms
from service.idempotency import parse_key
from service.oneroster import PREFIX as ONEROSTER
from service.oneroster import filters as oneroster_filters
from service.oneroster import records as oneroster_records
from service.validation.fields import Bad, sourced_id

from .live import LiveServer

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED_VALUE = int(os.environ.get("FUZZ_SEED", "20260131"))
TOKEN = Token(name="contract", scope="write", secret="contract-test-write-token")
REPORT = Path(__file__).resolve().parents[1] / ".data" / "contract-cases.json"


def load_schema(*, with_tokens: bool) -> schemathesis.BaseSchema:
    """The document an instance with (or without) tokens serves; schemathesis checks it is valid."""
    config: dict[str, Any] = {
        "seed": SEED_VALUE,
        "generation": {"mode": "all", "deterministic": True, "database": "none"},
        # A schema-valid If-Match that names no current version is 412 (the
        # fuzzer cannot know the ETag): an answer the contract gives valid data.
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
            }
        },
    }
    if with_tokens:
        config["auth"] = {"openapi": {"bearerAuth": {"bearer": TOKEN.secret}}}
    return schemathesis.openapi.from_dict(
        openapi_document(with_tokens=with_tokens),
        config=schemathesis.Config.from_dict(config),
    )


SECURED = load_schema(with_tokens=True)
OPEN = load_schema(with_tokens=False)


@dataclasses.dataclass
class Seed:
    """What the seeding created, for the hook to point generated requests at."""

    student_ids: list[int] = dataclasses.field(default_factory=list)
    course_ids: list[int] = dataclasses.field(default_factory=list)
    term_ids: list[int] = dataclasses.field(default_factory=list)
    # A next_cursor of each list without filters, by path: /students,
    # /courses, /terms, and /events (three events into the seeded history). A cursor
    # is bound to its list and filters, so it is valid there alone.
    cursors: dict[str, str] = dataclasses.field(default_factory=dict)
    # The sourcedIds of the seeded records, by the OneRoster record type
    # (users, classes, academicSessions, enrollments, orgs).
    sourced_ids: dict[str, list[str]] = dataclasses.field(default_factory=dict)


SEED = Seed()
CASES: Counter[tuple[str, str, str, int]] = Counter()
# The Idempotency-Keys sent to each instance (by its URL) so far.
KEYS_SENT: dict[str, set[str]] = {}


@pytest.fixture
def secured_url(config: Config) -> Iterator[str]:
    """An instance with one write token, as in production."""
    with LiveServer(create_app(dataclasses.replace(config, tokens=(TOKEN,)))) as server:
        seed(server.url)
        yield server.url


@pytest.fixture
def open_url(config: Config) -> Iterator[str]:
    """An instance without tokens, as `make run` starts it."""
    with LiveServer(create_app(config)) as server:
        seed(server.url)
        yield server.url


def seed(base: str) -> None:
    """Students 1-4, courses 1-4 and terms 1-2, created through the API.

    Courses 1 and 3 are full; course 1 has a waitlist of two, full too (students
    2 and 3 wait, in that order), so every waitlist operation has real data. Then
    a student, a course and their history come and go, so that GET /events has
    every type of event to answer with.
    """
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN.secret}"

        def call(method: str, path: str, body: Any = None, status: int = 204) -> Any:
            response = http.request(method, f"{base}{path}", json=body, timeout=10)
            assert response.status_code == status, response.text
            return response.json() if response.content else None

        def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
            return call("POST", path, body, status)

        students = [
            post("/students", {"name": f"Student {n}", "email": f"student{n}@example.org"})["id"]
            for n in range(1, 5)
        ]
        # (capacity, waitlist_capacity)
        limits = [(1, 2), (None, 0), (2, 0), (100, 5)]
        courses = [
            post(
                "/courses",
                {
                    "code": f"C{n}",
                    "title": f"Course {n}",
                    "capacity": capacity,
                    "waitlist_capacity": waitlist_capacity,
                },
            )["id"]
            for n, (capacity, waitlist_capacity) in enumerate(limits, start=1)
        ]
        # Course 1 (capacity 1) and course 3 (capacity 2) end up full.
        for student, course in [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (2, 1)]:
            post(f"/students/{students[student]}/courses", {"course_id": courses[course]})
        # Students 2 and 3 wait for course 1, which fills its waitlist.
        for student in (1, 2):
            body = {"course_id": courses[0], "waitlist": True}
            post(f"/students/{students[student]}/courses", body, status=202)
        terms = [
            post(
                "/terms",
                {
                    "code": f"2027-{season}",
                    "title": f"{season.title()} 2027",
                    "starts_on": starts_on,
                    "ends_on": ends_on,
                    "registration_opens_at": "2026-11-02T09:00:00Z",
                    "registration_closes_at": "2027-01-22T17:00:00Z",
                    "max_credits": 18,
                },
            )["id"]
            for season, starts_on, ends_on in (
                ("SPRING", "2027-01-11", "2027-05-07"),
                ("FALL", "2027-08-30", "2027-12-17"),
            )
        ]
        record_every_kind_of_event(call, courses[1])
        cursors = {}
        for path, limit in (("/students", 1), ("/courses", 1), ("/terms", 1), ("/events", 3)):
            page = http.get(f"{base}{path}", params={"limit": limit}, timeout=10)
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) == limit, page.text
            cursors[path] = page.json()["next_cursor"]
        # The OneRoster provider names records by sourcedId: those of the seeded
        # rows, by the kind of record a path's collection names.
        sourced = {}
        for kind, path, key in (
            ("users", "users", "users"),
            ("classes", "classes", "classes"),
            ("academicSessions", "terms", "academicSessions"),
            ("enrollments", "enrollments", "enrollments"),
            ("orgs", "orgs", "orgs"),
        ):
            page = http.get(f"{base}{ONEROSTER}/{path}", timeout=10)
            assert page.status_code == 200, page.text
            sourced[kind] = [record["sourcedId"] for record in page.json()[key]]
    SEED.student_ids, SEED.course_ids, SEED.cursors = students, courses, cursors
    SEED.term_ids = terms
    SEED.sourced_ids = sourced


def record_every_kind_of_event(call, open_course: int) -> None:
    """Every type of event, with every `via` and `reason`, about rows that are gone after.

    Leaves the students and courses the seeding made as they were (the student
    enrolled in `open_course`, which has no capacity, is deleted again).
    """
    x = call("POST", "/students", {"name": "X", "email": "x@example.org"}, 201)["id"]
    y = call("POST", "/students", {"name": "Y", "email": "y@example.org"}, 201)["id"]
    z = call("POST", "/courses", {"code": "Z", "title": "Z", "capacity": 1}, 201)["id"]
    call("PATCH", f"/students/{x}", {"email": "x2@example.org"}, 200)  # fields [email]
    call("PATCH", f"/courses/{z}", {"title": "Zed", "waitlist_capacity": 2}, 200)
    hold = call("POST", f"/students/{x}/holds", {"reason": "Fees"}, 201)["id"]
    call("DELETE", f"/students/{x}/holds/{hold}")  # hold.placed, hold.removed
    passed = call("POST", f"/students/{x}/completions", {"code": "Z"}, 201)["id"]
    call("DELETE", f"/students/{x}/completions/{passed}")  # completion.added, .removed
    wait = {"course_id": z, "waitlist": True}
    call("POST", f"/students/{x}/courses", wait, 201)
    call("POST", f"/students/{y}/courses", wait, 202)  # waitlist.joined
    call("DELETE", f"/students/{x}/courses/{z}")  # dropped; y: promoted, via waitlist
    call("POST", f"/students/{x}/courses", wait, 202)
    call("DELETE", f"/students/{x}/waitlist/{z}")  # waitlist.left: left
    call("POST", f"/students/{x}/courses", wait, 202)
    call("DELETE", f"/students/{x}")  # waitlist.left: student_deleted
    call("POST", f"/students/{y}/courses", {"course_id": open_course}, 201)
    call("DELETE", f"/courses/{z}")  # y's enrollment: course_deleted
    call("DELETE", f"/students/{y}")  # y's other enrollment: student_deleted
    dates = {"starts_on": "2028-01-10", "ends_on": "2028-05-05"}
    term = call("POST", "/terms", {"code": "T", "title": "T", **dates}, 201)["id"]
    call("PATCH", f"/terms/{term}", {"title": "Tee"}, 200)
    # A seat of a course of the term goes to the second in its queue: the
    # first has a hold (waitlist.passed_over).
    seated, held, promoted = (
        call("POST", "/students", {"name": n, "email": f"{n}@example.org"}, 201)["id"]
        for n in ("p", "q", "r")
    )
    limits = {"capacity": 1, "waitlist_capacity": 2, "term_id": term}
    ruled = call("POST", "/courses", {"code": "R", "title": "R", **limits}, 201)["id"]
    wait = {"course_id": ruled, "waitlist": True}
    call("POST", f"/students/{seated}/courses", wait, 201)
    call("POST", f"/students/{held}/courses", wait, 202)
    call("POST", f"/students/{promoted}/courses", wait, 202)
    call("POST", f"/students/{held}/holds", {"reason": "Fees"}, 201)
    call("DELETE", f"/students/{seated}/courses/{ruled}")  # promoted; held passed over
    call("DELETE", f"/courses/{ruled}")
    for student in (seated, held, promoted):
        call("DELETE", f"/students/{student}")
    call("DELETE", f"/terms/{term}")
    recorded = {e["type"] for e in call("GET", "/events?limit=1000", status=200)["items"]}
    assert recorded == set(SECURED.raw_schema["components"]["schemas"]["EventType"]["enum"])


def _is_id(value: Any) -> bool:
    return type(value) is int and 1 <= value <= 2**63 - 1


# The parameters a cursor is bound to, besides the path (limit and wait are not).
_FILTERS = {"email", "q", "code", "student_id", "course_id", "type", "term_id"}


def _issued_cursor(case: schemathesis.Case) -> str | None:
    """The cursor the seeding got from this operation's own list, if it got one."""
    return SEED.cursors.get(case.operation.path)


def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case):
    """Point about half of the fuzzed ids at seeded rows, some cursors at a real one, If-Match at `*`.

    Only values that are already valid are swapped for other valid values, so a
    negative case stays negative and a positive one positive. Without this, random
    64-bit ids would almost never name an existing student or course (in a path,
    a body, or the feed's student_id and course_id filters).
    """
    if case.meta is None:
        return st.just(case)
    draws = _if_match_draws(case) | _client_draws(case)
    if case.meta.phase.name == TestPhase.FUZZING:
        draws |= _id_draws(case)
    if not draws:
        return st.just(case)

    def apply(values: dict[str, Any]) -> schemathesis.Case:
        for key, value in values.items():
            where, name = key.split(":")
            if where == "path":
                case.path_parameters[name] = value
            elif where == "body":
                case.body[name] = value
            elif where == "header":
                case.headers[name] = value
            elif where == "client":
                if value:
                    case.body.update(client_id=TOKEN.name, client_secret=TOKEN.secret)
            else:
                case.query[name] = value
        return case

    return st.fixed_dictionaries(draws).map(apply)


def _if_match_draws(case: schemathesis.Case) -> dict[str, st.SearchStrategy]:
    """A generated If-Match (the document's example too) names no version of the row: 412.

    In every phase, two in three become `*`, so the PATCH and DELETE behind the
    precondition are explored as well. Only in positive cases: schemathesis
    classifies a case again when its headers change, and would take a negative
    one (an empty Authorization) for a positive one.
    """
    if case.meta.generation.mode.is_positive and "If-Match" in (case.headers or {}):
        return {"header:If-Match": st.sampled_from([case.headers["If-Match"], "*", "*"])}
    return {}


def _client_draws(case: schemathesis.Case) -> dict[str, st.SearchStrategy]:
    """The token endpoint's client id and secret: in two cases of three, the instance's token.

    Made-up credentials (or none) are 401; with the real ones a positive case
    gets its access token, so the 200 is checked against the document too.
    In every phase, positive cases only: valid strings in place of valid or
    optional ones.
    """
    if (
        case.operation.path != "/oauth/token"
        or not isinstance(case.body, dict)
        or not case.meta.generation.mode.is_positive
    ):
        return {}
    return {"client:credentials": st.sampled_from([False, True, True])}


# The OneRoster record type a path's sourcedId names, by its collection.
_SOURCED_KIND = {"users": "users", "students": "users", "classes": "classes"}
_SOURCED_KIND |= {"courses": "classes", "terms": "academicSessions"}
_SOURCED_KIND |= {"academicSessions": "academicSessions", "enrollments": "enrollments"}
_SOURCED_KIND |= {"orgs": "orgs", "schools": "orgs"}


def _id_draws(case: schemathesis.Case) -> dict[str, st.SearchStrategy]:
    draws: dict[str, st.SearchStrategy] = {}
    sourced = (case.path_parameters or {}).get("sourcedId")
    if isinstance(sourced, str) and case.operation.path.startswith(ONEROSTER):
        collection = case.operation.path.removeprefix(ONEROSTER + "/").split("/")[0]
        pool = SEED.sourced_ids.get(_SOURCED_KIND[collection], [])
        draws["path:sourcedId"] = st.sampled_from([sourced, *pool])
    for name, value in (case.path_parameters or {}).items():
        if _is_id(value):
            pool = {"student_id": SEED.student_ids, "term_id": SEED.term_ids}.get(
                name, SEED.course_ids
            )
            draws[f"path:{name}"] = st.sampled_from([value, *pool])
    body = case.body if isinstance(case.body, dict) else {}
    if _is_id(body.get("course_id")):
        draws["body:course_id"] = st.sampled_from([body["course_id"], *SEED.course_ids])
    query = case.query or {}
    if isinstance(query.get("cursor"), str) and _issued_cursor(case):
        draws["query:cursor"] = st.sampled_from([query["cursor"], _issued_cursor(case)])
    for name in ("student_id", "course_id"):
        if _is_id(query.get(name)):
            pool = SEED.student_ids if name == "student_id" else SEED.course_ids
            draws[f"query:{name}"] = st.sampled_from([query[name], *pool])
    return draws


for _schema in (SECURED, OPEN):
    _schema.hook(flatmap_case)


def rejected_by_contract(case: schemathesis.Case) -> set[str]:
    """Fields of a schema-valid request that the contract still answers with 422.

    - An integral float such as 7.0 for an integer field: JSON Schema counts it
      as an integer, the contract (and the document's descriptions) say it is not.
      The same in the query: `limit`, the feed's `wait`, `student_id`, `course_id`,
      `term_id`.
    - `credits` with more than one decimal (JSON Schema's multipleOf would judge
      0.3 by its binary float, not by the digits sent), and a meeting whose `ends`
      is not later than its `starts`: the document says so in words only.
    - A cursor the server never issued for this list without filters (the one
      the seeding got): the document can only say "string", the contract says
      a malformed cursor, or one issued for another list or other filters, is 422.
    - A timestamp the pattern lets through but the calendar does not (February
      30, hour 24, a moment outside years 1..9999 in UTC), and a credit limit
      with more than one decimal (`multipleOf: 0.1` cannot be said exactly of
      binary floats): judged by the server's own field checks.
    - A term's dates out of order, both sent (`ends_on` before `starts_on`,
      `registration_closes_at` not after `registration_opens_at`).
    - A sourced_id (in the body or the query) with a format character: the
      pattern cannot name Unicode's category Cf.
    """
    fields = set()
    if case.operation.path.startswith(ONEROSTER):
        return fields  # the binding's 400s: oneroster_refuses()
    body = case.body if isinstance(case.body, dict) else {}
    for name in ("course_id", "capacity", "waitlist_capacity", "term_id"):
        if isinstance(body.get(name), float):
            fields.add(name)
    for name, check in CHECKED_IN_FULL.get(case.operation.path, {}).items():
        if name in body:
            try:
                check(body[name])
            except Bad:
                fields.add(name)
    credits = body.get("credits")
    if type(credits) in (int, float) and Decimal(repr(credits)).as_tuple().exponent < -1:
        fields.add("credits")
    fields |= _meetings_ending_too_early(body.get("meetings"))
    if case.operation.path in ("/terms", "/terms/{term_id}"):
        fields |= _terms_out_of_order(body)
    query = case.query or {}
    for name in ("limit", "wait", "student_id", "course_id", "term_id"):
        if isinstance(query.get(name), float):
            fields.add(name)
    try:
        if "sourced_id" in query:
            sourced_id(query["sourced_id"])
    except Bad:
        fields.add("sourced_id")
    if "cursor" in query and (query["cursor"] != _issued_cursor(case) or _FILTERS & set(query)):
        fields.add("cursor")
    return fields


# The body fields whose rules the document cannot state in full, by path, with
# the server's check of each.
CHECKED_IN_FULL: dict[str, dict[str, Callable[[Any], Any]]] = {
    "/students/{student_id}/completions": {"completed_at": completions.CREATE["completed_at"]},
    "/students/{student_id}/terms/{term_id}": {
        name: student_terms.SETTINGS[name] for name in ("registration_opens_at", "max_credits")
    },
}
_TERM_CHECKED = ("registration_opens_at", "registration_closes_at", "drop_deadline", "max_credits")
for _path in ("/terms", "/terms/{term_id}"):
    CHECKED_IN_FULL[_path] = {name: terms.FIELDS[name] for name in _TERM_CHECKED}
# A sourced_id with a format character (Unicode category Cf, such as
# U+200B): a JSON Schema pattern cannot name the category.
for _path in ("/students", "/courses", "/terms", "/students/{student_id}/courses"):
    CHECKED_IN_FULL.setdefault(_path, {})["sourced_id"] = sourced_id
# A term's ordered pairs: (first, second, whether they are in order).
_TERM_ORDERS = (
    ("starts_on", "ends_on", operator.le),
    ("registration_opens_at", "registration_closes_at", operator.lt),
)


def _terms_out_of_order(body: dict[str, Any]) -> set[str]:
    """The second field of each pair sent in full, both valid, out of order."""
    named = set()
    for first, second, in_order in _TERM_ORDERS:
        try:
            a, b = terms.FIELDS[first](body[first]), terms.FIELDS[second](body[second])
        except (KeyError, Bad):
            continue
        if a is not None and b is not None and not in_order(a, b):
            named.add(second)
    return named


def term_order_may_be_refused(case: schemathesis.Case) -> bool:
    """A PATCH of a term sending one date of a pair: in order with the stored other, or not.

    The server checks the pair on the term as changed (422 naming the field
    sent); the document cannot know the stored term.
    """
    body = case.body if isinstance(case.body, dict) else {}
    if case.operation.path != "/terms/{term_id}" or case.method.upper() != "PATCH":
        return False
    return any(
        (body.get(first) is None) != (body.get(second) is None) for first, second, _ in _TERM_ORDERS
    )


def _meetings_ending_too_early(meetings: Any) -> set[str]:
    """`meetings[i].ends` of each schema-valid meeting whose `ends` is not after its `starts`."""
    if not isinstance(meetings, list):
        return set()
    named = set()
    for i, meeting in enumerate(meetings):
        times = [meeting.get(k) if isinstance(meeting, dict) else None for k in ("starts", "ends")]
        if all(isinstance(v, str) and re.fullmatch(r"[0-9]{1,2}:[0-9]{2}", v) for v in times):
            starts, ends = (v.zfill(5) for v in times)
            if starts >= ends:
                named.add(f"meetings[{i}].ends")
    return named


# The OneRoster provider's record type of each collection, by the path's last word.
_ONEROSTER_RECORDS = {
    "users": oneroster_records.USER,
    "students": oneroster_records.USER,
    "terms": oneroster_records.ACADEMIC_SESSION,
    "academicSessions": oneroster_records.ACADEMIC_SESSION,
    "classes": oneroster_records.CLASS,
    "courses": oneroster_records.COURSE,
    "enrollments": oneroster_records.ENROLLMENT,
    "orgs": oneroster_records.ORG,
    "schools": oneroster_records.ORG,
}


def oneroster_refuses(case: schemathesis.Case) -> bool:
    """A schema-valid request the OneRoster provider refuses, 400 in the binding's form.

    - A filter the document's pattern lets through and the grammar does not:
      AND and OR mixed, more than 20 predicates, a date or timestamp that is
      not one (judged by the server's own parser, service/oneroster/filters.py).
    - An integral float such as 7.0 for `limit` or `offset` (JSON Schema
      counts it as an integer, the binding does not).
    """
    if not case.operation.path.startswith(ONEROSTER):
        return False
    query = case.query or {}
    if any(isinstance(query.get(name), float) for name in ("limit", "offset")):
        return True
    text = query.get("filter")
    if isinstance(text, str):
        record = _ONEROSTER_RECORDS[case.operation.path.rsplit("/", 1)[-1]]
        try:
            oneroster_filters.parse(text, record.scalars)
        except Problem:
            return True
    return False


def term_may_be_unknown(case: schemathesis.Case) -> bool:
    """A course's `term_id` names a term (the seeding makes two) or none: 422 naming it.

    Whether a term exists is the database's to say (the document can only say
    "an id"); a taken code (409) or a missing course (404) may come first.
    """
    body = case.body if isinstance(case.body, dict) else {}
    return case.operation.path in ("/courses", "/courses/{course_id}") and _is_id(
        body.get("term_id")
    )


def q_may_be_refused(case: schemathesis.Case) -> bool:
    """A `?q=` the trigram index may not be able to narrow: refused or searched.

    The server refuses (422 naming q) a text with no letter or digit after its
    first character, as the database's locale counts them (pg_trgm's own
    splitting); the document can only give its length. An ASCII letter or digit
    counts in every locale, so only a text without one after its first
    character may go either way.
    """
    q = (case.query or {}).get("q")
    if not isinstance(q, str):
        return False
    return not any(c.isascii() and c.isalnum() for c in q.strip()[1:])


def short_wait(case: schemathesis.Case) -> None:
    """Make a valid `wait` of GET /events 0 or 1 second: even values 0, odd ones 1.

    A case whose page is empty (a filter that matches nothing, say) waits out its
    `wait`; at up to 30 seconds a case, the run would take hours. An invalid value
    (negative, above 30, a fraction, not a number) is left as it is, so a negative
    case stays negative, and a valid one stays valid.
    """
    query = case.query or {}
    value = query.get("wait")
    if type(value) is int and 0 <= value <= 30:
        query["wait"] = value % 2
    elif isinstance(value, str) and value.isascii() and value.isdigit() and int(value) <= 30:
        query["wait"] = str(int(value) % 2)


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        # One app and one seeded database per operation, shared by its examples.
        HealthCheck.function_scoped_fixture,
    ],
)


def fresh_key(case: schemathesis.Case, base_url: str, positive: bool) -> None:
    """Give a schema-valid request a key no earlier case sent to this instance.

    Generated keys repeat (the shortest strings come up again and again),
    mostly with other bodies, which the contract answers 422
    `idempotency-key-reused`: left so, most schema-valid requests would test
    nothing but that. A repeated key of a positive case becomes the same key
    with a counter after it, still valid; negative cases keep theirs (a
    reused key is 422, which they expect anyway). Replays and reuse are
    checked exactly in tests/test_idempotency.py.
    """
    value = (case.headers or {}).get("Idempotency-Key")
    if not isinstance(value, str):
        return
    try:
        key = parse_key([value])
    except Problem:
        return  # malformed: 400, nothing is stored
    sent = KEYS_SENT.setdefault(base_url, set())
    if positive and key in sent:
        n = len(sent)
        while key in sent:
            n += 1
            key = f"{key[:240]}~{n}"
        case.headers["Idempotency-Key"] = key
    sent.add(key)


def call_and_check(case: schemathesis.Case, base_url: str, instance: str) -> None:
    short_wait(case)
    mode = case.meta.generation.mode if case.meta else None
    contract_rejects = rejected_by_contract(case) if mode and mode.is_positive else set()
    fresh_key(case, base_url, bool(mode and mode.is_positive))
    if mode and mode.is_positive and oneroster_refuses(case):
        response = case.call_and_validate(
            base_url=base_url, excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code == 400, response.text
    elif contract_rejects:
        response = case.call_and_validate(
            base_url=base_url, excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code == 422, response.text
        assert {e["field"] for e in response.json()["errors"]} == contract_rejects
    elif mode and mode.is_positive and term_order_may_be_refused(case):
        response = case.call_and_validate(
            base_url=base_url, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code == 422:
            named = {e["field"] for e in response.json()["errors"]}
            assert named <= {name for pair in _TERM_ORDERS for name in pair[:2]}, response.text
    elif mode and mode.is_positive and q_may_be_refused(case):
        response = case.call_and_validate(
            base_url=base_url, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code == 422:
            assert [e["field"] for e in response.json()["errors"]] == ["q"], response.text
    elif mode and mode.is_positive and term_may_be_unknown(case):
        response = case.call_and_validate(
            base_url=base_url, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code == 422:
            assert [e["field"] for e in response.json()["errors"]] == ["term_id"], response.text
    else:
        response = case.call_and_validate(base_url=base_url)
    CASES[(instance, case.operation.label, str(mode), response.status_code)] += 1


@SECURED.parametrize()
@SETTINGS
def test_an_instance_with_tokens_honours_its_document(case: schemathesis.Case, secured_url: str):
    call_and_check(case, secured_url, "with tokens")


@OPEN.parametrize()
@SETTINGS
def test_an_instance_without_tokens_honours_its_document(case: schemathesis.Case, open_url: str):
    call_and_check(case, open_url, "without tokens")


# Strings the fuzzer rarely hits: the document's input patterns must accept exactly what
# the server accepts, or negative_data_rejection / positive_data_acceptance would be wrong
# about them. Checked with Python's regex engine, which is the one the fuzzer generates with.
STRINGS = [
    # tab, CR and LF around a value are trimmed
    pytest.param("name", "\tAda Lovelace\r\n", True, id="name-surrounded-by-tab-cr-lf"),
    # the length counts after trimming
    pytest.param("name", " " * 5 + "a" * 200, True, id="name-200-after-trimming"),
    # one character too many
    pytest.param("name", "a" * 201, False, id="name-201"),
    # white space only, U+00A0 included
    pytest.param("name", " \xa0 ", False, id="name-white-space-only"),
    # a tab inside the value is a control character
    pytest.param("name", "Ada\tLovelace", False, id="name-tab-inside"),
    # vertical tab: refused even at the end
    pytest.param("name", "Ada\x0b", False, id="name-vertical-tab-at-end"),
    # titles are trimmed the same way
    pytest.param("title", "\nAnalytical Engines ", True, id="title-surrounded-by-lf-space"),
    # NUL, which PostgreSQL cannot store
    pytest.param("title", "Analytical\x00Engines", False, id="title-nul-inside"),
    # emails are trimmed too
    pytest.param("email", " ada@example.org\n", True, id="email-surrounded-by-space-lf"),
    # white space inside
    pytest.param("email", "ada @example.org", False, id="email-space-inside"),
    # two @
    pytest.param("email", "ada@example@org", False, id="email-two-at-signs"),
    # the length counts after trimming (found by `make fuzz`, seed 7)
    pytest.param("email", f" {'a' * 242}@example.org ", True, id="email-254-after-trimming"),
    # one character too many
    pytest.param("email", f"{'a' * 243}@example.org", False, id="email-255"),
    # codes are trimmed too
    pytest.param("code", "\tCS101 ", True, id="code-surrounded-by-tab-space"),
    # white space inside
    pytest.param("code", "CS 101", False, id="code-space-inside"),
    # 33 characters
    pytest.param("code", "C" * 33, False, id="code-33"),
]


def document_accepts(field: str, value: str) -> bool:
    """Whether `value` passes the document's input schema for `field`, e.g. NameInput."""
    spec = openapi_document(with_tokens=True)["components"]["schemas"][f"{field.capitalize()}Input"]
    return all(
        part.get("minLength", 0) <= len(value) <= part.get("maxLength", len(value))
        and re.search(part.get("pattern", ""), value) is not None
        for part in [spec, *spec.get("allOf", [])]
    )


@pytest.mark.parametrize(("field", "value", "accepted"), STRINGS)
async def test_the_document_accepts_the_strings_the_server_accepts(
    client, db, field, value, accepted
):
    if field in ("name", "email"):
        body = {"name": "Ada Lovelace", "email": "ada@example.org", field: value}
        response = await client.post("/students", json=body)
        stored = "select name, email from students where id = $1"
    else:
        body = {"code": "CS101", "title": "Analytical Engines", field: value}
        response = await client.post("/courses", json=body)
        stored = "select code, title from courses where id = $1"

    assert response.status == (201 if accepted else 422), await response.text()
    assert document_accepts(field, value) is accepted
    if accepted:
        created = await response.json()
        assert created[field] == value.strip()
        row = await db.fetchrow(stored, created["id"])
        assert row[field] == value.strip()


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not CASES:
        return
    total = sum(CASES.values())
    by_operation: dict[str, Counter[str]] = {}
    for (instance, operation, mode, status), n in sorted(CASES.items()):
        by_operation.setdefault(f"{operation} ({instance})", Counter())[f"{mode} {status}"] += n
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {"generated_cases": total, "max_examples": MAX_EXAMPLES, "operations": by_operation},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    line = (
        f"{total} generated cases over {len(by_operation)} operations "
        f"({MAX_EXAMPLES} fuzzed per operation, seed {SEED_VALUE}); details in {REPORT}"
    )
    request.config.pluginmanager.register(_Summary(line), "contract-summary")


@dataclasses.dataclass
class _Summary:
    """Prints the case count after the run, without needing -s."""

    line: str

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_sep("-", "schemathesis contract test")
        terminalreporter.write_line(self.line)
