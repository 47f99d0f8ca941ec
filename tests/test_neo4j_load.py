"""Loads on Neo4j: resumable, retried batch transactions, never one transaction for a load.

Without a server: the plan at 1M users / 10M relationships is checked on
:func:`graph.neo4j.plan.load_plan` (row counts only), and real loads run on
:class:`test_neo4j_fake.FakeDriver`, which records every transaction and can
lose the server while the k-th write transaction commits.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_world, write_csv
from test_neo4j_fake import FakeDriver, fake_store

from creditgraph import catalog
from creditgraph.errors import CreditGraphError, QueryError, StoreUnavailable
from creditgraph.graph.meta import LOAD_ID, LOAD_PROGRESS, PENDING_LOAD
from creditgraph.graph.neo4j.plan import Batch, LoadKind, LoadProgress, load_plan
from creditgraph.graph.neo4j.statements import cypher_upsert_nodes
from creditgraph.graph.neo4j.store import DEFAULT_BATCH_SIZE, Neo4jStore, _load_batch, _run_single
from creditgraph.graph.schema import META
from creditgraph.ingest import load as ingest_load
from creditgraph.ingest.history import current_load_id
from creditgraph.ingest.load import load_directory

SCALE_NODES = {"User": 1_000_000, "Merchant": 20_000, "Device": 900_000}
SCALE_EDGES = {  # 10M relationships, shaped like the synthetic world
    "FRIEND": 5_000_000, "TRANSFER": 2_000_000, "PAYS": 2_000_000, "OWNS": 20_000,
    "USES": 980_000,
}  # fmt: skip


def scale_steps() -> list[tuple[LoadKind, str, int]]:
    steps: list[tuple[LoadKind, str, int]] = [("nodes", n, r) for n, r in SCALE_NODES.items()]
    return steps + [("relationships", n, r) for n, r in SCALE_EDGES.items()]


def sent_batches(fake: FakeDriver, load_id: str | None = None) -> list[tuple[str, str, int, int]]:
    """``(kind, name, start, stop)`` of every batch transaction begun (of ``load_id`` only)."""
    out = []
    for entry in fake.log:
        if entry[0] == "execute_write" and entry[1] is _load_batch:
            _, _, rows, progress = entry[2]
            mark = LoadProgress.decode(progress[0]["props"]["value"])
            assert mark is not None
            if load_id is None or mark.load_id == load_id:
                out.append((mark.kind, mark.name, mark.rows - len(rows), mark.rows))
    return out


def pending_marks(fake: FakeDriver, load_id: str) -> list[tuple]:
    """The write transactions that set Meta ``pending_load`` to ``load_id``."""
    return [
        entry
        for entry in fake.log
        if entry[0] == "execute_write"
        and entry[1] is _run_single
        and entry[2][0] == cypher_upsert_nodes(META)
        and {"key": PENDING_LOAD, "props": {"value": load_id}} in entry[2][1]["rows"]
    ]


def graph_meta(fake: FakeDriver) -> dict[str, Any]:
    """The graph's Meta values as read_meta gives them (a cleared value is absent)."""
    meta = {k: v.get("value") for k, v in fake.server.nodes["Meta"].items()}
    return {k: v for k, v in meta.items() if v is not None}


# -- the plan at 1M users / 10M relationships -------------------------------------------------
def test_the_plan_at_1m_users_and_10m_relationships_stays_within_the_batch_size() -> None:
    steps = scale_steps()
    plan = load_plan(steps, DEFAULT_BATCH_SIZE)
    assert sum(SCALE_EDGES.values()) == 10_000_000
    assert max(b.rows for b in plan) == DEFAULT_BATCH_SIZE == 10_000
    assert min(b.rows for b in plan) > 0
    assert len(plan) == 1_192  # 100 + 2 + 90 User/Merchant/Device, 500 + 200 + 200 + 2 + 98
    # every row once, in order, nodes before the relationships that need them
    for kind, name, rows in steps:
        mine = [b for b in plan if (b.kind, b.name) == (kind, name)]
        assert [b.start for b in mine] == list(range(0, rows, DEFAULT_BATCH_SIZE))
        assert mine[-1].stop == rows
    assert [b.name for b in plan].index("FRIEND") > [b.name for b in plan].index("Device")
    # the store opens one write transaction to mark the load, one per batch, one to finish
    write_transactions = 1 + len(plan) + 1
    assert write_transactions == 1_194


