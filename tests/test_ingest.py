"""Ingest: good data loads; every kind of bad input is rejected with file, row, field, reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import write_csv

from creditgraph.errors import SchemaError
from creditgraph.ingest.history import read_history, version_dir
from creditgraph.ingest.load import load_directory


def _load(source: Path, store, tmp_path: Path):
    return load_directory(source, store, tmp_path / "history", tmp_path / "rejects")


def test_good_data_loads_everything(tiny_dir, memory_store, tmp_path):
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.ok
    assert report.nodes_written == {"User": 3, "Merchant": 1, "Device": 1}
    assert report.edges_written == {"FRIEND": 2, "TRANSFER": 1, "PAYS": 1, "OWNS": 1, "USES": 1}
    users = memory_store.query(
        "MATCH (u:User) RETURN u.user_id AS id, u.age AS age, u.defaulted AS d ORDER BY id"
    )
    assert users["age"].tolist() == [31, 32, 33]
    assert users["d"].tolist() == [True, False, False]
    history = read_history(tmp_path / "history", "repayments")
    assert len(history) == 2 and history["days_late"].tolist() == [0, 95]


def test_reload_changes_nothing(tiny_dir, memory_store, tmp_path):
    _load(tiny_dir, memory_store, tmp_path)
    again = _load(tiny_dir, memory_store, tmp_path)
    assert sum(again.nodes_written.values()) == 0
    assert sum(again.edges_written.values()) == 0
    counts = memory_store.query("MATCH ()-[r:FRIEND]->() RETURN count(r) AS n")
    assert counts["n"].iloc[0] == 2
    assert len(read_history(tmp_path / "history", "transfers")) == 1


def test_changed_row_updates_in_place(tiny_dir, memory_store, tmp_path):
    _load(tiny_dir, memory_store, tmp_path)
    users = pd.read_csv(tiny_dir / "users.csv")
    users.loc[0, "age"] = 77
    users.to_csv(tiny_dir / "users.csv", index=False)
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.nodes_written["User"] == 1
    ages = memory_store.query("MATCH (u:User {user_id: 'u1'}) RETURN u.age AS age")
    assert ages["age"].tolist() == [77]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("age", "abc", "not a valid int"),
        ("age", "12", "below minimum"),
        ("signup_date", "2020-13-45", "not a valid date"),
        ("education", "phd", "not one of"),
        ("real_name_verified", "maybe", "not a valid bool"),
        ("city", "", "required value is missing"),
    ],
)
def test_bad_user_field_is_rejected_with_reason(
    tiny_dir, memory_store, tmp_path, field, value, reason
):
    users = pd.read_csv(tiny_dir / "users.csv", dtype=str)
    users.loc[1, field] = value
    users.to_csv(tiny_dir / "users.csv", index=False)
    report = _load(tiny_dir, memory_store, tmp_path)
    assert not report.ok
    rejects = pd.read_csv(tmp_path / "rejects" / "users.csv", dtype=str, keep_default_na=False)
    assert rejects.loc[0, "file"] == "users.csv"
    assert rejects.loc[0, "row"] == "2"
    assert rejects.loc[0, "field"] == field
    assert reason in rejects.loc[0, "reason"]
    # The good rows still load; the bad user is not in the graph.
    ids = memory_store.query("MATCH (u:User) RETURN u.user_id AS id ORDER BY id")["id"].tolist()
    assert ids == ["u1", "u3"]


def test_dangling_edges_are_rejected_not_dropped(tiny_dir, memory_store, tmp_path):
    write_csv(tiny_dir, "friendships", [
        {"src": "u1", "dst": "u2", "since": "2021-01-01", "src_interactions": 1,
         "dst_interactions": 1},
        {"src": "u1", "dst": "ghost", "since": "2021-01-01", "src_interactions": 1,
         "dst_interactions": 1},
        {"src": "u3", "dst": "u3", "since": "2021-01-01", "src_interactions": 1,
         "dst_interactions": 1},
    ])  # fmt: skip
    report = _load(tiny_dir, memory_store, tmp_path)
    friendship = next(f for f in report.files if f.file == "friendships.csv")
    assert (friendship.rows_read, friendship.rows_loaded, friendship.rows_rejected) == (3, 1, 2)
    rejects = pd.read_csv(tmp_path / "rejects" / "friendships.csv")
    assert set(rejects["reason"]) == {
        "unknown users id (not in users file)",
        "relationship to itself",
    }
    assert rejects["row"].tolist() == [2, 3]


def test_duplicate_key_rejected_first_kept(tiny_dir, memory_store, tmp_path):
    users = pd.read_csv(tiny_dir / "users.csv", dtype=str)
    pd.concat([users, users.iloc[[0]]]).to_csv(tiny_dir / "users.csv", index=False)
    report = _load(tiny_dir, memory_store, tmp_path)
    rejects = pd.read_csv(tmp_path / "rejects" / "users.csv")
    assert rejects["row"].tolist() == [4] and "duplicate key" in rejects["reason"].iloc[0]
    assert report.nodes_written["User"] == 3


def test_missing_file_names_the_file(tiny_dir, memory_store, tmp_path):
    (tiny_dir / "users.csv").unlink()
    with pytest.raises(SchemaError, match="users.csv"):
        _load(tiny_dir, memory_store, tmp_path)


def test_missing_column_names_file_and_column(tiny_dir, memory_store, tmp_path):
    users = pd.read_csv(tiny_dir / "users.csv").drop(columns=["age"])
    users.to_csv(tiny_dir / "users.csv", index=False)
    with pytest.raises(SchemaError) as error:
        _load(tiny_dir, memory_store, tmp_path)
    assert error.value.file == "users.csv" and error.value.field == "age"
    assert "users.csv" in str(error.value) and "'age'" in str(error.value)


def test_failed_load_leaves_store_as_it_was(tiny_dir, memory_store, tmp_path, monkeypatch):
    _load(tiny_dir, memory_store, tmp_path)
    users = pd.read_csv(tiny_dir / "users.csv")
    users.loc[0, "age"] = 55
    users.to_csv(tiny_dir / "users.csv", index=False)
    friendships = pd.read_csv(tiny_dir / "friendships.csv")
    friendships.loc[0, "src_interactions"] += 1  # so the load writes relationships too
    friendships.to_csv(tiny_dir / "friendships.csv", index=False)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(memory_store, "upsert_edges", broken)
    with pytest.raises(RuntimeError):
        _load(tiny_dir, memory_store, tmp_path)
    ages = memory_store.query("MATCH (u:User {user_id: 'u1'}) RETURN u.age AS age")
    assert ages["age"].tolist() == [31]


def test_parquet_input_is_accepted(tiny_dir, memory_store, tmp_path):
    users = pd.read_csv(tiny_dir / "users.csv", parse_dates=["signup_date"])
    (tiny_dir / "users.csv").unlink()
    users.to_parquet(tiny_dir / "users.parquet")
    assert _load(tiny_dir, memory_store, tmp_path).nodes_written["User"] == 3


def _with_personal_columns(source: Path) -> None:
    users = pd.read_csv(source / "users.csv", dtype=str)
    users["name"] = ["Alice Example", "Bob Sample", "Chen Placeholder"]
    users["phone"] = ["+86 138 0000 0001", "+86 138 0000 0002", None]
    users.to_csv(source / "users.csv", index=False)


def test_personal_fields_are_encrypted_and_kept_out_of_graph(tiny_dir, memory_store, tmp_path,
                                                             monkeypatch):  # fmt: skip
    from creditgraph.ingest.pii import decrypt_column, generate_key, load_key

    monkeypatch.setenv("CREDITGRAPH_KEY", generate_key())
    _with_personal_columns(tiny_dir)
    assert _load(tiny_dir, memory_store, tmp_path).ok
    stored = (version_dir(tmp_path / "history") / "personal.parquet").read_bytes()
    for secret in (b"Alice", b"Bob Sample", b"0000 0001"):
        assert secret not in stored
    for path in version_dir(tmp_path / "history").glob("*.parquet"):
        if path.name != "personal.parquet":
            assert b"Alice" not in path.read_bytes()
    personal = read_history(tmp_path / "history", "personal").set_index("user_id")
    names = decrypt_column(personal["name"], load_key(), "name")
    assert names["u1"] == "Alice Example"
    assert personal.loc["u3", "phone"] is None
    columns = memory_store.query("CALL table_info('User') RETURN name")["name"].tolist()
    assert "name" not in columns and "phone" not in columns
    # Re-loading the same rows keeps the stored ciphertext byte for byte.
    _load(tiny_dir, memory_store, tmp_path)
    again = read_history(tmp_path / "history", "personal").set_index("user_id")
    assert again.loc["u1", "name"] == personal.loc["u1", "name"]


def test_personal_fields_without_key_fail_before_writing(tiny_dir, memory_store, tmp_path,
                                                         monkeypatch):  # fmt: skip
    from creditgraph.errors import CreditGraphError

    monkeypatch.delenv("CREDITGRAPH_KEY", raising=False)
    _with_personal_columns(tiny_dir)
    with pytest.raises(CreditGraphError, match="CREDITGRAPH_KEY"):
        _load(tiny_dir, memory_store, tmp_path)
    assert memory_store.node_ids("User").empty
