"""Ingest keeps every real row once (issue 14): event rows, absurd values, reversed pairs, and
ambiguous inputs, each through the real validator, loader and embedded store."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv

from creditgraph import pipeline
from creditgraph.errors import SchemaError
from creditgraph.ingest.history import read_history
from creditgraph.ingest.load import load_directory
from creditgraph.ingest.schemas import DateWindow
from creditgraph.settings import load_settings

PAY = {"user_id": "u1", "merchant_id": "m1", "date": "2024-02-01", "amount": 20.5}
SENT = {"src": "u1", "dst": "u2", "date": "2024-03-01", "amount": 50.0}


def _load(source: Path, store, tmp_path: Path, **kwargs):
    return load_directory(source, store, tmp_path / "history", tmp_path / "rejects", **kwargs)


def _history(tmp_path: Path, name: str) -> pd.DataFrame:
    kept = read_history(tmp_path / "history", name)
    assert kept is not None, name
    return kept


def _rejects(tmp_path: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "rejects" / f"{name}.csv", dtype=str, keep_default_na=False)


def _pays(store) -> pd.DataFrame:
    return store.query(
        "MATCH (u:User)-[r:PAYS]->(m:Merchant) RETURN u.user_id AS src, r.n AS n, "
        "r.amount AS amount"
    )


# --------------------------------------------------------------------------- 11: event rows


def test_identical_event_rows_in_one_file_all_stay(tiny_dir, memory_store, tmp_path):
    """Two real same-day purchases of the same amount are two rows, in history and graph;
    re-sending the file adds nothing (each is keyed by content + occurrence in its file)."""
    write_csv(tiny_dir, "payments", [PAY, PAY, {**PAY, "amount": 3.0}])
    write_csv(tiny_dir, "transfers", [SENT, SENT])
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.ok
    loaded = {f.file: f.rows_loaded for f in report.files}
    assert (loaded["payments.csv"], loaded["transfers.csv"]) == (3, 2)
    assert len(_history(tmp_path, "payments")) == 3
    assert len(_history(tmp_path, "transfers")) == 2
    assert _pays(memory_store)[["n", "amount"]].values.tolist() == [[3, 44.0]]

    again = _load(tiny_dir, memory_store, tmp_path)
    assert sum(again.edges_written.values()) == 0
    assert len(_history(tmp_path, "payments")) == 3
    assert len(_history(tmp_path, "transfers")) == 2


def test_keyless_rows_match_by_occurrence_across_files(tiny_dir, memory_store, tmp_path):
    """Without an id the k-th identical row of a file is the k-th identical row kept: a later
    file with one copy adds nothing, one with three copies adds the third."""
    write_csv(tiny_dir, "payments", [PAY, PAY])
    _load(tiny_dir, memory_store, tmp_path)
    write_csv(tiny_dir, "payments", [PAY])
    _load(tiny_dir, memory_store, tmp_path)
    assert len(_history(tmp_path, "payments")) == 2
    write_csv(tiny_dir, "payments", [PAY, PAY, PAY])
    _load(tiny_dir, memory_store, tmp_path)
    assert len(_history(tmp_path, "payments")) == 3
    assert _pays(memory_store)["n"].tolist() == [3]


def test_event_ids_make_reloads_idempotent_and_correct_in_place(tiny_dir, memory_store,
                                                                 tmp_path):  # fmt: skip
    write_csv(tiny_dir, "payments", [{"payment_id": "p1", **PAY}, {"payment_id": "p2", **PAY}])
    write_csv(tiny_dir, "transfers", [{"transfer_id": "t1", **SENT}, {"transfer_id": "t2", **SENT}])
    assert _load(tiny_dir, memory_store, tmp_path).ok
    assert _load(tiny_dir, memory_store, tmp_path).edges_written == {
        "FRIEND": 0, "TRANSFER": 0, "PAYS": 0, "OWNS": 0, "USES": 0,
    }  # fmt: skip
    assert _history(tmp_path, "payments")["payment_id"].tolist() == ["p1", "p2"]

    # A corrected row: same id, new amount, sent alone in a later file.
    write_csv(tiny_dir, "payments", [{"payment_id": "p1", **PAY, "amount": 99.0}])
    write_csv(tiny_dir, "transfers", [{"transfer_id": "t2", **SENT, "amount": 7.0}])
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.edges_written["PAYS"] == 1 and report.edges_written["TRANSFER"] == 1
    payments = _history(tmp_path, "payments").set_index("payment_id")["amount"]
    assert payments.sort_index().tolist() == [99.0, 20.5]
    transfers = _history(tmp_path, "transfers").set_index("transfer_id")["amount"]
    assert transfers.sort_index().tolist() == [50.0, 7.0]
    assert _pays(memory_store)[["n", "amount"]].values.tolist() == [[2, 119.5]]


def test_duplicate_event_id_in_a_file_is_rejected(tiny_dir, memory_store, tmp_path):
    write_csv(tiny_dir, "payments", [
        {"payment_id": "p1", **PAY}, {"payment_id": "p1", **PAY, "amount": 1.0},
        {"payment_id": None, **PAY}, {"payment_id": None, **PAY},
    ])  # fmt: skip
    report = _load(tiny_dir, memory_store, tmp_path)
    payments = next(f for f in report.files if f.file == "payments.csv")
    assert (payments.rows_loaded, payments.rows_rejected) == (3, 1)
    rejects = _rejects(tmp_path, "payments")
    assert rejects[["row", "field", "value"]].values.tolist() == [["2", "payment_id", "p1"]]
    assert "duplicate key ['payment_id']" in rejects["reason"].iloc[0]
    assert len(_history(tmp_path, "payments")) == 3  # p1 and both id-less rows


# --------------------------------------------------------------------------- 12: absurd values


@pytest.mark.parametrize("value", ["inf", "1e309", "-inf", "Infinity"])
@pytest.mark.parametrize(("name", "field"), [("payments", "amount"), ("balances", "balance")])
def test_non_finite_numbers_are_rejected(tiny_dir, memory_store, tmp_path, name, field, value):
    frame = pd.read_csv(tiny_dir / f"{name}.csv", dtype=str)
    frame = pd.concat([frame, frame], ignore_index=True)
    if name == "balances":
        frame.loc[1, "month"] = "2024-02-01"
    frame.loc[1, field] = value
    frame.to_csv(tiny_dir / f"{name}.csv", index=False)
    report = _load(tiny_dir, memory_store, tmp_path)
    assert not report.ok
    rejects = _rejects(tmp_path, name)
    assert rejects[["file", "row", "field", "value", "reason"]].values.tolist() == [
        [f"{name}.csv", "2", field, value, "not a finite number"]
    ]
    assert np.isfinite(_history(tmp_path, name)[field]).all()


def test_non_finite_numbers_in_parquet_are_rejected(tiny_dir, memory_store, tmp_path):
    repayments = pd.read_csv(tiny_dir / "repayments.csv", parse_dates=["due_date"])
    repayments["amount_paid"] = repayments["amount_paid"].astype(float)
    repayments.loc[1, "amount_paid"] = np.inf
    (tiny_dir / "repayments.csv").unlink()
    repayments.to_parquet(tiny_dir / "repayments.parquet")
    _load(tiny_dir, memory_store, tmp_path)
    rejects = _rejects(tmp_path, "repayments")
    assert rejects[["row", "field", "value", "reason"]].values.tolist() == [
        ["2", "amount_paid", "inf", "not a finite number"]
    ]


def test_huge_integer_is_rejected_not_a_crash(tiny_dir, memory_store, tmp_path):
    users = pd.read_csv(tiny_dir / "users.csv", dtype=str)
    users.loc[2, "phone_tenure_months"] = "1e20"
    users.to_csv(tiny_dir / "users.csv", index=False)
    _load(tiny_dir, memory_store, tmp_path)
    rejects = _rejects(tmp_path, "users")
    assert rejects[["row", "field", "reason"]].values.tolist() == [
        ["3", "phone_tenure_months", "not a valid int"]
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1800-01-01", "before earliest date 1900-01-01"),
        ("2099-01-01", "after latest date"),
        ("9999-12-31", "after latest date"),
    ],
)
def test_implausible_dates_are_rejected(tiny_dir, memory_store, tmp_path, value, reason):
    users = pd.read_csv(tiny_dir / "users.csv", dtype=str)
    users.loc[1, "signup_date"] = value
    users.to_csv(tiny_dir / "users.csv", index=False)
    _load(tiny_dir, memory_store, tmp_path)
    rejects = _rejects(tmp_path, "users")
    assert rejects[["row", "field", "value"]].values.tolist() == [["2", "signup_date", value]]
    assert rejects["reason"].iloc[0].startswith(reason)
    assert _history(tmp_path, "users")["signup_date"].min() >= pd.Timestamp("1900-01-01")


def test_default_window_ends_today_but_scheduled_dates_may_be_ahead(tiny_dir, memory_store,
                                                                    tmp_path):  # fmt: skip
    """What has happened (a payment) cannot be dated after today (+1 day of clock slack); an
    instalment's due date or an observation date may run up to a year ahead."""
    today = date.today()
    write_csv(tiny_dir, "payments", [
        {**PAY, "date": (today + timedelta(days=1)).isoformat()},
        {**PAY, "date": (today + timedelta(days=2)).isoformat()},
    ])  # fmt: skip
    repayments = pd.read_csv(tiny_dir / "repayments.csv", dtype=str)
    repayments.loc[0, "due_date"] = (today + timedelta(days=60)).isoformat()
    repayments.loc[1, "due_date"] = (today + timedelta(days=400)).isoformat()
    repayments.to_csv(tiny_dir / "repayments.csv", index=False)
    _load(tiny_dir, memory_store, tmp_path)
    latest = (today + timedelta(days=1)).isoformat()
    ahead = (today + timedelta(days=1 + 366)).isoformat()
    assert _rejects(tmp_path, "payments")[["row", "field", "reason"]].values.tolist() == [
        ["2", "date", f"after latest date {latest}"]
    ]
    assert _rejects(tmp_path, "repayments")[["row", "field", "reason"]].values.tolist() == [
        ["2", "due_date", f"after latest date {ahead} (latest + 366 days for scheduled dates)"]
    ]


