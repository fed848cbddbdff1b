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


@dataclass(frozen=True, slots=True)
class TokenTable:
    entries: tuple[tuple[bytes, Token], ...]
    # Secrets already verified, so a client's every request does not pay for
    # a hash. Only configured secrets ever enter it, so it stays small; a
    # dict lookup hashes the whole presented string and compares contents
    # only on a full 64-bit hash match, which reveals nothing usable.
    verified: dict[str, Token]

    @classmethod
    def of(cls, tokens: tuple[Token, ...]) -> TokenTable:
        return cls(tuple((_digest(t.secret), t) for t in tokens), {})

    def find(self, presented: str) -> Token | None:
        if (token := self.verified.get(presented)) is not None:
            return token
        digest = _digest(presented)
        found = None
        for expected, token in self.entries:
            if hmac.compare_digest(digest, expected):
                found = token
        if found is not None:
            self.verified[presented] = found
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
