"""Access tokens of POST /oauth/token: short-lived, self-contained, signed.

An access token is `<payload>.<signature>`, each base64url without padding:

- payload: the JSON object `{"client": name, "scope": "...", "exp": seconds}`,
  `scope` the OAuth scopes granted, space-separated, `exp` a Unix time;
- signature: HMAC-SHA256 of the payload's base64url text, keyed with the
  client's signing key.

A client's signing key is HKDF-SHA256 (RFC 5869) of its configured secret,
with a fixed label naming this use as the salt and the client's name as the
info: it signs access tokens of that client and nothing else, and tells
nothing of the secret.

Nothing is stored, so every worker process and every instance configured
with the same tokens verifies what any of them issued, with no database and
no cache to keep. The price: an access token cannot be revoked alone. It is
good until `exp` (ACCESS_TOKEN_TTL after it was issued), unless its client's
secret is rotated or the client removed, which makes every access token of
that client fail at once. Instances compare `exp` with their own clocks:
keep them in step (NTP).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .config import Token

# The OneRoster 1.2 rostering scopes, the only ones the token endpoint grants,
# in the order an answer lists them.
ROSTER_CORE_READONLY = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
ROSTER_READONLY = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
SCOPES = (ROSTER_CORE_READONLY, ROSTER_READONLY)

# HKDF's salt: a key derived from the same secret for any other use differs.
LABEL = b"enrollment-service/oauth/access-token/v1"
# Far beyond any token issued to a client with a name of sane length: a
# longer Authorization value is not decoded at all.
MAX_LENGTH = 4096
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
# Signs the tokens that name an unknown client, so that they cost what a
# known client's do and timing does not tell which names are configured.
_NOBODY = os.urandom(32)


class Refused(Exception):
    """Shaped like an access token but not to be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token verified and not expired."""

    name: str  # its client's: the name of the configured token it was issued to
    scopes: frozenset[str]
    expires: int  # Unix time
    # What it may do on the service's own routes (auth.check_scope): read.
    scope: str = "read"


def signing_key(token: Token) -> bytes:
    """HKDF-SHA256 of the token's secret: one 32-byte block, the token's name as the info."""
    secret = token.secret.encode("utf-8", "surrogatepass")
    pseudorandom = hmac.digest(LABEL, secret, "sha256")
    info = token.name.encode("utf-8", "surrogatepass")
    return hmac.digest(pseudorandom, info + b"\x01", "sha256")


def issue(key: bytes, client: str, scopes: Iterable[str], expires: int) -> str:
    """An access token of `client` for `scopes` until `expires`, signed with `key`."""
    claims = {"client": client, "scope": " ".join(scopes), "exp": expires}
    payload = _encode(json.dumps(claims, separators=(",", ":")).encode("ascii"))
    return f"{payload}.{_signature(key, payload)}"


def verify(keys: Mapping[str, bytes], presented: str, now: float) -> AccessToken | None:
    """The access token `presented` is, or None when it is not shaped like one.

    `keys` maps each client's name to its signing key. Raises Refused when
    `presented` is shaped like an access token but its signature is wrong
    (forged, altered, or signed with a secret no longer configured) or it
    has expired. The signature is compared in constant time, and checked
    before anything the payload says is believed.
    """
    if len(presented) > MAX_LENGTH:
        return None
    match = _TOKEN.fullmatch(presented)
    if match is None:
        return None
    payload, signature = match.groups()
    try:
        claims = json.loads(_decode(payload))
    except (binascii.Error, ValueError):  # not base64url, not UTF-8, not JSON
        return None
    if not isinstance(claims, dict):
        return None
    client, scope, expires = claims.get("client"), claims.get("scope"), claims.get("exp")
    if not (isinstance(client, str) and isinstance(scope, str) and type(expires) is int):
        return None
    known = client in keys
    expected = _signature(keys[client] if known else _NOBODY, payload)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")) or not known:
        raise Refused("the token is not valid")
    if now >= expires:
        raise Refused("the access token has expired: get a new one from POST /oauth/token")
    return AccessToken(name=client, scopes=frozenset(scope.split()), expires=expires)


def _signature(key: bytes, payload: str) -> str:
    return _encode(hmac.digest(key, payload.encode("ascii"), "sha256"))


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    # Only the base64url alphabet reaches here (_TOKEN), so nothing is skipped.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
