"""Configured API tokens, looked up in constant time.

Secrets are compared as SHA-256 digests with hmac.compare_digest against
every configured token, so timing reveals neither which token nor how much
of it matched.

Each token is also an OAuth client of POST /oauth/token, found by its name
(`client`), and has the key that signs its access tokens (`keys`,
service/access_tokens.py). Verified access tokens are kept apart from the
configured secrets, with their expiry checked on every use, and the oldest
go first when their bound is reached: clients get new ones every
ACCESS_TOKEN_TTL, so they would otherwise fill it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .access_tokens import AccessToken, signing_key, verify
from .config import Token

# Authorization headers already verified, so a client's every request costs a
# dict lookup rather than a hash. Only headers carrying a configured secret
# enter it; the bound stops a client holding a secret from growing it with
# spellings of the header (BEARER, extra spaces).
MAX_VERIFIED = 1024
# Access tokens verified: decoding one and its HMAC cost about 10 us, a few
# percent of a read, so each is kept by its Authorization header, up to
# this many, the oldest dropped for a new one.
MAX_ACCESS_VERIFIED = 1024


@dataclass(frozen=True, slots=True)
class TokenTable:
    entries: tuple[tuple[bytes, Token], ...]
    # A dict lookup hashes the whole presented header and compares contents
    # only on a full 64-bit hash match, which reveals nothing usable.
    by_header: dict[str, Token]
    # By name: the secret's digest and the token, for client authentication.
    by_name: dict[str, tuple[bytes, Token]]
    # By name: the key that signs the token's access tokens.
    keys: dict[str, bytes]
    # Access tokens verified, by the Authorization header that carried them.
    access_by_header: dict[str, AccessToken]

    @classmethod
    def of(cls, tokens: tuple[Token, ...]) -> TokenTable:
        entries = tuple((_digest(t.secret), t) for t in tokens)
        by_name = {t.name: (digest, t) for digest, t in entries}
        return cls(entries, {}, by_name, {t.name: signing_key(t) for t in tokens}, {})

    def find(self, presented: str, header: str | None = None) -> Token | None:
        """The token whose secret is `presented`; remember it under `header`."""
        digest = _digest(presented)
        found = None
        for expected, token in self.entries:
            if hmac.compare_digest(digest, expected):
                found = token
        if found is not None and header is not None and len(self.by_header) < MAX_VERIFIED:
            self.by_header[header] = found
        return found

    def access(self, presented: str, header: str, now: float) -> AccessToken | None:
        """The access token `presented` is, or None when it is not shaped like one.

        Raises access_tokens.Refused when it is shaped like one but not
        valid, or expired: a cached token is checked against `now` too, and
        verified afresh once expired, which refuses it.
        """
        cache = self.access_by_header
        cached = cache.get(header)
        if cached is not None:
            if now < cached.expires:
                return cached
            del cache[header]
        access = verify(self.keys, presented, now)
        if access is not None:
            if len(cache) >= MAX_ACCESS_VERIFIED:
                del cache[next(iter(cache))]  # the oldest: dicts keep insertion order
            cache[header] = access
        return access

    def client(self, name: str, secret: str) -> Token | None:
        """The token named `name` if `secret` is its secret: an OAuth client authenticated.

        The digests are compared in constant time, an unknown name's against
        a digest no secret has, so timing tells nothing of the secret and
        little of which names exist.
        """
        expected, token = self.by_name.get(name, (_NO_DIGEST, None))
        if hmac.compare_digest(_digest(secret), expected):
            return token
        return None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


# Not the digest of any secret (a SHA-256 preimage of it is not known).
_NO_DIGEST = bytes(32)