def _device_seen(source: Path, first_seen: str) -> None:
    write_csv(source, "devices", [{"user_id": "u1", "device_id": "d1", "first_seen": first_seen}])


def test_date_window_is_configurable(tiny_dir, memory_store, tmp_path):
    """Labels (2024-06-30) and due dates (2024-02-29) are scheduled: allowed past latest."""
    _device_seen(tiny_dir, "2018-12-31")
    window = DateWindow(earliest=date(2019, 1, 1), latest=date(2024, 2, 15))
    report = _load(tiny_dir, memory_store, tmp_path, window=window)
    rejected = {f.file: f.rows_rejected for f in report.files if f.rows_rejected}
    assert rejected == {"devices.csv": 1, "transfers.csv": 1}
    assert _rejects(tmp_path, "devices")["reason"].tolist() == ["before earliest date 2019-01-01"]
    assert _rejects(tmp_path, "transfers")["reason"].tolist() == ["after latest date 2024-02-15"]
    with pytest.raises(ValueError, match="earliest"):
        DateWindow(earliest=date(2024, 1, 1), latest=date(2023, 1, 1))
    with pytest.raises(ValueError, match="'2024-02-30' is not a YYYY-MM-DD date"):
        DateWindow.of("1900-01-01", "2024-02-30")
    assert DateWindow.of("1900-01-01", "") == DateWindow()


