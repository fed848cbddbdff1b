"""The served OpenAPI document describes exactly the routes the app has."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import orjson
import pytest

from enrollment_import.importer import KINDS
from service import access_tokens
from service.app import OPENAPI_DOCUMENT, create_app
from service.config import MAX_ACCESS_TOKEN_TTL, MIN_ACCESS_TOKEN_TTL, Config, ConfigError, Token
from service.handlers import batches, events
from service.outcomes import DROP_OUTCOMES, ENROLL_OUTCOMES, Outcome
from service.validation.cursors import encode_cursor
from service.validation.fields import MAX_ID
from service.validation.query import MAX_LIMIT

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Statuses each operation must document, from the HTTP contract (docs spec/api.md).
# Every operation with a JSON body may also answer 400 (not JSON / not an object),
# 413 (body over 1 MiB) and 415 (not application/json); every operation that
# reads or writes the database may answer 503.
BODY = {"400", "413", "415"}
DB = {"503"}
# Every operation refuses a query parameter it does not define with 422.
QUERY = {"422"}
# Over a client's limit (service/limits.py): every POST (stored idempotency
# keys), the long polls of /events, searches with ?q=, batches.
LIMITED = {"429"}
CONTRACT = {
    ("POST", "/students"): {"201", "409", "422"} | BODY | DB | LIMITED,
    ("GET", "/students"): {"200", "422"} | DB | LIMITED,
    # Conditional requests: 304 on If-None-Match, 412 on If-Match.
    ("GET", "/students/{student_id}"): {"200", "304", "404"} | DB,
    ("PATCH", "/students/{student_id}"): {"200", "404", "409", "412", "422"} | BODY | DB,
    ("DELETE", "/students/{student_id}"): {"204", "404", "412"} | DB,
    ("POST", "/students/{student_id}/courses"): {"200", "201", "202", "404", "409", "422"}
    | BODY
    | DB
    | LIMITED,
    ("GET", "/students/{student_id}/courses"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/courses/{course_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/courses/{course_id}"): {"204", "404"} | DB,
    ("POST", "/courses"): {"201", "409", "422"} | BODY | DB | LIMITED,
    ("GET", "/courses"): {"200", "422"} | DB | LIMITED,
    ("GET", "/courses/{course_id}"): {"200", "304", "404"} | DB,
    ("PATCH", "/courses/{course_id}"): {"200", "404", "409", "412", "422"} | BODY | DB,
    ("DELETE", "/courses/{course_id}"): {"204", "404", "412"} | DB,
    ("POST", "/terms"): {"201", "409", "422"} | BODY | DB | LIMITED,
    ("GET", "/terms"): {"200", "422"} | DB,
    ("GET", "/terms/{term_id}"): {"200", "304", "404"} | DB,
    ("PATCH", "/terms/{term_id}"): {"200", "404", "409", "412", "422"} | BODY | DB,
    # 409 term-not-empty while a course belongs to it.
    ("DELETE", "/terms/{term_id}"): {"204", "404", "409", "412"} | DB,
    ("GET", "/courses/{course_id}/students"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/waitlist"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/waitlist/{course_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/waitlist/{course_id}"): {"204", "404"} | DB,
    ("GET", "/courses/{course_id}/waitlist"): {"200", "404", "422"} | DB,
    # Holds and completions: sub-resources of a student; a repeated completion is 409.
    ("POST", "/students/{student_id}/holds"): {"201", "404", "422"} | BODY | DB | LIMITED,
    ("GET", "/students/{student_id}/holds"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/holds/{hold_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/holds/{hold_id}"): {"204", "404"} | DB,
    ("POST", "/students/{student_id}/completions"): {"201", "404", "409", "422"}
    | BODY
    | DB
    | LIMITED,
    ("GET", "/students/{student_id}/completions"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/completions/{completion_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/completions/{completion_id}"): {"204", "404"} | DB,
    # A student's settings in a term: 404 for an unknown student or term.
    ("GET", "/students/{student_id}/terms/{term_id}"): {"200", "404"} | DB,
    ("PUT", "/students/{student_id}/terms/{term_id}"): {"200", "404", "422"} | BODY | DB,
    # Batches: 200 whatever the items' statuses; 422 for a body that is not 1..1000
    # items; 409 only for an Idempotency-Key in use.
    ("POST", "/enrollments/batch"): {"200", "409", "422"} | BODY | DB | LIMITED,
    ("POST", "/students/batch"): {"200", "409", "422"} | BODY | DB | LIMITED,
    ("POST", "/courses/batch"): {"200", "409", "422"} | BODY | DB | LIMITED,
    ("POST", "/terms/batch"): {"200", "409", "422"} | BODY | DB | LIMITED,
    # The change feed: 410 for a cursor from before the history kept (retention).
    ("GET", "/events"): {"200", "410", "422"} | DB | LIMITED,
    ("GET", "/healthz"): {"200"},
    ("GET", "/readyz"): {"200", "503"},
    ("GET", "/openapi.json"): {"200"},
    # The interactive reference of the document (Swagger UI) and its files.
    ("GET", "/docs"): {"200"},
    ("GET", "/docs/{asset}"): {"200", "404"},
    # Not in the HTTP contract; added with the metrics work (Prometheus text).
    ("GET", "/metrics"): {"200"},
    # OAuth 2.0 client credentials, with tokens only: 400 and 401 in RFC 6749's
    # own JSON; a form, so no 415, and at most 16 KiB of it.
    ("POST", "/oauth/token"): {"200", "400", "401", "408", "413"},
}
CONTRACT = {operation: statuses | QUERY for operation, statuses in CONTRACT.items()}
# What an instance without tokens does not have.
TOKEN_ONLY = {("POST", "/oauth/token")}
TOKEN = Token(name="registrar", scope="write", secret="a-secret-of-sixteen-plus")


def with_tokens(config: Config) -> Config:
    return dataclasses.replace(config, tokens=(TOKEN,))


@pytest.fixture
async def document(config, aiohttp_client) -> dict:
    """The document an instance with tokens serves: every operation, the token endpoint's too."""
    client = await aiohttp_client(create_app(with_tokens(config)))
    response = await client.get("/openapi.json")
    assert response.status == 200
    return await response.json()


