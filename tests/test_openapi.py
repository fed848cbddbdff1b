"""The served OpenAPI document describes exactly the routes the app has."""

from __future__ import annotations

import dataclasses
import json

import pytest

from service.app import create_app
from service.config import Config, Token

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Statuses each operation must document, from the HTTP contract (docs spec/api.md).
# Every operation with a JSON body may also answer 400 (not JSON / not an object),
# 413 (body over 1 MiB) and 415 (not application/json); every operation that
# reads or writes the database may answer 503.
BODY = {"400", "413", "415"}
DB = {"503"}
# Every operation refuses a query parameter it does not define with 422.
QUERY = {"422"}
CONTRACT = {
    ("POST", "/students"): {"201", "409", "422"} | BODY | DB,
    ("GET", "/students"): {"200", "422"} | DB,
    ("GET", "/students/{student_id}"): {"200", "404"} | DB,
    ("PATCH", "/students/{student_id}"): {"200", "404", "409", "422"} | BODY | DB,
    ("DELETE", "/students/{student_id}"): {"204", "404"} | DB,
    ("POST", "/students/{student_id}/courses"): {"200", "201", "202", "404", "409", "422"}
    | BODY
    | DB,
    ("GET", "/students/{student_id}/courses"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/courses/{course_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/courses/{course_id}"): {"204", "404"} | DB,
    ("POST", "/courses"): {"201", "409", "422"} | BODY | DB,
    ("GET", "/courses"): {"200", "422"} | DB,
    ("GET", "/courses/{course_id}"): {"200", "404"} | DB,
    ("PATCH", "/courses/{course_id}"): {"200", "404", "409", "422"} | BODY | DB,
    ("DELETE", "/courses/{course_id}"): {"204", "404"} | DB,
    ("GET", "/courses/{course_id}/students"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/waitlist"): {"200", "404", "422"} | DB,
    ("GET", "/students/{student_id}/waitlist/{course_id}"): {"200", "404"} | DB,
    ("DELETE", "/students/{student_id}/waitlist/{course_id}"): {"204", "404"} | DB,
    ("GET", "/courses/{course_id}/waitlist"): {"200", "404", "422"} | DB,
    # Batches: 200 whatever the items' statuses; 422 for a body that is not 1..1000 items.
    ("POST", "/enrollments/batch"): {"200", "422"} | BODY | DB,
    ("POST", "/students/batch"): {"200", "422"} | BODY | DB,
    ("POST", "/courses/batch"): {"200", "422"} | BODY | DB,
    # The change feed: 410 for a cursor from before the history kept (retention).
    ("GET", "/events"): {"200", "410", "422"} | DB,
    ("GET", "/healthz"): {"200"},
    ("GET", "/readyz"): {"200", "503"},
    ("GET", "/openapi.json"): {"200"},
    # Not in the HTTP contract; added with the metrics work (Prometheus text).
    ("GET", "/metrics"): {"200"},
}
CONTRACT = {operation: statuses | QUERY for operation, statuses in CONTRACT.items()}


@pytest.fixture
async def document(client) -> dict:
    response = await client.get("/openapi.json")
    assert response.status == 200
    return await response.json()


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


async def test_every_registered_route_is_documented(config, document):
    missing = registered_routes(config) - documented_operations(document).keys()

    assert missing == set()


async def test_every_documented_operation_is_registered(config, document):
    # GET /metrics was once documented ahead of its route; it is registered now,
    # so the comparison is exact in both directions.
    extra = documented_operations(document).keys() - registered_routes(config)

    assert extra == set()


async def test_the_contract_covers_every_registered_route(config):
    # Keeps CONTRACT honest: a new route must say here which statuses it documents.
    assert registered_routes(config) == CONTRACT.keys()


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
    for parameter in item.get("parameters", []) + operation.get("parameters", []):
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


async def test_an_instance_with_tokens_declares_the_bearer_scheme(config, aiohttp_client):
    token = Token(name="registrar", scope="write", secret="a-secret-of-sixteen-plus")
    client = await aiohttp_client(create_app(dataclasses.replace(config, tokens=(token,))))

    document = await (await client.get("/openapi.json")).json()

    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operations = documented_operations(document)
    assert "401" in operations[("GET", "/students")]["responses"]
    assert operations[("GET", "/healthz")]["security"] == []  # public routes stay open
