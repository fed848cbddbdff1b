"""Configured API tokens, looked up in constant time.

Secrets are compared as SHA-256 digests with hmac.compare_digest against
every configured token, so timing reveals neither which token nor how much
of it matched.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .config import Token

# Authorization headers already verified, so a client's every request costs a
# dict lookup rather than a hash. Only headers carrying a configured secret
# enter it; the bound stops a client holding a secret from growing it with
# spellings of the header (BEARER, extra spaces).
MAX_VERIFIED = 1024


@dataclass(frozen=True, slots=True)
class TokenTable:
    entries: tuple[tuple[bytes, Token], ...]
    # A dict lookup hashes the whole presented header and compares contents
    # only on a full 64-bit hash match, which reveals nothing usable.
    by_header: dict[str, Token]

    @classmethod
    def of(cls, tokens: tuple[Token, ...]) -> TokenTable:
        return cls(tuple((_digest(t.secret), t) for t in tokens), {})

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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