def test_a_resumed_plan_starts_at_the_first_row_not_committed() -> None:
    steps = scale_steps()
    full = load_plan(steps, 10_000)
    done = LoadProgress("L1", "relationships", "FRIEND", 1_230_000)  # 123 FRIEND batches
    rest = load_plan(steps, 10_000, done)
    assert rest == full[full.index(Batch("relationships", "FRIEND", 1_230_000, 1_240_000)) :]
    # another batch size on the re-run: still from row 1,230,000, and never a row twice
    other = load_plan(steps, 7_000, done)
    assert other[0] == Batch("relationships", "FRIEND", 1_230_000, 1_237_000)
    assert max(b.rows for b in other) == 7_000
    assert sum(b.rows for b in other) == sum(b.rows for b in rest)
    # a step finished exactly: the next one starts at row 0
    end = load_plan(steps, 10_000, LoadProgress("L1", "nodes", "Device", 900_000))
    assert end[0] == Batch("relationships", "FRIEND", 0, 10_000)
    # progress past the end of its step (not this data): that step again, from row 0
    past = load_plan(steps, 10_000, LoadProgress("L1", "nodes", "Merchant", 30_000))
    assert past[0] == Batch("nodes", "Merchant", 0, 10_000) and past == full[100:]
    # progress naming no step of this plan: send everything again (idempotent MERGEs)
    assert load_plan(steps, 10_000, LoadProgress("L1", "nodes", "Shop", 5)) == full


def test_progress_marks_round_trip_and_refuse_garbage() -> None:
    mark = LoadProgress("L20240101T000000-abc123", "relationships", "FRIEND", 42)
    assert LoadProgress.decode(mark.encode()) == mark
    for bad in (None, "", "L1 nodes User", "L1 nodes User x"):
        assert LoadProgress.decode(bad) is None


