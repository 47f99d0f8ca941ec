"""Incremental loads (issue 17): a day of new rows appends one part per table it touches,
writes only the nodes and relationships it changes, and leaves the same history and
graph as loading the union of every file from scratch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv

from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.schema import NODE_TYPES, REL_TYPES
from creditgraph.ingest.history import (
    MAX_PARTS,
    load_tables,
    read_history,
    table_parts,
    version_dir,
)
from creditgraph.ingest.load import LoadReport, load_directory
from creditgraph.ingest.schemas import SCHEMAS
from creditgraph.ingest.synthetic import generate_world

DAY = ("payments", "transfers", "friendships", "repayments", "devices")  # what a day brings


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A world (``full``), the same less a tenth of DAY's rows (``base``), and that tenth."""
    root = tmp_path_factory.mktemp("incremental")
    generate_world(1500, seed=5, out_dir=root / "full")
    shutil.copytree(root / "full", root / "base")
    (root / "day").mkdir()
    rng = np.random.default_rng(0)
    for name in DAY:
        rows = _csv(root / "full" / f"{name}.csv")
        held = rng.random(len(rows)) < 0.1
        rows[~held].to_csv(root / "base" / f"{name}.csv", index=False)
        rows[held].to_csv(root / "day" / f"{name}.csv", index=False)
    return {"root": root, "full": root / "full", "base": root / "base", "day": root / "day"}


