"""The access commands as a user runs them: partner add, subject token, audit verify, rotate-key."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
from conftest import tiny_world
from typer.testing import CliRunner

from creditgraph.access.db import AccessDB, default_db_path
from creditgraph.access.grants import create_grant
from creditgraph.access.pii import decrypt_column, generate_key
from creditgraph.cli import app
from ingest.history import read_history


def test_partner_subject_and_audit_commands(tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["partner", "add", "Grand Hotel", *data])
    assert added.exit_code == 0 and "cgp_" in added.output
    token = runner.invoke(app, ["subject", "token", "u0000001", *data])
    assert token.exit_code == 0 and "cgs_" in token.output
    listed = runner.invoke(app, ["partner", "list", *data])
    assert "Grand Hotel" in listed.output
    partner_id = added.output.split("partner id: ")[1].split()[0]
    db = AccessDB(default_db_path(tmp_path))
    create_grant(db, subject_id="u0000001", partner_id=partner_id, purpose="hotel_deposit",
                 scope="band", expires_at=datetime.now(UTC) + timedelta(days=30))  # fmt: skip
    db.close()
    verified = runner.invoke(app, ["audit", "verify", *data])
    assert verified.exit_code == 0 and "intact" in verified.output
    # Tamper with the log underneath (dropping the guard trigger first): verify must fail.
    with sqlite3.connect(default_db_path(tmp_path)) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET purpose = 'rental' WHERE seq = 1")
    broken = runner.invoke(app, ["audit", "verify", *data])
    assert broken.exit_code == 1


def test_rotate_key_command_reencrypts_personal_data(tmp_path, monkeypatch):
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("CREDITGRAPH_KEY", old)
    source = tiny_world(tmp_path / "in")
    users = pd.read_csv(source / "users.csv", dtype=str)
    users["name"] = ["Ann One", "Ben Two", "Cy Three"]
    users.to_csv(source / "users.csv", index=False)
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "d")]
    assert runner.invoke(app, ["ingest", str(source), *data]).exit_code == 0
    monkeypatch.setenv("CREDITGRAPH_NEW_KEY", new)
    rotated = runner.invoke(app, ["rotate-key", *data])
    assert rotated.exit_code == 0, rotated.output
    stored = read_history(tmp_path / "d" / "history", "personal")
    from creditgraph.access.pii import load_key

    monkeypatch.setenv("CREDITGRAPH_KEY", new)
    names = decrypt_column(stored["name"], load_key(), "name")
    assert sorted(names) == ["Ann One", "Ben Two", "Cy Three"]