# -- a real load on the fake driver -----------------------------------------------------------
def test_a_20k_row_load_sends_one_retried_transaction_per_batch_of_at_most_1000() -> None:
    store, fake = fake_store(batch_size=1_000)
    ids = np.array([f"u{i:05d}" for i in range(8_000)], dtype=object)
    users = pd.DataFrame({"user_id": ids, "age": 30})
    i = np.arange(12_000)  # 12,000 distinct pairs, no self-loops
    friends = pd.DataFrame(
        {"src": ids[i % 8_000], "dst": ids[(i % 8_000 + 1 + i // 8_000) % 8_000]}
    )
    written = store.bulk_load({"User": users}, {"FRIEND": friends}, load_id="L-big")
    assert written.nodes == {"User": 8_000} and written.edges == {"FRIEND": 12_000}
    kinds = [entry[0] for entry in fake.log]
    assert "begin" not in kinds  # never an explicit transaction around the load
    writes = [entry for entry in fake.log if entry[0] == "execute_write"]
    plan = load_plan([("nodes", "User", 8_000), ("relationships", "FRIEND", 12_000)], 1_000)
    assert len(plan) == written.batches == 20
    assert len(writes) == 1 + len(plan) + 1 == 22
    assert sent_batches(fake) == [tuple(b) for b in plan]
    assert max(len(e[2][2]) for e in writes if e[1] is _load_batch) == 1_000
    # each batch's statement and its progress mark ran in one managed transaction
    runs = [c.name for c in fake.calls if c.via == "execute_write"]
    assert runs[1:3] == ["upsert_nodes:User", "upsert_nodes:Meta"]
    assert runs[-3:] == ["upsert_edges:FRIEND", "upsert_nodes:Meta", "upsert_nodes:Meta"]
    assert len(fake.server.rels["FRIEND"]) == 12_000
    assert graph_meta(fake)[LOAD_ID] == "L-big"
    assert PENDING_LOAD not in graph_meta(fake) and LOAD_PROGRESS not in graph_meta(fake)


def test_a_batch_is_retried_by_the_driver_and_counted_once() -> None:
    store, fake = fake_store(batch_size=2, fail_first=[False, False, True])
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
    written = store.bulk_load({"User": users}, {}, load_id="L1")
    assert [e for e in fake.log if e[0] == "retry"] and written.nodes == {"User": 3}


def test_bulk_load_refuses_to_run_inside_atomic() -> None:
    store, fake = fake_store()
    with pytest.raises(QueryError, match="batch by batch"), store.atomic():
        store.bulk_load({"User": pd.DataFrame({"user_id": ["u1"]})}, {}, load_id="L1")
    assert fake.server.nodes["User"] == {}


# -- killed half-way, resumed by the next ingest ----------------------------------------------
def world(directory: Path, users: int = 40, city: str = "Hangzhou", talks: int = 1) -> Path:
    """tiny_world with ``users`` users and a chain of friendships (several batches of 7)."""
    tiny_world(directory)
    write_csv(directory, "users", [
        {"user_id": f"u{i}", "signup_date": f"2020-01-{1 + i % 28:02d}", "age": 20 + i % 50,
         "city": city, "phone_tenure_months": i, "address_tenure_months": i,
         "real_name_verified": "true", "education": "college", "occupation": "employee"}
        for i in range(1, users + 1)
    ])  # fmt: skip
    write_csv(directory, "friendships", [
        {"src": f"u{i}", "dst": f"u{i + 1}", "since": "2021-01-01", "src_interactions": i,
         "dst_interactions": talks}
        for i in range(1, users)
    ])  # fmt: skip
    return directory


def _load(source: Path, store: Neo4jStore, data: Path) -> ingest_load.LoadReport:
    return load_directory(source, store, data / "history", data / "rejects")


@dataclass
class Publishes:
    """Every history publish by ingest into ``history``: (load id, len(fake.log), graph Meta)."""

    fake: FakeDriver | None = None
    history: Path | None = None
    seen: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Publishes:
    record = Publishes()
    original = ingest_load.publish_version

    def spy(history_dir: Path, load_id: str, *args: Any) -> None:
        if record.fake is not None and history_dir == record.history:
            record.seen.append((load_id, len(record.fake.log), graph_meta(record.fake)))
        original(history_dir, load_id, *args)

    monkeypatch.setattr(ingest_load, "publish_version", spy)
    return record


def _killed_world(tmp_path: Path, published: Publishes, k: int) -> dict[str, Any]:
    """Load A, then load B dying at B's k-th write transaction; returns what a test needs."""
    store, fake = fake_store(batch_size=7)
    data = tmp_path / "data"
    published.fake, published.history = fake, data / "history"
    first = _load(world(tmp_path / "a"), store, data)
    source = world(tmp_path / "b", users=45, city="Shenzhen", talks=2)  # every row changes
    schema = len(fake.server.schema)  # ensure_schema's write transactions, before B's own
    fake.fail_write_at = fake.writes + schema + k
    with pytest.raises(StoreUnavailable, match="lost Neo4j"):
        _load(source, store, data)
    meta = graph_meta(fake)
    return {"store": store, "fake": fake, "data": data, "source": source, "first": first,
            "pending": meta[PENDING_LOAD]}  # fmt: skip


def _reference(tmp_path: Path) -> tuple[FakeDriver, list[tuple[str, str, int, int]]]:
    """The same two loads, never interrupted: the graph to reach and B's full plan."""
    store, fake = fake_store(batch_size=7)
    data = tmp_path / "ref"
    _load(world(tmp_path / "a"), store, data)
    second = _load(tmp_path / "b", store, data)
    return fake, sent_batches(fake, second.load_id)


def _same_graph(fake: FakeDriver, reference: FakeDriver) -> None:
    for label, nodes in reference.server.nodes.items():
        if label != "Meta":
            assert fake.server.nodes[label] == nodes, label
    assert fake.server.rels == reference.server.rels


def test_a_load_killed_at_batch_k_resumes_with_exactly_the_remaining_batches(
    tmp_path: Path, published: Publishes
) -> None:
    k = 12  # B's writes: 1 mark, User 7 batches, then FRIEND: dies in FRIEND
    state = _killed_world(tmp_path, published, k)
    fake, data, pending = state["fake"], state["data"], state["pending"]
    history = data / "history"
    reference, plan = _reference(tmp_path)
    assert len(plan) > k and plan[k - 2][1] == "FRIEND"
    # The dead transaction took its progress mark with it: progress = the last batch committed.
    sent = sent_batches(fake, pending)
    assert sent == plan[: k - 1]  # batch k-1 of the plan was sent and rolled back
    kind, name, _, stop = plan[k - 3]
    done = LoadProgress(pending, kind, name, stop)
    assert LoadProgress.decode(graph_meta(fake)[LOAD_PROGRESS]) == done
    assert graph_meta(fake)[LOAD_ID] == state["first"].load_id == current_load_id(history)
    assert [p[0] for p in published.seen] == [state["first"].load_id]  # B was not published
    # Opening the data directory keeps B's staged version and refuses the half-loaded graph.
    said = catalog.recover(catalog.DataDir(data), state["store"])
    assert (history / pending).is_dir() and any("completes it" in s for s in said)
    with pytest.raises(CreditGraphError, match=f"holds part of load {pending}"):
        catalog.check_consistent(catalog.DataDir(data), state["store"])
    # The next ingest (same files) first sends exactly B's remaining batches, then loads anew.
    again = _load(state["source"], state["store"], data)
    assert again.finished_load == pending
    assert sent_batches(fake, pending)[len(sent) :] == plan[k - 2 :]
    assert len(pending_marks(fake, pending)) == 1  # marked once, when B began: it resumed
    # B was published only after its last batch and the transaction that recorded it.
    (b_id, b_at, b_meta), (c_id, _, c_meta) = published.seen[1:]
    assert b_id == pending and b_meta[LOAD_ID] == pending and PENDING_LOAD not in b_meta
    last_b = max(
        i
        for i, e in enumerate(fake.log)
        if e[0] == "execute_write"
        and e[1] is _load_batch
        and pending in e[2][3][0]["props"]["value"]
    )
    assert last_b < b_at
    assert c_id == again.load_id and c_meta[LOAD_ID] == again.load_id
    assert graph_meta(fake)[LOAD_ID] == current_load_id(history) == again.load_id
    assert PENDING_LOAD not in graph_meta(fake)
    assert catalog.check_consistent(catalog.DataDir(data), state["store"]) == again.load_id
    _same_graph(fake, reference)


def test_a_pending_load_whose_staged_version_is_gone_is_abandoned_and_repaired(
    tmp_path: Path, published: Publishes
) -> None:
    state = _killed_world(tmp_path, published, k=5)
    fake, data, pending = state["fake"], state["data"], state["pending"]
    reference, _ = _reference(tmp_path)
    shutil.rmtree(data / "history" / pending)
    said = catalog.recover(catalog.DataDir(data), state["store"])
    assert any("abandons it" in s for s in said)
    before = sent_batches(fake, pending)
    again = _load(state["source"], state["store"], data)
    assert again.finished_load == "" and sent_batches(fake, pending) == before  # not resumed
    assert any(f"load {pending} was interrupted" in n and "same files" in n for n in again.notes)
    assert graph_meta(fake)[LOAD_ID] == current_load_id(data / "history") == again.load_id
    assert PENDING_LOAD not in graph_meta(fake)
    _same_graph(fake, reference)  # the same files loaded afresh repair the graph


def test_a_first_load_killed_half_way_resumes_with_the_same_rows(tmp_path: Path) -> None:
    """A first load touches every table whole: its staged version names them (no second
    copy), and the next ingest sends the same batches from there."""
    store, fake = fake_store(batch_size=7)
    store.ensure_schema()
    data, source = tmp_path / "data", world(tmp_path / "a")
    schema = len(fake.server.schema)  # ensure_schema's write transactions, run by every load
    fake.fail_write_at = fake.writes + schema + 5  # the mark, then User batches: dies there
    with pytest.raises(StoreUnavailable, match="lost Neo4j"):
        _load(source, store, data)
    pending = graph_meta(fake)[PENDING_LOAD]
    touched = data / "history" / pending / ingest_load.TOUCHED
    assert "users" in (touched / "whole").read_text().split()
    assert not (touched / "users.parquet").exists()  # named, not written twice
    again = _load(source, store, data)
    assert again.finished_load == pending
    reference, reference_fake = fake_store(batch_size=7)
    _load(source, reference, tmp_path / "ref")
    _same_graph(fake, reference_fake)


def test_a_correction_killed_while_removing_resumes_to_the_embedded_stores_graph(
    tmp_path: Path,
) -> None:
    """Payments corrected to other merchants and merchants given new owners remove the
    relationships left with nothing behind them, on Neo4j as on the embedded store, and a
    load killed during those removals is completed by the next ingest."""
    from test_incremental import _moved

    from creditgraph.graph.embedded import EmbeddedStore
    from creditgraph.ingest.synthetic import generate_world

    world = tmp_path / "world"
    generate_world(300, seed=11, out_dir=world)
    rng = np.random.default_rng(1)
    payments = pd.read_csv(world / "payments.csv", dtype=str, keep_default_na=False)
    lonely = payments.groupby(["user_id", "merchant_id"])["payment_id"].transform("size") == 1
    merchants = pd.read_csv(world / "merchants.csv", dtype=str, keep_default_na=False)
    (tmp_path / "fix").mkdir()
    _moved(payments[lonely], "merchant_id", 5, rng).to_csv(tmp_path / "fix" / "payments.csv",
                                                           index=False)  # fmt: skip
    _moved(merchants, "owner_id", 3, rng).to_csv(tmp_path / "fix" / "merchants.csv", index=False)
    embedded = EmbeddedStore(None)
    embedded.ensure_schema()
    for source in (world, tmp_path / "fix"):
        done = load_directory(source, embedded, tmp_path / "e" / "history", tmp_path / "e" / "rj")
    assert done.edges_removed == {"PAYS": 5, "OWNS": 3}
    store, fake = fake_store(batch_size=1000)
    data = tmp_path / "data"
    _load(world, store, data)
    store.batch_size, before = 2, len(fake.server.rels["PAYS"])
    fake.fail_write_at = fake.writes + len(fake.server.schema) + 3  # the second removal batch
    with pytest.raises(StoreUnavailable, match="lost Neo4j"):
        _load(tmp_path / "fix", store, data)
    assert len(fake.server.rels["PAYS"]) == before - 2  # the first batch of two committed
    again = _load(tmp_path / "fix", store, data)
    assert again.finished_load and again.edges_removed == {}  # this time: nothing left to do
    for rel, pairs in fake.server.rels.items():
        edges = embedded.export_edges(rel)
        want = set(zip(edges.source_ids[edges.src], edges.target_ids[edges.dst], strict=True))
        assert set(pairs) == want, rel
    stored = embedded.export_edges("PAYS", ("n", "amount"))
    totals = {(s, d): (n, a) for s, d, n, a in zip(
        stored.source_ids[stored.src], stored.target_ids[stored.dst],
        stored.properties["n"], stored.properties["amount"], strict=True)}  # fmt: skip
    got = {
        pair: (p["n"], pytest.approx(p["amount"])) for pair, p in fake.server.rels["PAYS"].items()
    }
    assert got == totals