async def served_document(aiohttp_client, config: Config) -> dict:
    response = await (await aiohttp_client(create_app(config))).get("/openapi.json")
    assert response.status == 200
    return await response.json()


# Each instance against the document it serves.
INSTANCES = pytest.mark.parametrize("tokens", [False, True], ids=["without-tokens", "with-tokens"])


def registered_routes(config: Config) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in create_app(config).router.routes()
        if route.method not in ("*", "HEAD") and route.resource is not None
    }


def documented_operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


async def test_openapi_document_is_served_as_openapi_3_1(client):
    response = await client.get("/openapi.json")

    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert document["paths"]


@INSTANCES
async def test_every_registered_route_is_documented(config, aiohttp_client, tokens):
    config = with_tokens(config) if tokens else config
    document = await served_document(aiohttp_client, config)

    missing = registered_routes(config) - documented_operations(document).keys()

    assert missing == set()


@INSTANCES
async def test_every_documented_operation_is_registered(config, aiohttp_client, tokens):
    # GET /metrics was once documented ahead of its route; it is registered now,
    # so the comparison is exact in both directions. The token endpoint exists,
    # and is documented, only with tokens.
    config = with_tokens(config) if tokens else config
    document = await served_document(aiohttp_client, config)

    extra = documented_operations(document).keys() - registered_routes(config)

    assert extra == set()


async def test_the_contract_covers_every_registered_route(config):
    # Keeps CONTRACT honest: a new route must say here which statuses it documents.
    assert registered_routes(with_tokens(config)) == CONTRACT.keys()
    assert registered_routes(config) == CONTRACT.keys() - TOKEN_ONLY


@pytest.mark.parametrize(("method", "path"), sorted(CONTRACT))
async def test_operation_documents_the_contract_statuses(document, method, path):
    operation = documented_operations(document)[(method, path)]
    documented = set(operation["responses"])

    assert CONTRACT[(method, path)] <= documented, sorted(CONTRACT[(method, path)] - documented)


@pytest.mark.parametrize(("method", "path"), sorted(CONTRACT))
async def test_operation_declares_its_path_parameters(document, method, path):
    item = document["paths"][path]
    operation = item[method.lower()]
    declared = set()
    # In the operation itself: Swagger UI's "Try it out" draws no input for a
    # parameter declared once for the whole path, and sends the template.
    assert "parameters" not in item
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            name = parameter["$ref"].rsplit("/", 1)[-1]
            parameter = document["components"]["parameters"][name]
        if parameter["in"] == "path":
            assert parameter["required"] is True
            declared.add(parameter["name"])
    in_template = {part[1:-1] for part in path.split("/") if part.startswith("{")}

    assert declared == in_template


