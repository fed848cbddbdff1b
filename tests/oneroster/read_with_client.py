"""Read a OneRoster 1.2 provider through timeback-oneroster and print what it saw as JSON.

Run by the client's own Python (>= 3.12, the venv tests/oneroster/client_venv.py
builds from client-requirements.txt), never imported by the tests:

    read_with_client.py --base-url URL --token-url URL --client-id ID --client-secret S

It takes a token by client credentials the way the client does (HTTP Basic, no
scope), then reads every collection with the client's automatic paging at
`--limit` records a page, the nested collections of every parent, one record of
each collection by its sourcedId, and an unknown sourcedId. With
`--changed-since TIMESTAMP` it reads instead what changed since then, as a
delta sync does: `filter=dateLastModified>'TIMESTAMP'` on users, students,
classes, enrollments and academicSessions.

Where the client departs from the binding, the driver reads the binding's way
through the client's own parts (its Paginator on its transport) and says so in
the output under "client", so the test can hold the difference in place:

- `client.terms` reads /terms under a `terms` key; the binding (and the
  provider) answer under `academicSessions`. The driver reads /terms with the
  client's Paginator and `unwrap_key="academicSessions"`, and reports how many
  terms `client.terms` itself found.
- `client.terms.get()` looks for a `term` key; the binding's single term is
  under `academicSession`. The driver gets one term through
  `client.academic_sessions.get()`.
- The client's pydantic models require personal fields (a user's givenName
  and familyName) that a deleted record, sent as `tobedeleted` without
  personal data, does not carry: in a delta the driver reads each collection
  as the client's model first, and when the model refuses a record, again as
  plain records through the client's Paginator, reporting the refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError
from timeback_common import NotFoundError
from timeback_oneroster import OneRosterClient
from timeback_oneroster.lib.pagination import Paginator
from timeback_oneroster.types import AcademicSession

# Every request the client sends, as httpx logs it: "HTTP Request: GET <url> ...".
REQUESTS: list[str] = []


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("HTTP Request:"):
            method, url = record.args[0], str(record.args[1])
            REQUESTS.append(f"{method} {url}")


def _plain(record: Any) -> dict[str, Any]:
    """A record as the client parsed it, in the binding's field names."""
    if isinstance(record, dict):
        return record
    return record.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _all(paginator: Paginator) -> list[dict[str, Any]]:
    return [_plain(record) async for record in paginator]


async def read_everything(client: OneRosterClient, limit: int) -> dict[str, Any]:
    rostering = client.get_transport().paths.rostering
    transport = client.get_transport()
    collections = {
        "users": await _all(client.users.stream(limit=limit)),
        "students": await _all(client.students.stream(limit=limit)),
        "classes": await _all(client.classes.stream(limit=limit)),
        "courses": await _all(client.courses.stream(limit=limit)),
        "enrollments": await _all(client.enrollments.stream(limit=limit)),
        "orgs": await _all(client.orgs.stream(limit=limit)),
        "schools": await _all(client.schools.stream(limit=limit)),
        "academicSessions": await _all(client.academic_sessions.stream(limit=limit)),
        # The binding's envelope for /terms, read by the client's own paging and model.
        "terms": await _all(
            Paginator(
                transport,
                f"{rostering}/terms",
                unwrap_key="academicSessions",
                limit=limit,
                transform=lambda item: AcademicSession.model_validate(item),
            )
        ),
    }
    ids = {name: [r["sourcedId"] for r in records] for name, records in collections.items()}
    nested = {
        "classes/{id}/students": {
            c: [u["sourcedId"] for u in await _all(client.classes(c).stream_students(limit=limit))]
            for c in ids["classes"]
        },
        "students/{id}/classes": {
            s: [c["sourcedId"] for c in await _all(client.students(s).stream_classes(limit=limit))]
            for s in ids["students"]
        },
        "terms/{id}/classes": {
            t: [c["sourcedId"] for c in await _all(client.terms(t).stream_classes(limit=limit))]
            for t in ids["terms"]
        },
        "schools/{id}/classes": {
            s: [c["sourcedId"] for c in await _all(client.schools(s).stream_classes(limit=limit))]
            for s in ids["schools"]
        },
    }
    resources = {
        "users": client.users,
        "students": client.students,
        "classes": client.classes,
        "courses": client.courses,
        "enrollments": client.enrollments,
        "orgs": client.orgs,
        "schools": client.schools,
        "academicSessions": client.academic_sessions,
        "terms": client.academic_sessions,
    }
    single = {
        name: _plain(await resources[name].get(found[0])) for name, found in ids.items() if found
    }
    try:
        await client.users.get("no-such-sourced-id")
        unknown = "found"
    except NotFoundError:
        unknown = "NotFoundError"
    return {
        "collections": collections,
        "nested": nested,
        "single": single,
        "unknown_user": unknown,
        "client": {"terms_found_by_client_terms": len(await client.terms.list_all(limit=limit))},
    }


async def read_changes(client: OneRosterClient, limit: int, since: str) -> dict[str, Any]:
    transport = client.get_transport()
    rostering = transport.paths.rostering
    where = {"dateLastModified": {"gt": since}}
    resources = {
        "users": client.users,
        "students": client.students,
        "classes": client.classes,
        "enrollments": client.enrollments,
        "academicSessions": client.academic_sessions,
    }
    changes: dict[str, list[dict[str, Any]]] = {}
    refused: dict[str, str] = {}
    for name, resource in resources.items():
        try:
            changes[name] = await _all(resource.stream(limit=limit, where=where))
        except ValidationError as error:
            refused[name] = f"{error.error_count()} errors, first: {error.errors()[0]['loc']}"
            paginator = Paginator(
                transport,
                f"{rostering}/{name}",
                unwrap_key="users" if name == "students" else name,
                params={"filter": f"dateLastModified>'{since}'"},
                limit=limit,
            )
            changes[name] = await _all(paginator)
    return {"changes": changes, "client": {"model_refused": refused}}


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url", required=True, help="the provider's origin, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--limit", type=int, default=7, help="records a page")
    parser.add_argument("--changed-since", help="read only what changed after this time")
    args = parser.parse_args(argv)

    recorder = logging.getLogger("httpx")
    recorder.setLevel(logging.INFO)
    recorder.addHandler(_Recorder())
    recorder.propagate = False

    client = OneRosterClient(
        base_url=args.base_url,
        auth_url=args.token_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        timeout=30,
    )
    async with client:
        if args.changed_since:
            seen = await read_changes(client, args.limit, args.changed_since)
        else:
            seen = await read_everything(client, args.limit)
    seen["requests"] = REQUESTS
    json.dump(seen, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
