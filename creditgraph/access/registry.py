"""Partners and subject tokens: issued by the CLI, hashed at rest, revocable.

Each public function that takes ``db_path`` opens the access database, does one thing
and closes it, so a CLI command is one call. The ``*_in`` variants work on an open
:class:`AccessDB` (the service uses those).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from creditgraph.access import audit, tokens
from creditgraph.access.db import AccessDB, from_text, to_text
from creditgraph.access.errors import UnknownPartner, UnknownToken
from creditgraph.errors import InvalidArgument


@dataclass(frozen=True)
class Partner:
    """A business that may look scores up (hotel, landlord, dating site)."""

    partner_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# -- partners ---------------------------------------------------------------------------
def add_partner(db_path: Path | str, name: str) -> tuple[str, str]:
    """Register a partner; returns ``(partner_id, api_key)``. The key is shown only now."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidArgument(f"partner name must be 1-200 characters, got {len(name)}")
    with AccessDB(db_path) as db, db.transaction() as conn:
        partner_id = tokens.new_id()
        api_key, key_hash = tokens.new_token(tokens.PARTNER_PREFIX, partner_id)
        now = db.now()
        conn.execute(
            "INSERT INTO partners (partner_id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
            (partner_id, name, key_hash, to_text(now)),
        )
        audit.append(conn, now, "partner_added", "ok", partner_id=partner_id)
    return partner_id, api_key


def revoke_partner(db_path: Path | str, partner_id: str) -> None:
    """Revoke a partner: its API key stops working at once, so no lookup can succeed."""
    with AccessDB(db_path, create=False) as db, db.transaction() as conn:
        now = db.now()
        changed = conn.execute(
            "UPDATE partners SET revoked_at = ? WHERE partner_id = ? AND revoked_at IS NULL",
            (to_text(now), partner_id),
        ).rowcount
        if not changed:
            _require_partner(conn, partner_id)
            return  # already revoked
        audit.append(conn, now, "partner_revoked", "ok", partner_id=partner_id)


def rotate_partner_key(db_path: Path | str, partner_id: str) -> str:
    """Replace an active partner's API key (e.g. after a leak); returns the new key, shown once.

    The old key stops working at the partner's next request (every request is checked
    against the database).
    """
    with AccessDB(db_path, create=False) as db, db.transaction() as conn:
        _require_partner(conn, partner_id)
        api_key, key_hash = tokens.new_token(tokens.PARTNER_PREFIX, partner_id)
        changed = conn.execute(
            "UPDATE partners SET key_hash = ? WHERE partner_id = ? AND revoked_at IS NULL",
            (key_hash, partner_id),
        ).rowcount
        if not changed:
            raise UnknownPartner(f"partner {partner_id!r} is revoked; add a new one instead")
        audit.append(conn, db.now(), "partner_key_rotated", "ok", partner_id=partner_id)
    return api_key


def list_partners(db_path: Path | str) -> list[Partner]:
    """Every partner, oldest first."""
    with AccessDB(db_path, create=False) as db:
        return partners_in(db)


def partners_in(db: AccessDB, *, active_only: bool = False) -> list[Partner]:
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT partner_id, name, created_at, revoked_at FROM partners "
            + ("WHERE revoked_at IS NULL " if active_only else "")
            + "ORDER BY created_at, partner_id"
        ).fetchall()
    return [
        Partner(
            r["partner_id"],
            r["name"],
            from_text(r["created_at"]),
            from_text(r["revoked_at"]) if r["revoked_at"] else None,
        )
        for r in rows
    ]


def authenticate_partner(db: AccessDB, api_key: str | None) -> str | None:
    """The id of the active partner holding ``api_key``, or None."""
    parts = tokens.split_token(api_key or "", tokens.PARTNER_PREFIX)
    with db.reading() as conn:
        row = conn.execute(
            "SELECT key_hash FROM partners WHERE partner_id = ? AND revoked_at IS NULL",
            (parts[0] if parts else "",),
        ).fetchone()
    ok = tokens.matches(parts[1] if parts else "", row["key_hash"] if row else None)
    return parts[0] if ok and parts else None


def partner_key_failure(db: AccessDB, api_key: str | None) -> tuple[str | None, str]:
    """Why ``api_key`` did not authenticate: ``(partner id it names, reason)`` for the audit log.

    Called only after :func:`authenticate_partner` refused it. The id is given only when it
    is shaped like one of ours; the secret never leaves this function.
    """
    return _failure(db, api_key, tokens.PARTNER_PREFIX, "partners", "partner_id")


def _failure(
    db: AccessDB, presented: str | None, prefix: str, table: str, id_column: str
) -> tuple[str | None, str]:
    if not presented:
        return None, "no_credentials"
    claimed = tokens.claimed_id(presented, prefix)
    if claimed is None:
        return None, "malformed_credentials"
    with db.reading() as conn:
        row = conn.execute(
            f"SELECT revoked_at FROM {table} WHERE {id_column} = ?", (claimed,)
        ).fetchone()
    if row is None:
        return claimed, "unknown_credentials"
    return claimed, "revoked_credentials" if row["revoked_at"] else "wrong_secret"


