"""The audit log: every grant, revocation and lookup attempt, hash-chained.

Entry ``n`` stores ``hash = SHA-256(canonical JSON of its fields and prev_hash)`` where
``prev_hash`` is entry ``n-1``'s hash (64 zeros for the first), and ``audit_head`` holds
the last sequence number and hash, updated in the same transaction. Editing an entry
breaks its hash, deleting or reordering breaks the chain, and cutting the tail no longer
matches the head. Someone able to rewrite the whole file can recompute every hash, or cut
the tail and the head together, or wipe the log: record :attr:`AuditReport.head_hash`
somewhere else now and then, and :func:`verify_audit` with ``expect_head`` then fails unless
that entry is still in the chain. Entries hold pseudonymous subject ids and partner ids (for
a refused credential, the partner id the key named), never tokens or personal fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from creditgraph.access.db import AccessDB, from_text, to_text
from creditgraph.errors import InvalidArgument

GENESIS = "0" * 64
HASH = re.compile(r"^[0-9a-f]{64}$")
_COLUMNS = (
    "seq", "at", "event", "partner_id", "subject_id", "purpose", "scope",
    "outcome", "reason", "fields", "grant_id",
)  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    seq: int
    at: datetime
    event: str  # lookup | grant_created | grant_revoked | partner_added | partner_revoked ...
    outcome: str  # granted | refused | ok
    partner_id: str | None = None
    subject_id: str | None = None
    purpose: str | None = None
    scope: str | None = None
    reason: str | None = None
    fields: tuple[str, ...] = ()
    grant_id: str | None = None


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify_audit` found. ``problems`` name entries by sequence number only."""

    ok: bool
    entries: int
    head_hash: str | None
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    head_seq: int | None = None
    anchor_seq: int | None = None  # where the ``expect_head`` entry was found


def entry_hash(values: tuple[object, ...], prev_hash: str) -> str:
    """The chained hash of one entry's stored values (in ``_COLUMNS`` order)."""
    payload = json.dumps([*values, prev_hash], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def append(
    conn: sqlite3.Connection,
    at: datetime,
    event: str,
    outcome: str,
    *,
    partner_id: str | None = None,
    subject_id: str | None = None,
    purpose: str | None = None,
    scope: str | None = None,
    reason: str | None = None,
    fields: tuple[str, ...] | list[str] = (),
    grant_id: str | None = None,
) -> int:
    """Append one entry inside the caller's write transaction; returns its sequence number."""
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    values = (
        seq, to_text(at), event, partner_id, subject_id, purpose, scope,
        outcome, reason, json.dumps(list(fields)), grant_id,
    )  # fmt: skip
    digest = entry_hash(values, prev)
    conn.execute(
        f"INSERT INTO audit ({', '.join(_COLUMNS)}, prev_hash, hash) "
        f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
        (*values, prev, digest),
    )
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )
    return seq


def record(
    db: AccessDB,
    event: str,
    outcome: str,
    *,
    partner_id: str | None = None,
    subject_id: str | None = None,
    reason: str | None = None,
) -> int:
    """Append one entry in its own (group) commit; returns once it is durable."""
    return db.submit(
        lambda conn: append(
            conn,
            db.now(),
            event,
            outcome,
            partner_id=partner_id,
            subject_id=subject_id,
            reason=reason,
        )  # fmt: skip
    )


def entries_for_subject(
    db: AccessDB, subject_id: str, *, limit: int = 100, before_seq: int | None = None
) -> list[AuditEntry]:
    """The newest entries about one subject (lookups of their score and their grants)."""
    with db.reading() as conn:
        rows = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE subject_id = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT ?",
            (subject_id, before_seq if before_seq is not None else 2**62, limit),
        ).fetchall()
    return [_entry(row) for row in rows]


def all_entries(db: AccessDB) -> list[AuditEntry]:
    """Every entry, oldest first (for operators and tests)."""
    with db.reading() as conn:
        rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY seq").fetchall()
    return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"], at=from_text(row["at"]), event=row["event"], outcome=row["outcome"],
        partner_id=row["partner_id"], subject_id=row["subject_id"], purpose=row["purpose"],
        scope=row["scope"], reason=row["reason"], fields=tuple(json.loads(row["fields"])),
        grant_id=row["grant_id"],
    )  # fmt: skip


def verify_audit(
    db_path: Path | str, *, max_problems: int = 20, expect_head: str | None = None
) -> AuditReport:
    """Recompute the hash chain of the audit log at ``db_path`` and report any break.

    ``expect_head``: a head hash recorded earlier (an anchor). The log may have grown since,
    but that entry must still be in the chain, else entries were cut from the end together
    with the head, or the log was rewritten or wiped.
    """
    if expect_head is not None:
        expect_head = expect_head.strip().lower()
        if not HASH.match(expect_head):
            raise InvalidArgument("an anchored head is a SHA-256 hash: 64 hexadecimal characters")
    with AccessDB(db_path, create=False) as db, db.reading() as conn:
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        cursor = conn.execute(
            f"SELECT {', '.join(_COLUMNS)}, prev_hash, hash FROM audit ORDER BY seq"
        )
        problems: list[str] = []
        first_bad: int | None = None
        prev, expected_seq, count = GENESIS, 1, 0
        anchor_seq: int | None = None

        def flag(seq: int, what: str) -> None:
            nonlocal first_bad
            first_bad = seq if first_bad is None else first_bad
            if len(problems) < max_problems:
                problems.append(f"entry {seq}: {what}")

        for row in cursor:
            count += 1
            seq = row["seq"]
            if seq != expected_seq:
                flag(seq, f"expected entry {expected_seq} here (entries deleted or renumbered)")
            if row["prev_hash"] != prev:
                flag(seq, "does not follow the entry before it (deleted or reordered)")
            values = tuple(row[c] for c in _COLUMNS)
            if entry_hash(values, row["prev_hash"]) != row["hash"]:
                flag(seq, "hash does not match its contents (edited)")
            if row["hash"] == expect_head:
                anchor_seq = seq
            prev, expected_seq = row["hash"], seq + 1
        last_seq = expected_seq - 1
        if head is None and count:
            flag(last_seq, "the log has entries but no recorded head")
        elif head is not None and (head["seq"] != last_seq or head["hash"] != prev):
            flag(
                last_seq,
                f"the log ends at entry {last_seq} but the head records entry "
                f"{head['seq']} (entries cut from the end, or the head was changed)",
            )
        if expect_head is not None and anchor_seq is None:
            first_bad = last_seq + 1 if first_bad is None else first_bad
            problems.insert(
                0,
                f"the anchored head {expect_head[:16]}… is not in the log of {count} entries "
                "(entries cut from the end, or the log rewritten or wiped)",
            )
    return AuditReport(
        ok=not problems and first_bad is None,
        entries=count,
        head_hash=prev if count else None,
        first_bad_seq=first_bad,
        problems=problems,
        head_seq=last_seq if count else None,
        anchor_seq=anchor_seq,
    )