def test_settings_window_reaches_the_pipeline(tiny_dir, memory_store, tmp_path, monkeypatch):
    _device_seen(tiny_dir, "2018-12-31")
    monkeypatch.setenv("CREDITGRAPH_EARLIEST_DATE", "2019-01-01")
    settings = load_settings(data_dir=tmp_path / "data", store="memory",
                             latest_date="2024-02-15")  # fmt: skip
    assert (settings.earliest_date, settings.latest_date) == ("2019-01-01", "2024-02-15")
    report = pipeline.ingest(settings, memory_store, tiny_dir)
    assert {f.file for f in report.files if f.rows_rejected} == {"devices.csv", "transfers.csv"}
    monkeypatch.delenv("CREDITGRAPH_EARLIEST_DATE")
    default = load_settings(data_dir=tmp_path / "data")
    assert (default.earliest_date, default.latest_date) == ("1900-01-01", None)


# --------------------------------------------------------------------------- 13: reversed pairs


def _friend(src: str, dst: str, since: str, src_n: int, dst_n: int) -> dict:
    return {"src": src, "dst": dst, "since": since, "src_interactions": src_n,
            "dst_interactions": dst_n}  # fmt: skip


def _friend_edges(store) -> list[list]:
    return store.query(
        "MATCH (a:User)-[r:FRIEND]->(b:User) RETURN a.user_id AS src, b.user_id AS dst, "
        "r.src_interactions AS s, r.dst_interactions AS d ORDER BY src, dst"
    ).values.tolist()


