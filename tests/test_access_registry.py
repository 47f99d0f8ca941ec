"""Partners and subject tokens, as the CLI drives them: real SQLite, real hashing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from creditgraph.access import (
    add_partner,
    issue_subject_token,
    list_partners,
    revoke_partner,
    revoke_subject_token,
    revoke_subject_tokens,
    rotate_partner_key,
    verify_audit,
)
from creditgraph.access.audit import all_entries
from creditgraph.access.db import AccessDB, default_db_path
from creditgraph.access.errors import AccessDatabaseMissing, UnknownPartner, UnknownToken
from creditgraph.access.registry import authenticate_partner, authenticate_subject


def test_partner_keys_work_until_rotated_or_revoked(tmp_path: Path) -> None:
    db_path = default_db_path(tmp_path)
    partner_id, key = add_partner(db_path, "  Grand Hotel ")
    assert db_path == tmp_path / "access" / "access.sqlite" and db_path.exists()
    assert key.startswith(f"cgp_{partner_id}_") and len(key) > 50
    with AccessDB(db_path) as db:
        assert authenticate_partner(db, key) == partner_id
        assert authenticate_partner(db, key + "x") is None
        assert authenticate_partner(db, None) is None
        assert authenticate_partner(db, "cgp_nobody_secret") is None
    new_key = rotate_partner_key(db_path, partner_id)
    with AccessDB(db_path) as db:
        assert authenticate_partner(db, key) is None
        assert authenticate_partner(db, new_key) == partner_id
    revoke_partner(db_path, partner_id)
    revoke_partner(db_path, partner_id)  # twice is harmless
    with AccessDB(db_path) as db:
        assert authenticate_partner(db, new_key) is None
    [partner] = list_partners(db_path)
    assert (partner.name, partner.active) == ("Grand Hotel", False)
    with pytest.raises(UnknownPartner):
        revoke_partner(db_path, "0000000000000000")
    assert verify_audit(db_path).entries == 3  # added, key rotated, revoked once


def test_subject_tokens_are_revocable_by_token_or_id(tmp_path: Path) -> None:
    db_path = tmp_path / "access.sqlite"
    first = issue_subject_token(db_path, "alice")
    second = issue_subject_token(db_path, "alice")
    with AccessDB(db_path) as db:
        assert authenticate_subject(db, first) == authenticate_subject(db, second) == "alice"
        assert authenticate_subject(db, first.replace("cgs_", "cgp_")) is None
    revoke_subject_token(db_path, first)
    revoke_subject_token(db_path, second.split("_")[1])
    with AccessDB(db_path) as db:
        assert authenticate_subject(db, first) is None
        assert authenticate_subject(db, second) is None
    with pytest.raises(UnknownToken):
        revoke_subject_token(db_path, "ffffffffffffffff")
    with pytest.raises(ValueError, match="subject id"):
        issue_subject_token(db_path, "  ")


def test_commands_on_a_missing_database_say_so(tmp_path: Path) -> None:
    with pytest.raises(AccessDatabaseMissing, match="no access database"):
        revoke_partner(tmp_path / "none.sqlite", "x")
    with pytest.raises(AccessDatabaseMissing):
        list_partners(tmp_path / "none.sqlite")


def test_a_revoked_partner_gets_no_new_key(tmp_path: Path) -> None:
    db_path = tmp_path / "access.sqlite"
    partner_id, _ = add_partner(db_path, "Grand Hotel")
    revoke_partner(db_path, partner_id)
    with pytest.raises(UnknownPartner, match="revoked"):
        rotate_partner_key(db_path, partner_id)
    with pytest.raises(UnknownPartner):
        rotate_partner_key(db_path, "0000000000000000")
    assert verify_audit(db_path).entries == 2  # no rotation recorded


def test_a_subject_loses_every_token_at_once(tmp_path: Path) -> None:
    db_path = tmp_path / "access.sqlite"
    alice = [issue_subject_token(db_path, "alice") for _ in range(3)]
    bob = issue_subject_token(db_path, "bob")
    revoke_subject_token(db_path, alice[0])
    assert revoke_subject_tokens(db_path, "alice") == 2  # the two still live
    assert revoke_subject_tokens(db_path, "alice") == 0
    with AccessDB(db_path) as db:
        assert [authenticate_subject(db, t) for t in alice] == [None] * 3
        assert authenticate_subject(db, bob) == "bob"
        revoked = [e.subject_id for e in all_entries(db) if e.event == "subject_token_revoked"]
    assert revoked == ["alice"] * 3


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_access_database_is_private(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        db_path = default_db_path(tmp_path)
        add_partner(db_path, "Grand Hotel")  # creates the folder and the database
        with AccessDB(db_path) as db, db.transaction() as conn:  # WAL files exist while open
            conn.execute("SELECT 1")
            files = sorted(db_path.parent.iterdir())
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(old)
    assert modes == {"access.sqlite": 0o600, "access.sqlite-wal": 0o600,
                     "access.sqlite-shm": 0o600}  # fmt: skip
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_an_old_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    db_path = tmp_path / "access.sqlite"
    add_partner(db_path, "Grand Hotel")
    db_path.chmod(0o644)
    list_partners(db_path)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
