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

    @classmethod
    def of(cls, tokens: tuple[Token, ...]) -> TokenTable:
        return cls(tuple((_digest(t.secret), t) for t in tokens))

    def find(self, presented: str) -> Token | None:
        digest = _digest(presented)
        found = None
        for expected, token in self.entries:
            if hmac.compare_digest(digest, expected):
                found = token
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