class Loaded:
    """One data directory (history and rejects) with its own embedded store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = EmbeddedStore(None)
        self.store.ensure_schema()

    def load(self, source: Path) -> LoadReport:
        return load_directory(source, self.store, self.root / "history", self.root / "rejects")

    @property
    def version(self) -> Path:
        return version_dir(self.root / "history")


def _graph(store: EmbeddedStore) -> dict[str, pd.DataFrame]:
    """Every node and relationship with every property, in a stable order."""
    found = {}
    for node in NODE_TYPES.values():
        if node.label == "Meta":  # bookkeeping: the id of the last load
            continue
        props = "".join(f", n.{p} AS {p}" for p in node.properties if p != node.key)
        found[node.label] = store.query(
            f"MATCH (n:{node.label}) RETURN n.{node.key} AS key{props} ORDER BY key"
        )
    for rel in REL_TYPES.values():
        source, target = NODE_TYPES[rel.source], NODE_TYPES[rel.target]
        props = "".join(f", r.{p} AS {p}" for p in rel.properties)
        found[rel.name] = store.query(
            f"MATCH (a:{source.label})-[r:{rel.name}]->(b:{target.label}) "
            f"RETURN a.{source.key} AS src, b.{target.key} AS dst{props} ORDER BY src, dst"
        )
    return found


def _history(root: Path) -> dict[str, pd.DataFrame]:
    tables = load_tables(root / "history")
    return {name: frame.sort_values(list(frame.columns), ignore_index=True)
            for name, frame in tables.items()}  # fmt: skip


@pytest.fixture(scope="module")
def loads(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("loads")
    incremental, union = Loaded(root / "incremental"), Loaded(root / "union")
    assert incremental.load(files["base"]).ok
    before = {name: [p.stat().st_ino for p in table_parts(incremental.version, name)]
              for name in SCHEMAS}  # fmt: skip
    day = incremental.load(files["day"])
    assert union.load(files["full"]).ok
    return {"incremental": incremental, "union": union, "before": before, "day": day}


def test_an_incremental_load_equals_a_full_reload_of_the_union(loads) -> None:  # noqa: ANN001
    incremental, union = loads["incremental"], loads["union"]
    assert loads["day"].ok
    want, got = _history(union.root), _history(incremental.root)
    assert want.keys() == got.keys()
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False, obj=name)
    want, got = _graph(union.store), _graph(incremental.store)
    for name in want:
        assert len(want[name]) > 0, name
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def test_a_day_appends_one_part_to_the_tables_it_touches(loads, files) -> None:  # noqa: ANN001
    incremental, before = loads["incremental"], loads["before"]
    for name in SCHEMAS:
        parts = table_parts(incremental.version, name)
        if name in DAY:  # the earlier part is the same file (a hard link), then the day's
            assert len(parts) == 2 and parts[0].stat().st_ino == before[name][0]
            assert len(pd.read_parquet(parts[1])) == len(_csv(files["day"] / f"{name}.csv"))
        elif before[name]:
            assert [p.stat().st_ino for p in parts] == before[name]
    written = loads["day"]
    assert written.nodes_written.get("User", 0) == 0  # no user changed
    assert 0 < written.edges_written["PAYS"] <= len(_csv(files["day"] / "payments.csv"))


def test_a_day_sent_again_adds_nothing(files, tmp_path) -> None:  # noqa: ANN001
    loaded = Loaded(tmp_path)
    loaded.load(files["base"])
    loaded.load(files["day"])
    parts = {name: table_parts(loaded.version, name) for name in SCHEMAS}
    graph = _graph(loaded.store)
    again = loaded.load(files["day"])
    assert set(again.edges_written.values()) == {0} and set(again.nodes_written.values()) <= {0}
    assert {name: [p.name for p in table_parts(loaded.version, name)] for name in SCHEMAS} == {
        name: [p.name for p in found] for name, found in parts.items()
    }
    for name, frame in _graph(loaded.store).items():
        pd.testing.assert_frame_equal(frame, graph[name], obj=name)


def test_a_changed_kept_row_rewrites_its_table_and_its_relationship(files, tmp_path) -> None:  # noqa: ANN001
    loaded = Loaded(tmp_path)
    loaded.load(files["full"])
    payments = read_history(tmp_path / "history", "payments")
    first = payments.iloc[0]
    corrected = {**first.to_dict(), "date": first["date"].strftime("%Y-%m-%d"), "amount": 1e6}
    write_csv(tmp_path / "fix", "payments", [corrected])
    report = loaded.load(tmp_path / "fix")
    assert report.ok and report.edges_written["PAYS"] == 1
    parts = table_parts(loaded.version, "payments")
    assert len(parts) == 1 and len(pd.read_parquet(parts[0])) == len(payments)
    kept = read_history(tmp_path / "history", "payments")
    pair = kept[
        (kept["user_id"] == first["user_id"]) & (kept["merchant_id"] == first["merchant_id"])
    ]
    edge = loaded.store.query(
        "MATCH (u:User {user_id: $u})-[r:PAYS]->(m:Merchant {merchant_id: $m}) "
        "RETURN r.n AS n, r.amount AS amount",
        {"u": first["user_id"], "m": first["merchant_id"]},
    )
    assert edge.values.tolist() == [[len(pair), pytest.approx(pair["amount"].sum())]]
    assert 1e6 in pair["amount"].tolist()


def test_many_small_loads_are_compacted(files, tmp_path) -> None:  # noqa: ANN001
    loaded = Loaded(tmp_path)
    loaded.load(files["base"])
    day = _csv(files["day"] / "payments.csv")
    for i, rows in enumerate(np.array_split(np.arange(len(day)), MAX_PARTS + 1)):
        (tmp_path / f"d{i}").mkdir()
        day.iloc[rows].to_csv(tmp_path / f"d{i}" / "payments.csv", index=False)
        assert loaded.load(tmp_path / f"d{i}").ok
        assert len(table_parts(loaded.version, "payments")) <= MAX_PARTS
    base = _csv(files["base"] / "payments.csv")
    assert len(read_history(tmp_path / "history", "payments")) == len(base) + len(day)


def test_a_first_load_still_needs_the_required_files(files, tmp_path) -> None:  # noqa: ANN001
    from creditgraph.errors import SchemaError

    with pytest.raises(SchemaError, match="users"):
        Loaded(tmp_path).load(files["day"])


def _moved(rows: pd.DataFrame, column: str, pick: int, rng: np.random.Generator) -> pd.DataFrame:
    """``pick`` rows of ``rows`` with ``column`` set to another value the column holds."""
    chosen = rows.iloc[np.sort(rng.choice(len(rows), size=pick, replace=False))].copy()
    values = rows[column].unique()
    chosen[column] = [rng.choice(values[values != old]) for old in chosen[column]]
    return chosen


def test_a_row_moved_to_another_pair_leaves_the_graph_of_a_full_reload(files, tmp_path) -> None:  # noqa: ANN001
    """A kept row corrected to name another endpoint (a payment to another merchant, a
    transfer to another user, a merchant's new owner, a record filed against another
    user) moves its relationship: the old pair's totals are recomputed, and a pair left
    with nothing behind it is removed, exactly as a full reload of the corrected files."""
    rng = np.random.default_rng(3)
    full = {name: _csv(files["full"] / f"{name}.csv") for name in SCHEMAS
            if (files["full"] / f"{name}.csv").exists()}  # fmt: skip
    # A pair's only payment moved: the pair has nothing left and must go.
    payments = full["payments"]
    pair_size = payments.groupby(["user_id", "merchant_id"])["payment_id"].transform("size")
    lonely = payments[pair_size == 1]
    moves = {
        "payments": pd.concat([_moved(lonely, "merchant_id", 3, rng),
                               _moved(payments[pair_size > 2], "merchant_id", 3, rng)]),
        "transfers": _moved(full["transfers"], "dst", 4, rng),
        "merchants": _moved(full["merchants"], "owner_id", 3, rng),
        "public_records": _moved(full["public_records"], "user_id", 3, rng),
    }  # fmt: skip
    corrected = tmp_path / "corrected"
    shutil.copytree(files["full"], corrected)
    for name, rows in moves.items():
        (tmp_path / "fix").mkdir(exist_ok=True)
        rows.to_csv(tmp_path / "fix" / f"{name}.csv", index=False)
        key = SCHEMAS[name].event_id or SCHEMAS[name].key[0]
        whole = full[name].set_index(key)
        whole.loc[rows[key]] = rows.set_index(key)
        whole.reset_index().to_csv(corrected / f"{name}.csv", index=False)
    incremental, union = Loaded(tmp_path / "incremental"), Loaded(tmp_path / "union")
    assert incremental.load(files["full"]).ok
    report = incremental.load(tmp_path / "fix")
    assert report.ok
    assert union.load(corrected).ok
    assert report.edges_removed["PAYS"] == 3  # the lonely pairs
    assert report.edges_removed["OWNS"] == 3 and report.edges_removed["HAS_RECORD"] == 3
    want, got = _history(union.root), _history(incremental.root)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False, obj=name)
    want, got = _graph(union.store), _graph(incremental.store)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
