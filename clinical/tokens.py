"""Device tokens: shown once, stored only as a SHA-256 hash (they are random, so no salt)."""

from __future__ import annotations

import hashlib
import secrets


def token_generate() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
