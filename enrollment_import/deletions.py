"""Deleting through the service's API, as the OneRoster import and its prune do."""

from __future__ import annotations

from .importer import Client, _problem_text, _slug

# A drop's outcome (POST /enrollments/batch), as the import counts it: an
# enrollment already gone is what was asked for.
DROPPED = {
    "dropped": "deleted",
    "not-enrolled": "unchanged",
    "student-not-found": "unchanged",
    "course-not-found": "unchanged",
}


async def delete(client: Client, resource: str, id_: int, what: str) -> tuple[str, str]:
    """DELETE /{resource}/{id}: (deleted or unchanged, ""), or (a refusal, the service's reason)."""
    status, payload, _ = await client.call(
        "DELETE", f"/{resource}/{id_}", what, route=f"/{resource}/{{id}}"
    )
    if status == 204:
        return "deleted", ""
    if status == 404:
        return "unchanged", ""  # deleted by someone else meanwhile
    return _slug(payload) or str(status), _problem_text(payload) or f"answered {status}"
