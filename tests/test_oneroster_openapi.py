"""1EdTech's official OpenAPI document of the OneRoster 1.2 rostering service, against the provider.

The document (tests/oneroster/official.py says where it is read from) is
loaded by schemathesis with a running instance as its base URL, a school's
bundle imported through the real importer. Only the document's GET
operations whose path the provider serves (its router says which) are
explored: the collections academicSessions, terms, classes, courses, users,
students, enrollments, orgs and schools, each by sourcedId, and the nested
classes/{}/students, students/{}/classes, terms/{}/classes and
schools/{}/classes. Every response goes through schemathesis' checks:
not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance, response_schema_conformance,
negative_data_rejection, positive_data_acceptance, missing_required_header,
unsupported_method and ignored_auth (a request replayed without its token,
or with a wrong one, must be 401). Requests carry the LMS's access token from
POST /oauth/token; about half of the generated sourcedIds are swapped for
ones that exist, so records are validated, not only 404s.

Then each collection, each single record, a delta with a deleted record, a
selection (`fields=`) and each error (404, 400 for a filter outside the
grammar or an unknown sort field, 401) is requested explicitly and validated against the document's
schema for its status, beside a negative control: the same body with one
required field removed must fail, so the validation is known to bite.

Where the document and the binding's prose (or the service) part, the test
allows for it here and docs/oneroster.md ("Checked with clients") says so:

- `filter`, `sort` and `fields` are free strings (an array for `fields`) in
  the document; their grammar and field names are in the prose only, so a
  schema-valid value is often 400 (positive_data_acceptance accepts 400, and
  404 for an unknown sourcedId). So is `limit` above 1000, which the
  document leaves unbounded and the service caps.
- `fields` is an exploded array in the document (`fields=a&fields=b`); the
  prose and the service take one comma-separated list (`fields=a,b`), and
  `fields` given twice is 422.
- Every record type requires its fields, so a selection (`fields=`), which
  the binding allows to leave any out, and a deleted record, which the
  service sends as sourcedId, status and dateLastModified only, fail the
  document as written: they are validated against the document with
  `required` cut down (official.with_required), and checked to fail without.
- The document's codeMinor vocabulary has no `invalid_sort_field`, the
  contract's code for a `sort` field the records cannot be sorted on: such
  a 400 (and only it) is validated against the document with that one code
  added to the vocabulary (official.with_code_minor), and checked to fail
  without.
"""

from __future__ import annotations

import copy
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance, response_schema_conformance
from schemathesis.core.failures import Failure, FailureGroup

from .conftest import Server
from .oneroster import clients, official
from .oneroster.instance import LMS, REGISTRAR, Roster, database, running
from .oneroster_bundle import school, write_bundle

pytestmark = pytest.mark.slow

EXAMPLES = 25  # fuzzed cases per operation, beside the coverage phase's
SEED_VALUE = 20261207
COMMON = {"sourcedId", "status", "dateLastModified"}
# The contract's codeMinor for a sort field the records cannot take; not in the document's enum.
INVALID_SORT_FIELD = "invalid_sort_field"


def _load() -> tuple[dict[str, Any] | None, str]:
    try:
        return official.load(), ""
    except clients.Unavailable as why:
        return None, str(why)


# Loaded when the module is: schemathesis makes one test of each operation.
DOCUMENT, MISSING = _load()
COLLECTIONS = [
    "academicSessions",
    "terms",
    "classes",
    "courses",
    "users",
    "students",
    "enrollments",
    "orgs",
    "schools",
]
NESTED = [
    "/classes/{}/students",
    "/students/{}/classes",
    "/terms/{}/classes",
    "/schools/{}/classes",
]
SERVED = official.served_operations(DOCUMENT, official.provider_paths()) if DOCUMENT else []


@dataclass
class Explored:
    """What `sent()` needs from the running instance: its token, and sourcedIds that exist."""

    token: Token | None = None
    known: dict[str, list[str]] = field(default_factory=dict)