@pytest.mark.parametrize(
    ("method", "path"), sorted(key for key, codes in CONTRACT.items() if "201" in codes)
)
async def test_creates_document_the_location_header(document, method, path):
    created = documented_operations(document)[(method, path)]["responses"]["201"]

    assert "Location" in created.get("headers", {})


CONDITIONAL = {
    ("GET", "/students/{student_id}"): ("200", "IfNoneMatch"),
    ("PATCH", "/students/{student_id}"): ("200", "IfMatch"),
    ("DELETE", "/students/{student_id}"): (None, "IfMatch"),
    ("GET", "/courses/{course_id}"): ("200", "IfNoneMatch"),
    ("PATCH", "/courses/{course_id}"): ("200", "IfMatch"),
    ("DELETE", "/courses/{course_id}"): (None, "IfMatch"),
    ("GET", "/terms/{term_id}"): ("200", "IfNoneMatch"),
    ("PATCH", "/terms/{term_id}"): ("200", "IfMatch"),
    ("DELETE", "/terms/{term_id}"): (None, "IfMatch"),
}


@pytest.mark.parametrize(("method", "path"), sorted(CONDITIONAL))
async def test_conditional_operations_document_etag_and_their_precondition_header(
    document, method, path
):
    operation = documented_operations(document)[(method, path)]
    answered, parameter = CONDITIONAL[(method, path)]

    assert {"$ref": f"#/components/parameters/{parameter}"} in operation["parameters"]
    if answered is not None:
        assert "ETag" in operation["responses"][answered]["headers"]
    if method == "GET":
        assert "ETag" in document["components"]["responses"]["NotModified"]["headers"]


