"""The access commands as a user runs them: partner add/rotate-key, subject token/revoke-token,
audit verify, rotate-key, and serve."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
from conftest import tiny_world
from test_access_scores import frame, publish
from typer.testing import CliRunner

from creditgraph.access.audit import all_entries
from creditgraph.access.db import AccessDB, default_db_path
from creditgraph.access.grants import create_grant
from creditgraph.access.scores import ParquetScoreSource
from creditgraph.access.service import create_app, running_server
from creditgraph.cli import app
from creditgraph.ingest.history import read_history
from creditgraph.ingest.pii import decrypt_column, generate_key


def _grant_alice_rental(db_path: Path, partner_id: str) -> None:
    """Subject alice lets ``partner_id`` see her score for a rental, for a day."""
    with AccessDB(db_path) as db:
        create_grant(db, subject_id="alice", partner_id=partner_id, purpose="rental",
                     scope="score", expires_at=datetime.now(UTC) + timedelta(days=1))  # fmt: skip


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
    from creditgraph.ingest.pii import load_key

    monkeypatch.setenv("CREDITGRAPH_KEY", new)
    names = decrypt_column(stored["name"], load_key(), "name")
    assert sorted(names) == ["Ann One", "Ben Two", "Cy Three"]


def shown(output: str, label: str) -> str:
    """The value printed after ``label`` (Rich may wrap long lines: join them back)."""
    return re.sub(r"\s+", "", output.split(label, 1)[1]).split("\n")[0]


def test_audit_verify_prints_the_full_head_and_checks_an_anchor(tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    runner.invoke(app, ["partner", "add", "Grand Hotel", *data])
    runner.invoke(app, ["subject", "token", "u0000001", *data])
    verified = runner.invoke(app, ["audit", "verify", *data])
    assert verified.exit_code == 0
    head = re.search(r"\b[0-9a-f]{64}\b", verified.output.replace("\n", ""))
    assert head is not None, verified.output  # the whole hash, to be recorded elsewhere
    anchored = runner.invoke(app, ["audit", "verify", "--expect-head", head.group(), *data])
    assert anchored.exit_code == 0 and "anchored head found at entry 2" in anchored.output
    with sqlite3.connect(default_db_path(tmp_path)) as conn:  # cut the tail and the head
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DELETE FROM audit WHERE seq = 2")
        conn.execute("UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit)")
    assert runner.invoke(app, ["audit", "verify", *data]).exit_code == 0
    cut = runner.invoke(app, ["audit", "verify", "--expect-head", head.group(), *data])
    assert cut.exit_code == 1 and "anchored head" in cut.output
    for path in default_db_path(tmp_path).parent.iterdir():  # the log wiped altogether
        path.unlink()
    wiped = runner.invoke(app, ["audit", "verify", "--expect-head", head.group(), *data])
    assert wiped.exit_code == 2 and "no access database" in wiped.output
    assert "Traceback" not in wiped.output
    bad = runner.invoke(app, ["audit", "verify", "--expect-head", "1234", *data])
    assert bad.exit_code == 2 and "64 hexadecimal" in bad.output


def test_rotate_key_and_revoke_token_commands_take_effect_at_once(tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["partner", "add", "Grand Hotel", *data])
    partner_id, old_key = shown(added.output, "partner id:")[:16], shown(added.output, "):")
    tokens = [shown(runner.invoke(app, ["subject", "token", "alice", *data]).output, "):")
              for _ in range(3)]  # fmt: skip
    db_path = default_db_path(tmp_path)
    _grant_alice_rental(db_path, partner_id)
    frame(user_id=["alice", "bob"]).to_parquet(tmp_path / "scores.parquet")
    server = create_app(db_path, ParquetScoreSource(tmp_path / "scores.parquet"))
    lookup = {"subject_id": "alice", "purpose": "rental", "scope": "score"}
    with running_server(server) as url, httpx.Client(base_url=url, timeout=5) as http:

        def status(key: str) -> int:
            return http.post("/v1/lookup", json=lookup, headers={"X-API-Key": key}).status_code

        def grants(token: str) -> int:
            return http.get("/v1/grants", headers={"Authorization": f"Bearer {token}"}).status_code

        assert status(old_key) == 200
        rotated = runner.invoke(app, ["partner", "rotate-key", partner_id, *data])
        assert rotated.exit_code == 0, rotated.output
        new_key = shown(rotated.output, "(shown once):")
        assert new_key.startswith(f"cgp_{partner_id}_") and new_key != old_key
        assert (status(old_key), status(new_key)) == (401, 200)  # the very next request

        assert [grants(t) for t in tokens] == [200] * 3
        one = runner.invoke(app, ["subject", "revoke-token", tokens[0], *data])  # the token
        by_id = runner.invoke(app, ["subject", "revoke-token", tokens[1].split("_")[1], *data])
        assert one.exit_code == by_id.exit_code == 0
        assert tokens[0] not in one.output  # a secret is never printed back
        assert [grants(t) for t in tokens] == [401, 401, 200]
        every = runner.invoke(app, ["subject", "revoke-token", "--all", "alice", *data])
        assert every.exit_code == 0 and "1 live token" in every.output
        assert grants(tokens[2]) == 401
    unknown = runner.invoke(app, ["partner", "rotate-key", "0000000000000000", *data])
    assert unknown.exit_code == 2 and "no partner" in unknown.output
    neither = runner.invoke(app, ["subject", "revoke-token", *data])
    assert neither.exit_code == 2
    with AccessDB(db_path) as db:
        events = [e.event for e in all_entries(db)]
    assert events.count("partner_key_rotated") == 1
    assert events.count("subject_token_revoked") == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_from_the_published_run(tmp_path):
    scores_dir = tmp_path / "scores"
    publish(scores_dir, "run-1", frame(user_id=["alice", "bob"]))
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["partner", "add", "Grand Hotel", *data])
    partner_id, key = shown(added.output, "partner id:")[:16], shown(added.output, "):")
    _grant_alice_rental(default_db_path(tmp_path), partner_id)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from creditgraph.cli import main; main()", "serve", *data,
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline, answer = time.monotonic() + 120, None  # a busy machine imports slowly
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while answer is None or answer.status_code != 200:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "serve did not answer"
                try:
                    answer = http.post("/v1/lookup", headers={"X-API-Key": key},
                                       json={"subject_id": "alice", "purpose": "rental",
                                             "scope": "score"})  # fmt: skip
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                assert answer.status_code in (200, 503), answer.text  # 503: still loading
    finally:
        server.terminate()
        server.wait(10)
    assert answer.json()["answer"]["score"] == 702


def test_serve_without_published_scores_says_so(tmp_path):
    (tmp_path / "scores").mkdir()
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), "--port", "1"])
    assert result.exit_code == 2 and "no scores published" in " ".join(result.output.split())
    assert not default_db_path(tmp_path).exists()