EXPLORED = Explored()


def make_schema(document: dict[str, Any]) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED_VALUE,
            "generation": {"mode": "all", "deterministic": True, "database": "none"},
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404"]}},
        }
    )
    return schemathesis.openapi.from_dict(document, config=config).include(
        method="GET", path=SERVED
    )


def collection_of(path: str) -> str:
    """The collection a path's parameter names: /classes/{classSourcedId}/students -> classes."""
    return path.split("/")[1]


# schemathesis builds many cases before any fixture runs (the coverage
# phase's, when the tests are collected), so what only the running instance
# knows goes in when a case is sent (`sent()`): the access token in place of
# this placeholder, and sourcedIds that exist.
PLACEHOLDER = "access-token-of-the-running-instance"


class Bearer:
    """The document's OAuth2CC: a bearer token on every request (the placeholder until sent)."""

    def get(self, case, context):
        return PLACEHOLDER

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def sent(case: schemathesis.Case) -> schemathesis.Case:
    """The case with the instance's token, and every other sourcedId in its path one that exists.

    Only a positive case's sourcedIds change (one valid string for another),
    chosen by the generated value, so a run is repeatable.
    """
    headers = case.headers or {}
    if headers.get("Authorization") == f"Bearer {PLACEHOLDER}":
        headers["Authorization"] = f"Bearer {EXPLORED.token}"
    if case.meta is not None and case.meta.generation.mode.is_positive:
        for name, value in (case.path_parameters or {}).items():
            pool = EXPLORED.known[collection_of(case.operation.path)]
            if isinstance(value, str) and zlib.crc32(value.encode()) % 2:
                case.path_parameters[name] = pool[zlib.crc32(value.encode()) % len(pool)]
    return case


SCHEMA = make_schema(DOCUMENT) if DOCUMENT else None
# The same document with nothing required of a record: what a selection must still be.
SELECTIONS = make_schema(official.with_required(DOCUMENT, set())) if DOCUMENT else None
# The document with invalid_sort_field in its codeMinor vocabulary: what a refused sort must be.
SORTS = make_schema(official.with_code_minor(DOCUMENT, INVALID_SORT_FIELD)) if DOCUMENT else None
if SCHEMA is not None:
    SCHEMA.auth(refresh_interval=None)(Bearer)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    if DOCUMENT is None:
        official.unavailable(MISSING)
    return DOCUMENT


@pytest.fixture(scope="module")
def roster(
    document: dict[str, Any],
    pg_server: Server,
    template_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Roster]:
    """One instance for the module: a school of 30 students in 8 classes over 2 terms."""
    bundle = tmp_path_factory.mktemp("bundle") / "school.zip"
    with database(pg_server, template_db) as url, running(url) as instance:
        files = school(30, 8, 2, terms=2, teachers=1)
        instance.import_bundle(write_bundle(bundle, files, zip=True))
        yield instance


def test_the_document_names_every_path_the_contract_gives_the_provider(document, roster):
    # The paths explored are the document's whose shape the provider serves:
    # every collection of the contract, by sourcedId, and the nested ones.
    expected = {f"/{c}" for c in COLLECTIONS} | {f"/{c}/{{}}" for c in COLLECTIONS} | set(NESTED)
    assert {official.shape(p) for p in SERVED} == expected
    assert {official.shape(p.removeprefix(official.PREFIX)) for p in roster.paths} == expected


