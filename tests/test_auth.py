"""Bearer tokens: who may call what, and that a secret never reaches the logs."""

from __future__ import annotations

import json
import re
import signal
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from service import tokens
from service.app import create_app
from service.config import Config, ConfigError, Token
from service.keys import TOKENS
from service.oneroster import PREFIX as ONEROSTER

from . import registration
from .api import create_course, create_student, enroll, problem
from .cli import clean_env, one_line, run_cli
from .test_shutdown import serving

REGISTRAR = Token("registrar", "write", "3f9c0b6a1d2e4f5a8b7c6d5e4f3a2b1c")
DASHBOARD = Token("dashboard", "read", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d")
# Same length as the real secrets, one character off each.
WRONG_LIKE_REGISTRAR = REGISTRAR.secret[:-1] + "d"
WRONG_LIKE_DASHBOARD = "0" + DASHBOARD.secret[1:]

# /docs and its files: the interactive reference of /openapi.json.
PUBLIC_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/{asset}"}
# Public too, but its client authenticates with its own id and secret, not a
# bearer token: tests/test_oauth.py.
TOKEN_ENDPOINT = "/oauth/token"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
TERM_DATES = {"starts_on": "2027-01-11", "ends_on": "2027-05-07"}
# A body each write route would accept, so that a refusal is the token's doing.
BODIES = {
    ("POST", "/students"): {"name": "Ada Lovelace", "email": "ada@example.org"},
    ("PATCH", "/students/{student_id}"): {"name": "Changed"},
    ("POST", "/students/{student_id}/courses"): {"course_id": 1},
    ("POST", "/courses"): {"code": "CS101", "title": "Programming"},
    ("PATCH", "/courses/{course_id}"): {"title": "Changed"},
    # Once the student and the course above exist, these change nothing (200).
    ("POST", "/enrollments/batch"): {
        "items": [{"student_email": "ada@example.org", "course_code": "CS101"}]
    },
    ("POST", "/students/batch"): {"items": [{"name": "Ada Lovelace", "email": "ada@example.org"}]},
    ("POST", "/courses/batch"): {"items": [{"code": "CS101", "title": "Programming"}]},
    ("POST", "/students/{student_id}/holds"): {"reason": "Unpaid fees"},
    ("POST", "/students/{student_id}/completions"): {"code": "MATH101"},
    ("PUT", "/students/{student_id}/terms/{term_id}"): {"max_credits": 12},
    ("POST", "/terms"): {"code": "2027-SPRING", "title": "Spring", **TERM_DATES},
    ("PATCH", "/terms/{term_id}"): {"title": "Changed"},
    # Once the term above exists, this changes nothing (200).
    ("POST", "/terms/batch"): {"items": [{"code": "2027-SPRING", "title": "Spring", **TERM_DATES}]},
}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def all_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, template) of every route the running app registered, the token endpoint aside."""
    found = [
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.method != "*"  # not the catch-all
        and route.resource.canonical != TOKEN_ENDPOINT
    ]
    return sorted(set(found))


def routes(client: TestClient) -> list[tuple[str, str]]:
    """all_routes() but the OneRoster provider's, which answer in the binding's form
    (test_every_oneroster_route_refuses_without_a_token_and_reads_with_one)."""
    return [(m, t) for m, t in all_routes(client) if not t.startswith(ONEROSTER)]


def roster_routes(client: TestClient) -> list[tuple[str, str]]:
    return [(m, t) for m, t in all_routes(client) if t.startswith(ONEROSTER)]


def fill(
    template: str,
    student_id: int = 1,
    course_id: int = 1,
    hold_id: int = 1,
    completion_id: int = 1,
    term_id: int = 1,
) -> str:
    path = template.replace("{student_id}", str(student_id))
    path = path.replace("{course_id}", str(course_id))
    path = path.replace("{hold_id}", str(hold_id))
    path = path.replace("{completion_id}", str(completion_id))
    path = path.replace("{term_id}", str(term_id))
    path = path.replace("{asset}", "init.js")
    assert not re.search(r"[{}]", path), f"unfilled parameter in {template}"
    return path


async def call(
    client: TestClient, method: str, template: str, headers: dict[str, str], **ids: int
) -> aiohttp.ClientResponse:
    body = BODIES.get((method, template))
    # A student cannot wait for a course they are enrolled in: the waitlist
    # routes name the full course the student waits for.
    waiting_for = ids.pop("waiting_for", None)
    if "/waitlist/" in template and waiting_for is not None:
        ids["course_id"] = waiting_for
    if template == "/students/{student_id}/courses" and "course_id" in ids:
        body = {"course_id": ids["course_id"]}
    return await client.request(method, fill(template, **ids), json=body, headers=headers)


async def created(client: TestClient, path: str, body: dict, headers: dict[str, str]) -> dict:
    response = await client.post(path, json=body, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def setup_records(client: TestClient, db) -> tuple[dict, dict, dict, dict, dict]:
    """A student enrolled in one course and waiting for a full one, and a fourth course.

    Made with the write token; returns the student, the course, the other
    course, the full one, and the ids of the student's hold, completion and
    a term (see rules_of).
    """
    write = bearer(REGISTRAR.secret)
    student = await created(client, "/students", {"name": "Ada", "email": "a@x.org"}, write)
    course = await created(client, "/courses", {"code": "C1", "title": "One"}, write)
    other = await created(client, "/courses", {"code": "C2", "title": "Two"}, write)
    path = f"/students/{student['id']}/courses"
    await created(client, path, {"course_id": course["id"]}, write)
    full = await fill_up(client, write)
    response = await client.post(
        path, json={"course_id": full["id"], "waitlist": True}, headers=write
    )
    assert response.status == 202, await response.text()
    return student, course, other, full, await rules_of(client, db, student, write)


async def rules_of(client: TestClient, db, student: dict, headers: dict[str, str]) -> dict:
    """A hold and a completion of the student, and a term: the ids their routes name.

    The term is written with SQL (tests/registration.py): its own routes are not the point here.
    """
    path = f"/students/{student['id']}"
    hold = await created(client, f"{path}/holds", {"reason": "Fees"}, headers)
    completion = await created(client, f"{path}/completions", {"code": "C0"}, headers)
    term_id = await registration.term(db)
    return {"hold_id": hold["id"], "completion_id": completion["id"], "term_id": term_id}


async def fill_up(client: TestClient, headers: dict[str, str]) -> dict:
    """A course with one seat, taken, and room for one to wait."""
    body = {"code": "FULL", "title": "Full", "capacity": 1, "waitlist_capacity": 1}
    full = await created(client, "/courses", body, headers)
    seated = await created(client, "/students", {"name": "Bo", "email": "b@x.org"}, headers)
    path = f"/students/{seated['id']}/courses"
    await created(client, path, {"course_id": full["id"]}, headers)
    return full


# Every table a request may write, each read whole in a stable order.
TABLES = [
    "select * from students order by id",
    "select * from courses order by id",
    "select * from student_courses order by student_id, course_id",
    "select * from course_waitlist order by seq",
    "select * from student_holds order by id",
    "select * from student_completions order by id",
    "select * from student_terms order by student_id, term_id",
    "select * from terms order by id",
]
EMPTY: list[list] = [[] for _ in TABLES]


async def snapshot(db) -> list:
    """Every row of every table, to show that a refused request changed nothing."""
    return [[tuple(r) for r in await db.fetch(statement)] for statement in TABLES]


@pytest.fixture
def secured_config(config: Config) -> Config:
    return replace(config, tokens=(REGISTRAR, DASHBOARD))


@pytest.fixture
async def secured(secured_config: Config, aiohttp_client) -> TestClient:
    """The real app with a write and a read token configured."""
    return await aiohttp_client(create_app(secured_config))


# -- 401: no usable token -----------------------------------------------------------------


# (headers, the error code the challenge must carry)
UNAUTHORIZED = [
    ({}, None),  # no Authorization header at all
    ({"Authorization": "Basic cmVnaXN0cmFyOnNlY3JldA=="}, None),  # another scheme
    ({"Authorization": f"Token {REGISTRAR.secret}"}, None),  # right secret, wrong scheme
    ({"Authorization": "Bearer"}, None),  # the scheme alone
    ({"Authorization": "Bearer    "}, None),  # bearer with only blanks
    (bearer("not-a-configured-token-at-all"), "invalid_token"),  # unknown secret
    (bearer(WRONG_LIKE_REGISTRAR), "invalid_token"),  # same length, last char off
    (bearer(REGISTRAR.secret[:-1]), "invalid_token"),  # a prefix of a real secret
    (bearer(REGISTRAR.secret + "0"), "invalid_token"),  # a real secret plus one char
    (bearer(REGISTRAR.secret.upper()), "invalid_token"),  # secrets are case-sensitive
]


async def test_every_protected_route_refuses_a_request_without_a_valid_token(secured, db):
    protected = [(m, t) for m, t in routes(secured) if t not in PUBLIC_PATHS]
    # 39 resource operations (the feed and the 4 batches among them) and /metrics,
    # and HEAD beside each of their 19 GETs: nothing is left out of the check.
    assert len(protected) == 59, protected

    for headers, error in UNAUTHORIZED:
        for method, template in protected:
            response = await call(secured, method, template, headers)
            where = f"{method} {template} with {headers}"
            assert response.status == 401, where
            if method != "HEAD":  # a HEAD answer has the headers only
                body = await problem(response)
                assert body["type"] == "/problems/unauthorized", where
            challenge = response.headers.get("WWW-Authenticate", "")
            assert challenge.startswith("Bearer"), where
            if error is None:
                assert "error=" not in challenge, where
            else:
                assert f'error="{error}"' in challenge, where
            assert "X-Request-ID" in response.headers, where

    assert await snapshot(db) == EMPTY


async def test_public_paths_answer_without_a_token(secured):
    for path in sorted(fill(path) for path in PUBLIC_PATHS):
        response = await secured.get(path)
        assert response.status == 200, (path, await response.text())
        assert "WWW-Authenticate" not in response.headers
        # A probe configured with a stale token must not start failing.
        response = await secured.get(path, headers=bearer(WRONG_LIKE_REGISTRAR))
        assert response.status == 200, path


async def test_every_oneroster_route_refuses_without_a_token_and_reads_with_one(secured, db):
    roster = roster_routes(secured)
    # 22 collections and records of the rostering service, and HEAD beside each GET.
    assert len(roster) == 44, roster
    for method, template in roster:
        # An unknown sourcedId: with a token, the handler's own 404.
        path = template.replace("{sourcedId}", "no-such-record")
        for headers, _ in UNAUTHORIZED:
            response = await secured.request(method, path, headers=headers)
            where = f"{method} {template} with {headers}"
            assert response.status == 401, where
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
            if method != "HEAD":
                body = await response.json()
                assert body["imsx_codeMajor"] == "failure", where
        for token in (DASHBOARD, REGISTRAR):
            response = await secured.request(method, path, headers=bearer(token.secret))
            expected = 404 if "{sourcedId}" in template else 200
            assert response.status == expected, (method, template, token.name)

    assert await snapshot(db) == EMPTY


# -- scopes ------------------------------------------------------------------------------


async def test_read_token_may_read_everything(secured, db):
    student, course, _, full, rules = await setup_records(secured, db)
    ids = {"student_id": student["id"], "course_id": course["id"], "waiting_for": full["id"]}
    ids |= rules

    reads = [(m, t) for m, t in routes(secured) if m == "GET"]
    # 19 behind a token, 5 public (/docs and its files among them).
    assert len(reads) == 24, reads
    for method, template in reads:
        response = await call(secured, method, template, bearer(DASHBOARD.secret), **ids)
        assert response.status == 200, (template, await response.text())

    # A read token reaches the handler: a missing resource is its 404, not 401/403.
    missing = await secured.get("/students/987654", headers=bearer(DASHBOARD.secret))
    assert (await problem(missing))["type"] == "/problems/not-found"


async def test_read_token_may_not_write_and_nothing_is_written(secured, db):
    student, course, other, full, rules = await setup_records(secured, db)
    before = await snapshot(db)

    writes = [(m, t) for m, t in routes(secured) if m in WRITE_METHODS]
    assert len(writes) == 21, writes
    for method, template in writes:
        # Enrolling targets the other course, so an accepted request would add a row.
        course_id = other["id"] if method == "POST" else course["id"]
        response = await call(
            secured,
            method,
            template,
            bearer(DASHBOARD.secret),
            student_id=student["id"],
            course_id=course_id,
            waiting_for=full["id"],
            **rules,
        )
        where = f"{method} {template}"
        assert response.status == 403, where
        body = await problem(response)
        assert body["type"] == "/problems/insufficient-scope", where
        assert "dashboard" in body["detail"], where  # names the token, not its secret
        assert DASHBOARD.secret not in await response.text()

    assert await snapshot(db) == before


async def test_write_token_may_do_everything(secured, db):
    write = bearer(REGISTRAR.secret)
    done: set[tuple[str, str]] = set()

    async def ok(method: str, template: str, status: int, **ids: int) -> dict | None:
        response = await call(secured, method, template, write, **ids)
        assert response.status == status, (method, template, await response.text())
        done.add((method, template))
        return await response.json() if response.content_type == "application/json" else None

    student = await ok("POST", "/students", 201)
    course = await ok("POST", "/courses", 201)
    ids = {"student_id": student["id"], "course_id": course["id"]}
    await ok("POST", "/students/{student_id}/courses", 201, **ids)
    full = await fill_up(secured, write)
    waiting = await secured.post(
        f"/students/{student['id']}/courses",
        json={"course_id": full["id"], "waitlist": True},
        headers=write,
    )
    assert waiting.status == 202
    hold = await ok("POST", "/students/{student_id}/holds", 201, **ids)
    completion = await ok("POST", "/students/{student_id}/completions", 201, **ids)
    ids |= {"hold_id": hold["id"], "completion_id": completion["id"]}
    ids["term_id"] = await registration.term(db)
    await ok("PUT", "/students/{student_id}/terms/{term_id}", 200, **ids)
    for method, template in routes(secured):
        if method in ("GET", "HEAD"):
            await ok(method, template, 200, **ids, waiting_for=full["id"])
    await ok("PATCH", "/students/{student_id}", 200, **ids)
    await ok("PATCH", "/courses/{course_id}", 200, **ids)
    await ok("PATCH", "/terms/{term_id}", 200, **ids)
    spring = await ok("POST", "/terms", 201)
    for template in ("/enrollments/batch", "/students/batch", "/courses/batch", "/terms/batch"):
        await ok("POST", template, 200)
    await ok(
        "DELETE", "/students/{student_id}/waitlist/{course_id}", 204, **ids, waiting_for=full["id"]
    )
    await ok("DELETE", "/students/{student_id}/courses/{course_id}", 204, **ids)
    await ok("DELETE", "/students/{student_id}/holds/{hold_id}", 204, **ids)
    await ok("DELETE", "/students/{student_id}/completions/{completion_id}", 204, **ids)
    await ok("DELETE", "/students/{student_id}", 204, **ids)
    await ok("DELETE", "/courses/{course_id}", 204, **ids)
    # What fill_up made, through the API too.
    seated = await (await secured.get(f"/courses/{full['id']}/students", headers=write)).json()
    await ok("DELETE", "/students/{student_id}", 204, student_id=seated["items"][0]["id"])
    await ok("DELETE", "/courses/{course_id}", 204, course_id=full["id"])
    await ok("DELETE", "/terms/{term_id}", 204, **ids)
    await ok("DELETE", "/terms/{term_id}", 204, term_id=spring["id"])

    assert done == set(routes(secured))  # every route, with its expected success
    assert await snapshot(db) == EMPTY


# -- without tokens ----------------------------------------------------------------------


async def test_without_tokens_the_service_is_open(client, db):
    assert client.app[TOKENS].entries == ()
    student = await create_student(client)
    course = await create_course(client)
    assert (await enroll(client, student["id"], course["id"])).status == 201
    full = await fill_up(client, {})
    waiting = await client.post(
        f"/students/{student['id']}/courses", json={"course_id": full["id"], "waitlist": True}
    )
    assert waiting.status == 202
    ids = {"student_id": student["id"], "course_id": course["id"], "waiting_for": full["id"]}
    ids |= await rules_of(client, db, student, {})

    for method, template in routes(client):
        if method == "GET":
            response = await call(client, method, template, {}, **ids)
            assert response.status == 200, template
            assert "WWW-Authenticate" not in response.headers

    # A token sent to an open service is ignored, not judged.
    response = await client.get("/students", headers=bearer("whatever-this-is-0123456789"))
    assert response.status == 200
    assert await db.fetchval("select count(*) from student_courses") == 2


# -- REQUIRE_TOKENS ----------------------------------------------------------------------


def test_require_tokens_without_tokens_is_a_config_error():
    with pytest.raises(ConfigError, match="REQUIRE_TOKENS"):
        Config.from_env({"REQUIRE_TOKENS": "true"})


def test_require_tokens_with_a_token_is_accepted():
    config = Config.from_env(
        {"REQUIRE_TOKENS": "true", "API_TOKENS": f"registrar:write:{REGISTRAR.secret}"}
    )

    assert config.require_tokens is True
    assert config.tokens == (REGISTRAR,)


async def test_cli_refuses_to_serve_when_tokens_are_required_but_missing():
    env = clean_env(REQUIRE_TOKENS="true", DATABASE_URL="postgresql://app@127.0.0.1:1/enrollment")

    code, stderr = await run_cli(env)

    assert code == 2, stderr
    assert "REQUIRE_TOKENS" in one_line(stderr)


# -- secrets stay out of the logs --------------------------------------------------------


async def test_logs_name_the_token_and_never_show_a_secret(database_url, tmp_path: Path):
    tokens = f"registrar:write:{REGISTRAR.secret},dashboard:read:{DASHBOARD.secret}"
    async with serving(database_url, tmp_path, API_TOKENS=tokens) as server:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(server.url, timeout=timeout) as session:
            statuses = []
            requests = [
                ("POST", "/students", bearer(REGISTRAR.secret), 201),
                ("GET", "/students", bearer(DASHBOARD.secret), 200),
                ("POST", "/courses", bearer(DASHBOARD.secret), 403),
                ("GET", "/students", bearer(WRONG_LIKE_REGISTRAR), 401),
                ("GET", "/courses", bearer(WRONG_LIKE_DASHBOARD), 401),
                ("GET", "/metrics", {"Authorization": f"Basic {REGISTRAR.secret}"}, 401),
                ("GET", "/students", bearer(REGISTRAR.secret), 200),
            ]
            for method, path, headers, _ in requests:
                body = BODIES.get((method, path))
                async with session.request(method, path, json=body, headers=headers) as r:
                    statuses.append(r.status)
                    await r.read()
            assert statuses == [expected for *_, expected in requests]
        server.process.send_signal(signal.SIGTERM)
        assert await server.exited(within=10) == 0
        log = server.log()

    for secret in (REGISTRAR.secret, DASHBOARD.secret, WRONG_LIKE_REGISTRAR, WRONG_LIKE_DASHBOARD):
        assert secret not in log
    access = [json.loads(line) for line in log.splitlines() if '"logger":"service.access"' in line]
    by_token = [(e["method"], e["path"], e["status"], e["token"]) for e in access]
    assert ("POST", "/students", 201, "registrar") in by_token
    assert ("GET", "/students", 200, "dashboard") in by_token
    assert ("POST", "/courses", 403, "dashboard") in by_token  # refused, still named
    assert ("GET", "/students", 401, None) in by_token  # a wrong secret names no one
    assert '"token":"registrar"' in log


# -- the OpenAPI document ----------------------------------------------------------------


async def test_openapi_declares_bearer_security_and_public_paths(secured):
    response = await secured.get("/openapi.json")
    assert response.status == 200
    document = await response.json()

    schemes = document["components"]["securitySchemes"]
    bearer_schemes = [
        name for name, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"
    ]
    assert len(bearer_schemes) == 1
    assert document["security"] == [{bearer_schemes[0]: []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            if path in PUBLIC_PATHS or path == TOKEN_ENDPOINT:
                assert operation.get("security") == [], (method, path)
            else:
                # Inherits the document-wide requirement; never opts out.
                assert operation.get("security", document["security"]) == document["security"]
                assert "401" in operation["responses"], (method, path)
                if method != "get":
                    assert "403" in operation["responses"], (method, path)


# -- comparing secrets -------------------------------------------------------------------

SHORT = Token("short", "read", "a1b2c3d4e5f60718" * 2)
LONG = Token("long", "write", SHORT.secret + "99887766")  # SHORT is a prefix of LONG
NEAR = Token("near", "read", SHORT.secret[:-1] + "9")  # shares all but the last char


@pytest.fixture
async def prefixed(config: Config, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(replace(config, tokens=(SHORT, LONG, NEAR))))


async def scope_of(client: TestClient, secret: str) -> str:
    """Which token the service took the secret for, told by its answer to a write."""
    response = await client.post("/courses", json={"code": "", "title": ""}, headers=bearer(secret))
    if response.status == 401:
        return "refused"
    if response.status == 403:
        body = await problem(response)
        return re.match(r"token (\w+) may only read", body["detail"]).group(1)
    assert response.status == 422, await response.text()  # past auth, into validation
    return "writer"


async def test_tokens_sharing_a_prefix_are_told_apart(prefixed):
    assert await scope_of(prefixed, SHORT.secret) == "short"
    assert await scope_of(prefixed, LONG.secret) == "writer"
    assert await scope_of(prefixed, NEAR.secret) == "near"
    # The same tokens again: now answered from the verified cache.
    assert await scope_of(prefixed, NEAR.secret) == "near"
    assert await scope_of(prefixed, LONG.secret) == "writer"
    assert await scope_of(prefixed, SHORT.secret) == "short"


async def test_a_near_miss_is_refused_even_after_the_right_token_was_cached(prefixed):
    assert await scope_of(prefixed, SHORT.secret) == "short"
    assert await scope_of(prefixed, LONG.secret) == "writer"

    near_misses = [
        SHORT.secret[:-1] + "0",  # same length as SHORT, last char off
        "b" + SHORT.secret[1:],  # same length as SHORT, first char off
        LONG.secret[:-1],  # between SHORT and LONG in length
        LONG.secret + "0",  # LONG plus one
        SHORT.secret[:16],  # half of SHORT
    ]
    for secret in near_misses:
        assert await scope_of(prefixed, secret) == "refused", secret
        assert await scope_of(prefixed, secret) == "refused", secret  # nor cached as success
    assert await scope_of(prefixed, SHORT.secret) == "short"


async def test_wrong_secrets_never_enter_the_cache(prefixed):
    for n in range(50):
        assert await scope_of(prefixed, f"{n:032x}") == "refused"
    assert await scope_of(prefixed, SHORT.secret) == "short"

    # Only configured secrets are remembered, so guessing cannot grow memory.
    cached = prefixed.app[TOKENS].by_header
    assert set(cached) == {bearer(SHORT.secret)["Authorization"]}


async def test_spellings_of_a_good_header_fill_the_cache_only_to_its_bound(prefixed, monkeypatch):
    monkeypatch.setattr(tokens, "MAX_VERIFIED", 5)
    for spaces in range(1, 21):
        header = {"Authorization": "Bearer" + " " * spaces + SHORT.secret}
        response = await prefixed.get("/students", headers=header)
        assert response.status == 200, spaces
    assert len(prefixed.app[TOKENS].by_header) == 5
