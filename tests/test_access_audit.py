"""The hash-chained audit log: any edit, deletion, reordering or cut is caught by verify."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from creditgraph.access import add_partner, issue_subject_token, verify_audit
from creditgraph.access.audit import all_entries, entries_for_subject
from creditgraph.access.db import AccessDB
from creditgraph.access.errors import AccessDatabaseMissing, Refused
from creditgraph.access.grants import create_grant, revoke_grant
from creditgraph.access.lookup import lookup
from creditgraph.access.scores import FACTORS, ScoreRecord


class OneScore:
    """A score source holding one subject (the lookup under test reads through it)."""

    def get(self, subject_id: str) -> ScoreRecord | None:
        if subject_id != "alice":
            return None
        return ScoreRecord(
            700.0, 0.02, datetime(2025, 1, 1, tzinfo=UTC), "m1", dict.fromkeys(FACTORS, 0.0), []
        )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A log of 9 entries: partners, a token, a grant, lookups granted and refused, a revoke."""
    path = tmp_path / "access.sqlite"
    hotel, _ = add_partner(path, "Grand Hotel")
    add_partner(path, "City Lettings")
    issue_subject_token(path, "alice")
    with AccessDB(path) as db:
        grant = create_grant(
            db,
            subject_id="alice",
            partner_id=hotel,
            purpose="rental",
            scope="band",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        lookup(db, OneScore(), partner_id=hotel, subject_id="alice", purpose="rental", scope="band")
        for subject in ("alice", "bob"):
            with pytest.raises(Refused):
                lookup(
                    db,
                    OneScore(),
                    partner_id=hotel,
                    subject_id=subject,
                    purpose="dating",
                    scope="band",
                )
        revoke_grant(db, "alice", grant.grant_id)
        with pytest.raises(Refused):
            lookup(
                db, OneScore(), partner_id=hotel, subject_id="alice", purpose="rental", scope="band"
            )
    return path


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped: what an attacker would do."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    return conn


def test_an_untouched_log_verifies(db_path: Path) -> None:
    report = verify_audit(db_path)
    assert report.ok and report.entries == 9 and report.problems == []
    assert report.head_hash is not None and len(report.head_hash) == 64
    with AccessDB(db_path) as db:
        events = [(e.event, e.outcome, e.reason) for e in all_entries(db)]
    assert events == [
        ("partner_added", "ok", None),
        ("partner_added", "ok", None),
        ("subject_token_issued", "ok", None),
        ("grant_created", "ok", None),
        ("lookup", "granted", None),
        ("lookup", "refused", "purpose_mismatch"),
        ("lookup", "refused", "no_grant"),
        ("grant_revoked", "ok", None),
        ("lookup", "refused", "revoked"),
    ]


def test_the_log_is_append_only(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET outcome = 'refused' WHERE seq = 5")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 5")


def test_an_edited_entry_fails(db_path: Path) -> None:
    raw(db_path).execute("UPDATE audit SET partner_id = 'someone-else' WHERE seq = 5")
    report = verify_audit(db_path)
    assert not report.ok and report.first_bad_seq == 5
    assert "edited" in report.problems[0]


def test_a_deleted_entry_fails(db_path: Path) -> None:
    raw(db_path).execute("DELETE FROM audit WHERE seq = 6")
    report = verify_audit(db_path)
    assert not report.ok and report.first_bad_seq == 7


def test_reordered_entries_fail(db_path: Path) -> None:
    conn = raw(db_path)
    conn.execute("UPDATE audit SET seq = -1 WHERE seq = 6")
    conn.execute("UPDATE audit SET seq = 6 WHERE seq = 7")
    conn.execute("UPDATE audit SET seq = 7 WHERE seq = -1")
    report = verify_audit(db_path)
    assert not report.ok and report.first_bad_seq == 6


def test_a_recomputed_entry_still_breaks_the_chain(db_path: Path) -> None:
    from creditgraph.access.audit import _COLUMNS, entry_hash

    conn = raw(db_path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM audit WHERE seq = 5").fetchone()
    values = tuple("refused" if c == "outcome" else row[c] for c in _COLUMNS)
    conn.execute(
        "UPDATE audit SET outcome = 'refused', hash = ? WHERE seq = 5",
        (entry_hash(values, row["prev_hash"]),),
    )
    report = verify_audit(db_path)
    assert not report.ok and report.first_bad_seq == 6  # the next entry no longer follows


def test_a_cut_tail_fails(db_path: Path) -> None:
    raw(db_path).execute("DELETE FROM audit WHERE seq >= 8")
    report = verify_audit(db_path)
    assert not report.ok and "cut from the end" in report.problems[0]


def test_problems_name_no_subject(db_path: Path) -> None:
    raw(db_path).execute("UPDATE audit SET subject_id = 'mallory' WHERE subject_id = 'alice'")
    report = verify_audit(db_path)
    assert not report.ok
    assert not any("alice" in p or "mallory" in p for p in report.problems)


def test_a_subject_reads_only_their_own_entries(db_path: Path) -> None:
    with AccessDB(db_path) as db:
        alice = entries_for_subject(db, "alice")
        bob = entries_for_subject(db, "bob")
        page = entries_for_subject(db, "alice", limit=2, before_seq=alice[0].seq)
    assert [e.seq for e in alice] == [9, 8, 6, 5, 4, 3]
    assert [(e.seq, e.reason) for e in bob] == [(7, "no_grant")]
    assert [e.seq for e in page] == [8, 6]


def test_verify_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(AccessDatabaseMissing):
        verify_audit(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()


def test_an_anchored_head_catches_a_cut_tail_and_a_wiped_log(db_path: Path) -> None:
    anchor = verify_audit(db_path)
    assert (anchor.head_seq, anchor.anchor_seq) == (9, None)
    assert verify_audit(db_path, expect_head=anchor.head_hash).anchor_seq == 9
    add_partner(db_path, "Later Partner")  # the log grows after anchoring: still fine
    grown = verify_audit(db_path, expect_head=anchor.head_hash.upper())
    assert grown.ok and (grown.entries, grown.anchor_seq) == (10, 9)
    conn = raw(db_path)  # cut the tail and move the head back with it: consistent...
    conn.execute("DELETE FROM audit WHERE seq >= 8")
    conn.execute("UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit WHERE seq = 7)")
    assert verify_audit(db_path).ok  # ...so only an anchor can tell
    cut = verify_audit(db_path, expect_head=anchor.head_hash)
    assert not cut.ok and cut.first_bad_seq == 8
    assert "anchored head" in cut.problems[0] and "cut from the end" in cut.problems[0]
    conn = raw(db_path)  # opening the database (verify) put the guard triggers back
    conn.execute("DELETE FROM audit")
    conn.execute("DELETE FROM audit_head")
    assert verify_audit(db_path).ok  # an empty log has nothing to contradict
    wiped = verify_audit(db_path, expect_head=anchor.head_hash)
    assert not wiped.ok and wiped.entries == 0 and "wiped" in wiped.problems[0]


def test_an_anchor_must_be_a_hash(db_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        verify_audit(db_path, expect_head="abc123")