async def test_a_place_on_a_waitlist_documents_the_location_header(document):
    # 202 from enroll: the student waits; Location is the waitlist entry, not an enrollment.
    accepted = documented_operations(document)[("POST", "/students/{student_id}/courses")]

    assert "Location" in accepted["responses"]["202"].get("headers", {})
    schema = accepted["responses"]["202"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/WaitlistEntry"}


def security_requirements(document: dict) -> list[str]:
    """Where the document declares a security requirement or scheme, as JSON pointers."""
    found = ["/security"] if document.get("security") else []
    if document["components"].get("securitySchemes"):
        found.append("/components/securitySchemes")
    for (method, path), operation in documented_operations(document).items():
        if operation.get("security") or {"401", "403"} & operation["responses"].keys():
            found.append(f"/paths/{path}/{method.lower()}")
    return found


async def test_an_instance_without_tokens_declares_no_security(client):
    document = await (await client.get("/openapi.json")).json()

    assert security_requirements(document) == []
    assert all(op["security"] == [] for op in documented_operations(document).values())
    # Nothing left pointing at what was removed.
    assert "#/components/responses/Unauthorized" not in json.dumps(document)
    # No token endpoint, nor its tag or schemas.
    assert "/oauth/token" not in document["paths"]
    assert "OAuth" not in {tag["name"] for tag in document["tags"]}
    schemas = set(document["components"]["schemas"])
    assert not {"TokenRequest", "AccessToken", "OAuthError", "OAuthScope"} & schemas


async def test_an_instance_with_tokens_declares_the_bearer_scheme(document):

    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = documented_operations(document)
    assert "401" in operations[("GET", "/students")]["responses"]
    assert operations[("GET", "/healthz")]["security"] == []  # public routes stay open


def resolved(document: dict, item: dict) -> dict:
    """`item`, or what its $ref points at (one level, as the document uses them)."""
    if "$ref" not in item:
        return item
    section, name = item["$ref"].split("/")[-2:]
    return document["components"][section][name]


# The token endpoint aside: an access token is never stored or replayed.
@pytest.mark.parametrize(
    ("method", "path"),
    sorted(key for key in CONTRACT if key[0] == "POST" and key not in TOKEN_ONLY),
)
async def test_every_post_takes_an_idempotency_key(document, method, path):
    # service/idempotency.py keys every POST route, those added later included.
    operation = documented_operations(document)[(method, path)]
    responses = operation["responses"]

    assert {"$ref": "#/components/parameters/IdempotencyKey"} in operation["parameters"]
    assert {"400", "409", "422"} <= responses.keys()  # malformed, in use, reused
    replayable = [s for s in responses if s.startswith("2") or s in ("404", "409")]
    for status in replayable:
        headers = resolved(document, responses[status]).get("headers", {})
        assert "Idempotent-Replayed" in headers, status


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, codes in CONTRACT.items() if "429" in codes)
)
async def test_a_limited_operation_documents_the_429_and_its_rate_limit_fields(
    document, method, path
):
    answer = documented_operations(document)[(method, path)]["responses"]["429"]
    too_many = resolved(document, answer)

    assert answer["$ref"] == "#/components/responses/TooManyRequests"
    assert set(too_many["headers"]) == {
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    assert "application/problem+json" in too_many["content"]


async def test_the_rate_limit_fields_are_declared_only_on_the_429s(document):
    # They are sent with a 429 and nothing else: declared elsewhere, a client
    # would look for them on every answer.
    for (method, path), operation in documented_operations(document).items():
        for status, response in operation["responses"].items():
            headers = resolved(document, response).get("headers", {})
            if status != "429":
                assert not [h for h in headers if h.startswith("RateLimit-")], (
                    method,
                    path,
                    status,
                )


def problem_types_named_in_the_code() -> set[str]:
    """Every problem type slug service/ passes as a literal to Problem or conflict."""
    slugs = set()
    for source in (Path(__file__).parents[1] / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"Problem": 2, "conflict": 1}.get(node.func.id)
            if position is None:
                continue
            given = node.args[position] if len(node.args) > position else None
            given = given or next((k.value for k in node.keywords if k.arg == "slug"), None)
            if isinstance(given, ast.Constant) and isinstance(given.value, str):
                slugs.add(given.value)
    return slugs


def test_every_problem_type_the_code_names_fits_the_documented_type():
    schema = OPENAPI_DOCUMENT["components"]["schemas"]["Problem"]["properties"]["type"]
    slugs = problem_types_named_in_the_code()

    # The scan finds them: the ones of each kind of call, the 429 and both 503s.
    assert {"not-found", "busy", "code-taken", "too-many-requests", "database-unavailable"} <= slugs
    for slug in slugs:
        problem_type = f"/problems/{slug}"
        assert len(problem_type) <= schema["maxLength"], problem_type
        assert re.fullmatch(schema["pattern"], problem_type), problem_type


def _schema(pointer: str) -> dict:
    node = OPENAPI_DOCUMENT
    for part in pointer.split("/"):
        node = node[part]
    return node


PAGES = ["StudentPage", "CoursePage", "EnrollmentPage", "EnrolledStudentPage"]
PAGES += ["WaitlistEntryPage", "WaitlistedStudentPage", "HoldPage", "CompletionPage", "TermPage"]
RESULTS = ["EnrollmentBatchResults", "StudentBatchResults", "CourseBatchResults"]
RESULTS += ["TermBatchResults"]
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
LONGEST_CURSOR = len(encode_cursor(MAX_ID, "f" * 12))
# The document's bounds and the limits the server enforces, side by side: a
# limit changed in the code and not in the document (or the reverse) fails here.
BOUNDS = [
    *[(f"components/schemas/{page}/properties/items/maxItems", MAX_LIMIT) for page in PAGES],
    ("components/parameters/Limit/schema/maximum", MAX_LIMIT),
    ("components/schemas/EventPage/properties/items/maxItems", events.MAX_LIMIT),
    ("components/parameters/EventLimit/schema/maximum", events.MAX_LIMIT),
    ("components/parameters/Wait/schema/maximum", events.MAX_WAIT),
    *[(f"components/schemas/{r}/properties/results/maxItems", batches.MAX_ITEMS) for r in RESULTS],
    ("components/schemas/EnrollmentBatch/properties/items/maxItems", batches.MAX_ITEMS),
    # The longest cursor: the largest id and a scope, base64url without padding.
    ("components/parameters/Cursor/schema/maxLength", LONGEST_CURSOR),
    ("components/parameters/EventCursor/schema/maxLength", LONGEST_CURSOR),
    ("components/schemas/StudentPage/properties/next_cursor/maxLength", LONGEST_CURSOR),
    # The longest path a Location names: a completion of the largest ids.
    (
        "components/headers/Location/schema/maxLength",
        len(f"/students/{MAX_ID}/completions/{MAX_ID}"),
    ),
    # The longest RFC 3339 timestamp a response holds, as orjson writes it.
    ("components/schemas/Timestamp/maxLength", len(orjson.dumps(LATEST)) - 2),
    (
        "components/schemas/Problem/properties/title/maxLength",
        max(len(s.phrase) for s in HTTPStatus if s >= 400),
    ),
    # Service unavailable: the configured wait (2 s); busy, a key in use or a limit: 1 s.
    ("components/headers/Retry-After/schema/maximum", Config.retry_after),
    # An access token's lifetime: what ACCESS_TOKEN_TTL accepts.
    ("components/schemas/AccessToken/properties/expires_in/minimum", MIN_ACCESS_TOKEN_TTL),
    ("components/schemas/AccessToken/properties/expires_in/maximum", MAX_ACCESS_TOKEN_TTL),
    # The scopes granted: each at most once.
    ("components/schemas/OAuthScope/maxLength", len(" ".join(access_tokens.SCOPES))),
]


@pytest.mark.parametrize(("pointer", "enforced"), BOUNDS, ids=[p for p, _ in BOUNDS])
def test_the_documented_bounds_are_the_servers(pointer, enforced):
    assert _schema(pointer) == enforced


def test_rate_limit_limit_covers_every_limit_the_settings_allow():
    # RateLimit-Limit names the limit reached: the documented maximum is the
    # largest value any LIMIT_* setting accepts (LIMIT_IDEMPOTENCY_KEYS's).
    maximum = _schema("components/headers/RateLimit-Limit/schema/maximum")

    assert Config.from_env({"LIMIT_IDEMPOTENCY_KEYS": str(maximum)})
    for setting in (
        "LIMIT_LONG_POLLS",
        "LIMIT_SEARCHES",
        "LIMIT_BATCHES",
        "LIMIT_IDEMPOTENCY_KEYS",
    ):
        with pytest.raises(ConfigError):
            Config.from_env({setting: str(maximum + 1)})


# --- outcomes -------------------------------------------------------------------


def _outcome_enum(schema: str) -> list[str]:
    return OPENAPI_DOCUMENT["components"]["schemas"][schema]["properties"]["outcome"]["enum"]


def test_the_batch_outcomes_of_the_document_are_the_services_vocabulary():
    enroll = _outcome_enum("EnrollmentBatchResult")
    assert set(enroll) == {*ENROLL_OUTCOMES, *DROP_OUTCOMES, Outcome.INVALID}
    every = {*enroll, *_outcome_enum("StudentBatchResult"), *_outcome_enum("CourseBatchResult")}
    every |= {*_outcome_enum("TermBatchResult")}
    assert every == set(Outcome)


BATCH_RESULTS = {
    "students": "StudentBatchResult",
    "courses": "CourseBatchResult",
    "enrollments": "EnrollmentBatchResult",
    "terms": "TermBatchResult",
}


@pytest.mark.parametrize("kind", sorted(BATCH_RESULTS))
def test_the_importer_names_only_outcomes_of_the_contract(kind):
    assert {o.slug for o in KINDS[kind].applied} <= set(_outcome_enum(BATCH_RESULTS[kind]))


def test_the_importer_names_each_row_it_sends_alone_by_the_event_or_problem_of_the_contract():
    """Holds and completions have no batch, so no outcomes of the contract.

    What a row changed is named by the event the service records (a placed
    hold is hold.placed), what it found in place by the 409 of the POST
    (already-completed); a hold already held is the importer's own finding,
    from the student's holds it reads first: no answer of the service names it.
    """
    assert {kind for kind, each in KINDS.items() if each.each} == {"holds", "completions"}
    events_ = set(_schema("components/schemas/EventType")["enum"])
    for kind, noun in (("holds", "hold"), ("completions", "completion")):
        assert KINDS[kind].path == f"/students/{{student_id}}/{kind}"
        changed = {o.slug for o in KINDS[kind].applied if o.changed}
        assert {f"{noun}.{slug}" for slug in changed} <= events_, kind
    post = OPENAPI_DOCUMENT["paths"]["/students/{student_id}/completions"]["post"]
    said = post["responses"]["409"]["description"]
    assert {o.slug for o in KINDS["completions"].applied if not o.changed} == {"already-completed"}
    assert "`/problems/already-completed`" in said
    assert {o.slug for o in KINDS["holds"].applied if not o.changed} == {"already-held"}


def test_the_events_filter_takes_every_event_type_of_the_document():
    from service.handlers.events import TYPES

    assert set(TYPES) == set(_schema("components/schemas/EventType")["enum"])
