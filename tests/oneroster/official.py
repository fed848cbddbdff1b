"""1EdTech's official OpenAPI document of the OneRoster 1.2 rostering service.

The document is onerosterv1p2rostersservice_openapi3_v1p0.json, published in
1EdTech/oneroster-bootcamp (src/main/resources/oas/). It is 1EdTech's, under
1EdTech's licence, and is not kept in this repository: the tests read it
from, first found,

- $ONEROSTER_OPENAPI_DOCUMENT (a path),
- tests/oneroster/ beside this file,
- ../shared/oneroster/ beside the clone (where CI's copy of shared/ is),
- .data/oneroster/ in the clone (a developer's copy; ignored by git).

Without it the tests that need it are skipped saying where to put it, or
fail where REQUIRE_ONEROSTER_DOCUMENT=1 (.ci/run sets it when it finds the
document).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from service.app import create_app
from service.config import Config

from .clients import PROJECT_ROOT, Unavailable

NAME = "onerosterv1p2rostersservice_openapi3_v1p0.json"
TITLE = "OneRoster OpenAPI (JSON) Definition"
# Where the provider's paths start; the document's own paths are relative to it.
PREFIX = "/ims/oneroster/rostering/v1p2"


def places() -> list[Path]:
    found = []
    if chosen := os.environ.get("ONEROSTER_OPENAPI_DOCUMENT"):
        found.append(Path(chosen))
    found += [
        Path(__file__).with_name(NAME),
        PROJECT_ROOT.parent / "shared" / "oneroster" / NAME,
        PROJECT_ROOT / ".data" / "oneroster" / NAME,
    ]
    return found


def load() -> dict[str, Any]:
    """The document, checked to be the rostering service's OpenAPI 3.0 document."""
    for place in places():
        if place.is_file():
            document = json.loads(place.read_text(encoding="utf-8"))
            assert document.get("openapi", "").startswith("3.0"), place
            assert document.get("info", {}).get("title") == TITLE, place
            assert document.get("info", {}).get("version") == "1.2", place
            return document
    raise Unavailable(
        f"1EdTech's OpenAPI document {NAME} (from 1EdTech/oneroster-bootcamp, "
        "src/main/resources/oas/) is not here; looked at: " + ", ".join(str(p) for p in places())
    )


def unavailable(reason: str) -> None:
    """Skip the test saying why, or fail it where the document is required."""
    if os.environ.get("REQUIRE_ONEROSTER_DOCUMENT") == "1":
        pytest.fail(f"REQUIRE_ONEROSTER_DOCUMENT=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def provider_paths(app: web.Application | None = None) -> frozenset[str]:
    """The provider's GET paths, as the app's router has them (by default an app built
    from the default settings: create_app does no I/O)."""
    app = app or create_app(Config())
    return frozenset(
        resource.canonical
        for resource in app.router.resources()
        if resource.canonical.startswith(PREFIX) and any(r.method == "GET" for r in resource)
    )


def shape(path: str) -> str:
    """A path with its parameters unnamed: /classes/{classSourcedId}/students -> /classes/{}/students."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def served_operations(document: dict[str, Any], provider_paths: set[str]) -> list[str]:
    """The document's GET paths that the provider serves, judged by the paths' shapes.

    `provider_paths` are the provider's own, with or without PREFIX.
    """
    served = {shape(p.removeprefix(PREFIX)) for p in provider_paths}
    return sorted(
        path for path, item in document["paths"].items() if "get" in item and shape(path) in served
    )


# The record types of the document's collections, whose `required` lists a
# selection (`fields=`) or a deletion (a tombstone) cannot keep.
RECORD_TYPES = (
    "AcademicSessionDType",
    "ClassDType",
    "CourseDType",
    "EnrollmentDType",
    "OrgDType",
    "UserDType",
)


def with_required(document: dict[str, Any], required: set[str]) -> dict[str, Any]:
    """A copy of the document whose record types require only what they did of `required`.

    Nothing else changes: types, formats, enums and additionalProperties
    still hold.
    """
    changed = copy.deepcopy(document)
    for name in RECORD_TYPES:
        schema = changed["components"]["schemas"][name]
        schema["required"] = [field for field in schema["required"] if field in required]
    return changed


def with_code_minor(document: dict[str, Any], code: str) -> dict[str, Any]:
    """A copy of the document whose codeMinor vocabulary also has `code`; nothing else changes."""
    changed = copy.deepcopy(document)
    schema = changed["components"]["schemas"]["imsx_CodeMinorFieldDType"]
    schema["properties"]["imsx_codeMinorFieldValue"]["enum"].append(code)
    return changed