class Token:
    """The LMS's access token, taken again every two minutes (it lives at least five)."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self.value = ""
        self.taken: datetime | None = None

    def __str__(self) -> str:
        now = datetime.now(UTC)
        if self.taken is None or (now - self.taken).total_seconds() > 120:
            self.value = self.roster.access_token(LMS)
            self.taken = now
        return self.value


@pytest.fixture(scope="module")
def token(roster: Roster) -> Token:
    return Token(roster)


def get(roster: Roster, path: str, token: Token | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(roster.rostering + path, params=params, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def known(roster: Roster, token: Token) -> dict[str, list[str]]:
    """Existing sourcedIds by collection, for path parameters that name something."""
    found = {}
    for name in ("academicSessions", "classes", "courses", "users", "enrollments", "orgs"):
        answer = get(roster, f"/{name}", token, limit=1000)
        assert answer.status_code == 200, answer.text
        found[name] = [record["sourcedId"] for record in answer.json()[name]]
    found["terms"] = found["academicSessions"]
    found["students"] = found["users"]
    found["schools"] = found["orgs"]
    return found


@pytest.fixture(scope="module")
def explored(roster: Roster, token: Token, known: dict[str, list[str]]) -> Roster:
    EXPLORED.token, EXPLORED.known = token, known
    return roster


SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

if SCHEMA is not None:

    @SCHEMA.parametrize()
    @SETTINGS
    def test_the_provider_answers_as_the_official_document_says(case, explored):
        response = sent(case).call(base_url=explored.rostering)
        excluded = []
        fields = (case.query or {}).get("fields")
        if isinstance(fields, list) and len(fields) > 1:
            # The document's exploded array: `fields` twice, which the service refuses.
            assert response.status_code == 422, response.text
            excluded.append(positive_data_acceptance)
        elif fields is not None and response.status_code == 200:
            # A selection leaves out what the document requires: judged without `required`.
            excluded.append(response_schema_conformance)
            SELECTIONS[case.operation.path]["GET"].validate_response(response)
        elif (
            response.status_code == 400
            and "sort" in (case.query or {})
            and minor(response) == INVALID_SORT_FIELD
        ):
            # A sort field refused with the contract's code: judged with that code added.
            excluded.append(response_schema_conformance)
            SORTS[case.operation.path]["GET"].validate_response(response)
        case.validate_response(
            response, excluded_checks=excluded, transport_kwargs={"base_url": explored.rostering}
        )

else:

    def test_the_provider_answers_as_the_official_document_says():
        official.unavailable(MISSING)


# -- explicit requests, each validated against the document ---------------------------------


def refusals(schema: schemathesis.BaseSchema, path: str, answer: requests.Response) -> str:
    """What the document finds wrong with the answer to GET `path` ("" for nothing)."""
    try:
        schema[path]["GET"].validate_response(answer)
    except Failure as failure:
        return str(failure)
    except FailureGroup as failures:
        return "\n".join(str(failure) for failure in failures.exceptions)
    return ""


def validate(schema: schemathesis.BaseSchema, path: str, answer: requests.Response) -> None:
    """The answer against the document's response for its status; a broken copy must fail."""
    assert refusals(schema, path, answer) == "", (path, answer.text)
    broken = copy.deepcopy(answer.json())
    assert remove_a_required_field(broken), answer.text
    assert "is a required property" in refusals(schema, path, with_body(answer, broken))


def with_body(answer: requests.Response, body: Any) -> requests.Response:
    changed = copy.copy(answer)
    changed._content = json.dumps(body).encode()
    return changed


def remove_a_required_field(body: dict[str, Any]) -> bool:
    """Remove sourcedId from the first record, or imsx_codeMajor from a status payload."""
    if "imsx_codeMajor" in body:
        del body["imsx_codeMajor"]
        return True
    (value,) = body.values()
    record = value[0] if isinstance(value, list) and value else value
    if isinstance(record, dict) and "sourcedId" in record:
        del record["sourcedId"]
        return True
    return False


def minor(answer: requests.Response) -> str:
    (field,) = answer.json()["imsx_CodeMinor"]["imsx_codeMinorField"]
    return field["imsx_codeMinorFieldValue"]