def _require_partner(conn: sqlite3.Connection, partner_id: str) -> None:
    if conn.execute("SELECT 1 FROM partners WHERE partner_id = ?", (partner_id,)).fetchone():
        return
    raise UnknownPartner(f"no partner with id {partner_id!r}; list them with `partner list`")


# -- subject tokens ---------------------------------------------------------------------
def issue_subject_token(db_path: Path | str, subject_id: str) -> str:
    """Issue a bearer token that lets ``subject_id`` manage their grants and read their log."""
    subject_id = subject_id.strip()
    if not subject_id or len(subject_id) > 200:
        raise InvalidArgument(f"subject id must be 1-200 characters, got {len(subject_id)}")
    with AccessDB(db_path) as db, db.transaction() as conn:
        token_id = tokens.new_id()
        token, token_hash = tokens.new_token(tokens.SUBJECT_PREFIX, token_id)
        now = db.now()
        conn.execute(
            "INSERT INTO subject_tokens (token_id, subject_id, token_hash, created_at) "
            "VALUES (?, ?, ?, ?)",
            (token_id, subject_id, token_hash, to_text(now)),
        )
        audit.append(conn, now, "subject_token_issued", "ok", subject_id=subject_id)
    return token


def revoke_subject_token(db_path: Path | str, token_or_id: str) -> None:
    """Revoke one subject token, given the token itself or its id (the part after ``cgs_``).

    Revoking a revoked token again is harmless; an unknown id raises :class:`UnknownToken`.
    """
    parts = tokens.split_token(token_or_id.strip(), tokens.SUBJECT_PREFIX)
    token_id = parts[0] if parts else token_or_id.strip()
    with AccessDB(db_path, create=False) as db:
        if revoke_subject_token_in(db, token_id) is None:
            raise UnknownToken("no subject token with that id")


def revoke_subject_tokens(db_path: Path | str, subject_id: str) -> int:
    """Revoke every live token of a subject (a lost phone); returns how many were live."""
    with AccessDB(db_path, create=False) as db:
        return revoke_subject_tokens_in(db, subject_id)


def revoke_subject_token_in(db: AccessDB, token_id: str) -> bool | None:
    """Revoke one token by id: True if it was live, False if already revoked, None if unknown."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT subject_id, revoked_at FROM subject_tokens WHERE token_id = ?", (token_id,)
        ).fetchone()
        if row is None:
            return None
        if row["revoked_at"] is not None:
            return False
        now = db.now()
        conn.execute(
            "UPDATE subject_tokens SET revoked_at = ? WHERE token_id = ?", (to_text(now), token_id)
        )
        audit.append(conn, now, "subject_token_revoked", "ok", subject_id=row["subject_id"])
        return True


def revoke_subject_tokens_in(db: AccessDB, subject_id: str) -> int:
    """Revoke every live token of ``subject_id``, one audit entry each; returns how many."""
    with db.transaction() as conn:
        now = db.now()
        live = conn.execute(
            "SELECT token_id FROM subject_tokens WHERE subject_id = ? AND revoked_at IS NULL "
            "ORDER BY created_at, token_id",
            (subject_id,),
        ).fetchall()
        for row in live:
            conn.execute(
                "UPDATE subject_tokens SET revoked_at = ? WHERE token_id = ?",
                (to_text(now), row["token_id"]),
            )
            audit.append(conn, now, "subject_token_revoked", "ok", subject_id=subject_id)
    return len(live)


def authenticate_subject(db: AccessDB, token: str | None) -> str | None:
    """The subject id a live token belongs to, or None."""
    found = authenticate_subject_token(db, token)
    return found[0] if found else None


def authenticate_subject_token(db: AccessDB, token: str | None) -> tuple[str, str] | None:
    """``(subject_id, token_id)`` of a live token, or None."""
    parts = tokens.split_token(token or "", tokens.SUBJECT_PREFIX)
    with db.reading() as conn:
        row = conn.execute(
            "SELECT subject_id, token_hash FROM subject_tokens "
            "WHERE token_id = ? AND revoked_at IS NULL",
            (parts[0] if parts else "",),
        ).fetchone()
    ok = tokens.matches(parts[1] if parts else "", row["token_hash"] if row else None)
    return (row["subject_id"], parts[0]) if ok and row and parts else None


def subject_token_failure(db: AccessDB, token: str | None) -> tuple[str | None, str]:
    """Why ``token`` did not authenticate: ``(subject whose token id it names, reason)``.

    The subject is named only when the token's id is one of theirs, so the attempt shows in
    their own access log; the secret never leaves this function.
    """
    token_id, reason = _failure(db, token, tokens.SUBJECT_PREFIX, "subject_tokens", "token_id")
    if token_id is None or reason == "unknown_credentials":
        return None, reason
    with db.reading() as conn:
        row = conn.execute(
            "SELECT subject_id FROM subject_tokens WHERE token_id = ?", (token_id,)
        ).fetchone()
    return (row["subject_id"] if row else None), reason