def test_reversed_duplicate_friendship_in_a_file_is_rejected(tiny_dir, memory_store, tmp_path):
    write_csv(tiny_dir, "friendships", [
        _friend("u1", "u2", "2021-01-01", 5, 3), _friend("u2", "u3", "2021-02-01", 0, 7),
        _friend("u2", "u1", "2021-01-01", 3, 5),
    ])  # fmt: skip
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.edges_written["FRIEND"] == 2
    rejects = _rejects(tmp_path, "friendships")
    assert rejects[["row", "field", "value"]].values.tolist() == [["3", "src", "u2"]]
    assert "duplicate key ['src', 'dst']" in rejects["reason"].iloc[0]
    assert _friend_edges(memory_store) == [["u1", "u2", 5, 3], ["u2", "u3", 0, 7]]


def test_reversed_friendship_in_a_later_load_updates_in_place(tiny_dir, memory_store, tmp_path):
    """(u2, u1) after (u1, u2) was kept is the same pair: it keeps the stored orientation
    (each side's interactions swapped with it) and updates that edge; no second edge."""
    _load(tiny_dir, memory_store, tmp_path)
    write_csv(tiny_dir, "friendships", [_friend("u2", "u1", "2021-01-05", 9, 4)])
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.ok and report.edges_written["FRIEND"] == 1
    assert _friend_edges(memory_store) == [["u1", "u2", 4, 9], ["u2", "u3", 0, 7]]
    kept = _history(tmp_path, "friendships")
    assert kept[["src", "dst", "src_interactions", "dst_interactions"]].values.tolist() == [
        ["u2", "u3", 0, 7], ["u1", "u2", 4, 9],
    ]  # fmt: skip
    assert kept["since"].max() == pd.Timestamp("2021-02-01")
    assert (kept.set_index("src").loc["u1", "since"]) == pd.Timestamp("2021-01-05")
    again = _load(tiny_dir, memory_store, tmp_path)
    assert again.edges_written["FRIEND"] == 0 and len(_history(tmp_path, "friendships")) == 2


# --------------------------------------------------------------------------- 14: ambiguous files


def test_csv_and_parquet_of_one_table_are_refused(tiny_dir, memory_store, tmp_path):
    pd.read_csv(tiny_dir / "bills.csv", parse_dates=["month"]).to_parquet(
        tiny_dir / "bills.parquet"
    )
    with pytest.raises(SchemaError, match=r"bills\.csv.*bills\.parquet") as error:
        _load(tiny_dir, memory_store, tmp_path)
    assert error.value.file == "bills.csv"
    assert memory_store.node_ids("User").empty
    assert read_history(tmp_path / "history", "users") is None
