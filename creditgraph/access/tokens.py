"""Bearer secrets for partners and subjects: random, shown once, stored only as a hash.

A token reads ``<prefix>_<id>_<secret>``: the id finds the row, the secret is checked
against its stored SHA-256 with a constant-time comparison. The secrets are 256 random
bits, so a fast hash is as safe as a slow password hash here and keeps lookups inside
the latency budget.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PARTNER_PREFIX = "cgp"
SUBJECT_PREFIX = "cgs"
_DUMMY_HASH = hashlib.sha256(b"creditgraph: no such token").digest()
_ID = re.compile(r"^[0-9a-f]{16}$")


def new_id() -> str:
    """A random 64-bit identifier in hex (no underscores, so it can sit inside a token)."""
    return secrets.token_hex(8)


def new_token(prefix: str, token_id: str) -> tuple[str, bytes]:
    """A fresh token for ``token_id`` and the hash to store for it."""
    secret = secrets.token_urlsafe(32)
    return f"{prefix}_{token_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a token's secret part."""
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str, prefix: str) -> tuple[str, str] | None:
    """``(id, secret)`` from a token of the given kind, or None if it is not one."""
    head, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if head != prefix or not token_id or not secret or len(token) > 256:
        return None
    return token_id, secret


def claimed_id(token: str | None, prefix: str) -> str | None:
    """The id a presented token claims, if it is shaped like one of ours (for the audit log).

    Never the secret part, and nothing else a caller typed: a malformed id gives None.
    """
    parts = split_token(token or "", prefix)
    return parts[0] if parts and _ID.match(parts[0]) else None


def matches(secret: str, stored: bytes | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash (a dummy when none is stored)."""
    ok = hmac.compare_digest(hash_secret(secret), stored if stored is not None else _DUMMY_HASH)
    return ok and stored is not None