def test_every_kind_of_answer_validates_against_the_official_document(
    document, known, roster, token
):
    for path in SERVED:
        parameters = [p for p in path.split("/") if p.startswith("{")]
        if not parameters:
            # A page of a collection: the document's set type, with X-Total-Count.
            answer = get(roster, path, token, limit=2)
            assert answer.status_code == 200, (path, answer.text)
            (records,) = answer.json().values()
            assert records, (path, answer.text)
            assert int(answer.headers["X-Total-Count"]) >= len(records)
            validate(SCHEMA, path, answer)
            # A filter outside the grammar: 400, the binding's status payload.
            refused = get(roster, path, token, filter="no such thing")
            assert refused.status_code == 400, (path, refused.text)
            validate(SCHEMA, path, refused)
            assert minor(refused) == "invalid_filter_field"
            # An unknown sort field: 400 with the contract's code, which only
            # the document's vocabulary with that code added accepts.
            refused = get(roster, path, token, sort="noSuchField")
            assert refused.status_code == 400, (path, refused.text)
            assert minor(refused) == INVALID_SORT_FIELD
            assert "is not one of" in refusals(SCHEMA, path, refused), refused.text
            validate(SORTS, path, refused)
            continue
        concrete = path.replace(parameters[0], known[collection_of(path)][0])
        answer = get(roster, concrete, token)
        assert answer.status_code == 200, (concrete, answer.text)
        validate(SCHEMA, path, answer)
        # An unknown sourcedId: 404 in the binding's form, nested collections too.
        missing = get(roster, path.replace(parameters[0], "no-such-sourced-id"), token)
        assert missing.status_code == 404, (path, missing.text)
        validate(SCHEMA, path, missing)
        assert minor(missing) == "unknownobject"
    # Without a token, and with one that is not: 401 in the binding's form.
    for sent in (None, "not-a-token"):
        headers = {"Authorization": f"Bearer {sent}"} if sent else {}
        answer = requests.get(roster.rostering + "/users", headers=headers, timeout=10)
        assert answer.status_code == 401, answer.text
        validate(SCHEMA, "/users", answer)
        assert minor(answer) == "unauthorisedrequest"


def test_a_selection_and_a_deletion_keep_the_document_but_its_required_fields(
    document, roster, token
):
    # A selection: only the fields asked for, which the document as written refuses.
    answer = get(roster, "/users", token, fields="sourcedId,givenName", limit=5)
    assert answer.status_code == 200, answer.text
    assert {tuple(sorted(u)) for u in answer.json()["users"]} == {("givenName", "sourcedId")}
    assert "is a required property" in refusals(SCHEMA, "/users", answer)
    assert refusals(SELECTIONS, "/users", answer) == ""

    # A deletion: the student's tombstone and their enrollments', in a delta.
    since = datetime.now(UTC).isoformat()
    headers = {"Authorization": f"Bearer {REGISTRAR.secret}"}
    (student,) = requests.get(
        f"{roster.url}/students", params={"limit": 1}, headers=headers, timeout=10
    ).json()["items"]
    gone = requests.delete(f"{roster.url}/students/{student['id']}", headers=headers, timeout=10)
    assert gone.status_code == 204, gone.text
    tombstones = make_schema(official.with_required(document, COMMON))
    for path, name in (("/users", "users"), ("/enrollments", "enrollments")):
        delta = get(roster, path, token, filter=f"dateLastModified>'{since}'")
        assert delta.status_code == 200, delta.text
        records = delta.json()[name]
        assert records and all(r.keys() == COMMON for r in records), delta.text
        assert {r["status"] for r in records} == {"tobedeleted"}
        assert "is a required property" in refusals(SCHEMA, path, delta)
        assert refusals(tombstones, path, delta) == ""
        # What the cut-down document still requires, it still checks.
        broken = [{k: v for k, v in r.items() if k != "status"} for r in records]
        assert "is a required property" in refusals(
            tombstones, path, with_body(delta, {name: broken})
        )
