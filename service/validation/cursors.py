"""Cursors: the last id of a page, bound to the list it came from.

Bound to the list's path and the values of its filters, as a digest
(cursor_scope), so a cursor of /students?q=ada given to /students?q=bob, to
/students or to /courses is refused rather than silently starting that walk
in the middle. base64url-coded with a version prefix, so clients treat it as
opaque and we may change it. v1 cursors (the last id alone, issued before
cursors were bound) stay valid where they could have come from: a list
without filters, and the feed (whose followers keep theirs for long).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from .fields import MAX_ID, Bad

_DIGITS = re.compile(r"[0-9]{1,19}")
_CURSOR_V1 = "v1:"
_CURSOR_V2 = "v2:"
_SCOPE = re.compile(r"[0-9a-f]{12}")


def encode_cursor(last_id: int, scope: str) -> str:
    raw = f"{_CURSOR_V2}{last_id}:{scope}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[int, str | None]:
    """(last id, scope); the scope is None for a v1 cursor."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text_ = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise Bad("is not a cursor from this API") from None
    scope = None
    if text_.startswith(_CURSOR_V2):
        digits, _, scope = text_.removeprefix(_CURSOR_V2).partition(":")
        if not _SCOPE.fullmatch(scope):
            raise Bad("is not a cursor from this API")
    elif text_.startswith(_CURSOR_V1):
        digits = text_.removeprefix(_CURSOR_V1)
    else:
        raise Bad("is not a cursor from this API")
    if not _DIGITS.fullmatch(digits) or not 0 < int(digits) <= MAX_ID:
        raise Bad("is not a cursor from this API")
    return int(digits), scope


def cursor_scope(path: str, given: tuple[tuple[str, str], ...]) -> str:
    """A digest of a list's path and of the filter values the client gave."""
    digest = hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=6)
    for name, value in given:
        digest.update(b"\0" + name.encode() + b"=" + value.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
