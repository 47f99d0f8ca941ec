"""Shared fixtures: tiny hand-made inputs, and a small synthetic world built once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.settings import load_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--runslow"):
        skip = pytest.mark.skip(reason="slow: run with --runslow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """One line when server-backed Neo4j tests were skipped, so they never pass silently."""
    reasons = [
        r.longrepr[2].removeprefix("Skipped: ")
        for r in terminalreporter.stats.get("skipped", [])
        if isinstance(r.longrepr, tuple) and "NEO4J_URI" in r.longrepr[2]
    ]
    if reasons:
        terminalreporter.write_sep(
            "!", f"{len(reasons)} Neo4j tests skipped. {reasons[0]}", yellow=True, bold=True
        )


@pytest.fixture
def memory_store() -> EmbeddedStore:
    store = EmbeddedStore(None)
    store.ensure_schema()
    yield store
    store.close()


def write_csv(directory: Path, name: str, rows: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_world(directory: Path) -> Path:
    """Three users, one merchant, two friendships: every file, all valid."""
    users = [
        {
            "user_id": f"u{i}",
            "signup_date": "2020-01-0" + str(i),
            "age": 30 + i,
            "city": "Hangzhou",
            "phone_tenure_months": 12 * i,
            "address_tenure_months": 6 * i,
            "real_name_verified": "true",
            "education": "college",
            "occupation": "employee",
        }
        for i in (1, 2, 3)
    ]
    write_csv(directory, "users", users)
    write_csv(
        directory,
        "merchants",
        [
            {
                "merchant_id": "m1",
                "owner_id": "u3",
                "category": "grocery",
                "city": "Hangzhou",
                "opened_date": "2019-05-01",
            }
        ],
    )
    write_csv(directory, "friendships", [
        {"src": "u1", "dst": "u2", "since": "2021-01-01", "src_interactions": 5,
         "dst_interactions": 3},
        {"src": "u2", "dst": "u3", "since": "2021-02-01", "src_interactions": 0,
         "dst_interactions": 7},
    ])  # fmt: skip
    write_csv(
        directory, "transfers", [{"src": "u1", "dst": "u2", "date": "2024-03-01", "amount": 50.0}]
    )
    write_csv(
        directory,
        "payments",
        [{"user_id": "u1", "merchant_id": "m1", "date": "2024-02-01", "amount": 20.5}],
    )
    write_csv(
        directory, "devices", [{"user_id": "u1", "device_id": "d1", "first_seen": "2020-01-01"}]
    )
    write_csv(directory, "repayments", [
        {"user_id": "u1", "account_id": "a1", "product": "loan", "due_date": "2024-01-31",
         "amount_due": 100, "amount_paid": 100, "days_late": 0},
        {"user_id": "u1", "account_id": "a1", "product": "loan", "due_date": "2024-02-29",
         "amount_due": 100, "amount_paid": 60, "days_late": 95},
    ])  # fmt: skip
    write_csv(
        directory,
        "bills",
        [{"user_id": "u2", "month": "2024-01-01", "kind": "water", "amount": 30, "days_late": 0}],
    )
    write_csv(
        directory,
        "balances",
        [{"user_id": "u3", "month": "2024-01-31", "balance": 1000.0, "products": 2}],
    )
    write_csv(
        directory,
        "labels",
        [
            {"user_id": f"u{i}", "observation_date": "2024-06-30", "defaulted": int(i == 1)}
            for i in (1, 2, 3)
        ],
    )
    return directory


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return tiny_world(tmp_path / "in")


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(data_dir=tmp_path / "data", store="memory")
