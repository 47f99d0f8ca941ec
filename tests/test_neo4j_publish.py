"""Publishing a scoring run on Neo4j: resumable, retried batch transactions, never one for 1M users.

Without a server: the plan at 1M users is checked on
:func:`graph.neo4j.plan.publish_plan` and on the store itself (on
:class:`test_neo4j_fake.FakeDriver`, which records every transaction and can
lose the server while the k-th write transaction commits); a publish killed
at batch k is completed from the run's staged files by the next ``score``
(:func:`catalog.finish_pending_run`), sending exactly the batches that had
not committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_neo4j_fake import FakeDriver, fake_store

from creditgraph import catalog
from creditgraph.errors import QueryError, StoreUnavailable
from creditgraph.graph.meta import PENDING_RUN, RUN_PROGRESS, SCORE_RUN
from creditgraph.graph.neo4j.plan import Batch, RunProgress, publish_plan
from creditgraph.graph.neo4j.store import (
    DEFAULT_BATCH_SIZE,
    Neo4jStore,
    _publish_batch,
    _run_single,
)
from creditgraph.graph.schema import SCORE_PROPERTIES

USERS = 40
BATCH = 7  # 40 users: 6 batches (5 of 7, 1 of 5)


def sent_batches(fake: FakeDriver, run_id: str) -> list[tuple[int, int]]:
    """``(start, stop)`` of every batch transaction begun for ``run_id`` (committed or not)."""
    out = []
    for entry in fake.log:
        if entry[0] == "execute_write" and entry[1] is _publish_batch:
            _, rows, progress = entry[2]
            mark = RunProgress.decode(progress[0]["props"]["value"])
            assert mark is not None
            if mark.run_id == run_id:
                out.append((mark.rows - len(rows), mark.rows))
    return out


def marked_pending(fake: FakeDriver, run_id: str) -> int:
    """How many write transactions set Meta ``pending_score_run`` to ``run_id``."""
    row = {"key": PENDING_RUN, "props": {"value": run_id}}
    return sum(
        1
        for entry in fake.log
        if entry[0] == "execute_write" and entry[1] is _run_single
        and row in entry[2][1].get("rows", [])
    )  # fmt: skip


def graph_meta(fake: FakeDriver) -> dict[str, Any]:
    meta = {k: v.get("value") for k, v in fake.server.nodes["Meta"].items()}
    return {k: v for k, v in meta.items() if v is not None}


def ids() -> list[str]:
    """Users in a scrambled order: a resumed publish must follow the frame, not key order."""
    order = np.random.default_rng(3).permutation(USERS)
    return [f"u{i:02d}" for i in order]


def run_frames(model: str, shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and model inputs of one run, as the pipeline hands them to publish_scores."""
    index = pd.Index(ids(), name="user_id")
    points = np.arange(USERS, dtype=float)
    scores = pd.DataFrame(
        {
            "score": 500.0 + shift + points,
            "pd": (points + 1) / 100,
            **{name: points * 0.5 + shift for name in SCORE_PROPERTIES if name.startswith("f_")},
            "model_id": model,
            "scored_at": pd.Timestamp("2024-05-01 12:00:00"),
            "reasons": "few repayments on record",
        },
        index=index,
    )
    inputs = pd.DataFrame(
        {"pagerank_scaled": points / USERS + shift, "community": (points % 4).astype("int64"),
         "age": 30}, index=index,
    )  # fmt: skip
    return scores, inputs


def scored_world(tmp_path: Path, batch_size: int = BATCH) -> tuple[Neo4jStore, FakeDriver, Path]:
    """A fake Neo4j with USERS users and run A (model cg-a) published whole."""
    store, fake = fake_store(batch_size=batch_size)
    users = pd.DataFrame({"user_id": sorted(ids()), "age": 30})
    store.bulk_load({"User": users}, {}, load_id="L1")
    data = tmp_path / "data"
    catalog.publish_scores(catalog.DataDir(data), store, *run_frames("cg-a", 0.0))
    return store, fake, data


def killed_publish(tmp_path: Path, k: int) -> dict[str, Any]:
    """Run A published, then run B (model cg-b) dying at its k-th write transaction."""
    store, fake, data = scored_world(tmp_path)
    paths = catalog.DataDir(data)
    first = catalog.current_run(paths.scores)
    fake.fail_write_at = fake.writes + k
    with pytest.raises(StoreUnavailable, match="lost Neo4j"):
        catalog.publish_scores(paths, store, *run_frames("cg-b", 100.0))
    runs = {p.name for p in (paths.scores / catalog.RUNS).iterdir()}
    (second,) = runs - {first}  # staged whole before the graph was touched
    return {"store": store, "fake": fake, "paths": paths, "first": first, "second": second}


def reference(tmp_path: Path) -> FakeDriver:
    """Runs A then B, never interrupted: the graph a completed run B must leave."""
    store, fake, data = scored_world(tmp_path / "ref")
    catalog.publish_scores(catalog.DataDir(data), store, *run_frames("cg-b", 100.0))
    return fake


def store_scores(fake: FakeDriver) -> pd.Series:
    users = fake.server.nodes["User"]
    return pd.Series({k: v.get("score") for k, v in users.items()}, name="score").sort_index()


def parquet_scores(paths: catalog.DataDir) -> pd.Series:
    scores = paths.read_scores()
    assert scores is not None
    published = scores.set_index("user_id")["score"].sort_index()
    published.index.name = None
    return published


def assert_published(fake: FakeDriver, paths: catalog.DataDir) -> str:
    """Meta score_run = scores/CURRENT, no marks left, and the store holds the Parquet scores."""
    meta = graph_meta(fake)
    assert meta[SCORE_RUN] == catalog.current_run(paths.scores)
    assert PENDING_RUN not in meta and RUN_PROGRESS not in meta
    pd.testing.assert_series_equal(store_scores(fake), parquet_scores(paths), check_index=True)
    return meta[SCORE_RUN]


# -- the plan at 1M users ---------------------------------------------------------------------
def test_the_publish_plan_at_1m_users_stays_within_the_batch_size() -> None:
    plan = publish_plan("User", 1_000_000, DEFAULT_BATCH_SIZE)
    assert len(plan) == 100 and max(b.rows for b in plan) == DEFAULT_BATCH_SIZE == 10_000
    assert [b.start for b in plan] == list(range(0, 1_000_000, 10_000))
    assert plan[-1].stop == 1_000_000 and all(b.kind == "properties" for b in plan)
    # resumed after 43 batches: from row 430,000, whatever the batch size of the re-run
    done = RunProgress("R1", "User", 430_000)
    assert publish_plan("User", 1_000_000, 10_000, done) == plan[43:]
    other = publish_plan("User", 1_000_000, 7_000, done)
    assert other[0] == Batch("properties", "User", 430_000, 437_000)
    assert sum(b.rows for b in other) == 570_000 and max(b.rows for b in other) == 7_000
    # every row landed (killed before the finishing transaction): nothing but the finish left
    assert publish_plan("User", 1_000_000, 10_000, RunProgress("R1", "User", 1_000_000)) == []
    # progress for another label, or past the end: everything again (idempotent SETs)
    assert publish_plan("User", 1_000_000, 10_000, RunProgress("R1", "Device", 5)) == plan
    assert publish_plan("User", 1_000_000, 10_000, RunProgress("R1", "User", 2_000_000)) == plan


def test_progress_marks_round_trip_and_refuse_garbage() -> None:
    mark = RunProgress("R20240501T120000-a1-abc123", "User", 42)
    assert RunProgress.decode(mark.encode()) == mark
    for bad in (None, "", "R1 User", "R1 User x", "L1 nodes User 3"):
        assert RunProgress.decode(bad) is None


def test_the_store_publishes_1m_users_in_102_transactions_of_at_most_10000_rows() -> None:
    store, fake = fake_store(batch_size=DEFAULT_BATCH_SIZE)
    index = pd.Index([f"u{i:07d}" for i in range(1_000_000)], name="user_id")
    frame = pd.DataFrame({"score": np.arange(1_000_000, dtype=float)}, index=index)
    written = store.publish_properties("User", frame, run_id="R-1m")
    assert written.batches == 100
    kinds = [entry[0] for entry in fake.log]
    assert "begin" not in kinds  # never an explicit transaction around the publish
    writes = [entry for entry in fake.log if entry[0] == "execute_write"]
    assert len(writes) == 1 + 100 + 1 == 102  # mark, batches, finish
    batches = [entry for entry in writes if entry[1] is _publish_batch]
    assert max(len(entry[2][1]) for entry in batches) == DEFAULT_BATCH_SIZE
    assert sent_batches(fake, "R-1m") == [(b.start, b.stop) for b in publish_plan(
        "User", 1_000_000, DEFAULT_BATCH_SIZE)]  # fmt: skip
    assert graph_meta(fake) == {SCORE_RUN: "R-1m"}


# -- a whole publish on the fake driver -------------------------------------------------------
def test_a_publish_sends_one_retried_transaction_per_batch_with_its_mark(tmp_path: Path) -> None:
    store, fake, data = scored_world(tmp_path)
    paths = catalog.DataDir(data)
    run_a = assert_published(fake, paths)
    assert sent_batches(fake, run_a) == [(0, 7), (7, 14), (14, 21), (21, 28), (28, 35), (35, 40)]
    assert marked_pending(fake, run_a) == 1
    # each batch's properties and its progress mark ran in one managed transaction
    runs = [c.name for c in fake.calls if c.via == "execute_write"]
    at = runs.index("write_properties:User")
    assert runs[at - 1 : at + 2] == ["upsert_nodes:Meta", "write_properties:User",
                                     "upsert_nodes:Meta"]  # fmt: skip
    assert runs[-2:] == ["upsert_nodes:Meta", "upsert_nodes:Meta"]  # last mark, then finish
    assert "begin" not in [entry[0] for entry in fake.log]
    user = fake.server.nodes["User"][ids()[0]]
    assert user["model_id"] == "cg-a" and user["community"] == 0 and "prev_score" not in user
    assert store.reports[-1].kind == "properties" and store.reports[-1].batches == 6


def test_a_batch_is_retried_by_the_driver_and_counted_once() -> None:
    # statements run: read_meta, the pending mark, then batch 1's SET fails once (deadlock)
    store, fake = fake_store(batch_size=2, fail_first=[True, False, False])
    fake.server.nodes["User"] = {u: {"user_id": u} for u in ("u1", "u2", "u3")}
    frame = pd.DataFrame({"score": [1.0, 2.0, 3.0]}, index=["u1", "u2", "u3"])
    written = store.publish_properties("User", frame, run_id="R1")
    assert [e for e in fake.log if e[0] == "retry"] == [("retry", _publish_batch)]
    assert written.nodes == 3 and fake.server.nodes["User"]["u3"]["score"] == 3.0
    assert written.batches == 2 and graph_meta(fake) == {SCORE_RUN: "R1"}


def test_publish_properties_refuses_to_run_inside_atomic() -> None:
    store, fake = fake_store()
    store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1"]}))
    with pytest.raises(QueryError, match="batch by batch"), store.atomic():
        store.publish_properties("User", pd.DataFrame({"score": [1.0]}, index=["u1"]),
                                 run_id="R1")  # fmt: skip
    assert "score" not in fake.server.nodes["User"]["u1"] and graph_meta(fake) == {}


# -- killed half-way, completed by the next score ---------------------------------------------
# B's write transactions: 1 marks B pending, 2..7 are its 6 batches, 8 finishes it.
@pytest.mark.parametrize("k", [3, 5, 7, 8])
@pytest.mark.parametrize("how", ["finish", "rescore"])
def test_a_publish_killed_at_batch_k_is_completed_with_exactly_the_remaining_batches(
    tmp_path: Path, k: int, how: str
) -> None:
    state = killed_publish(tmp_path, k)
    store, fake, paths = state["store"], state["fake"], state["paths"]
    first, second = state["first"], state["second"]
    plan = [(b.start, b.stop) for b in publish_plan("User", USERS, BATCH)]
    # The dead transaction took its mark with it: progress = the last batch that committed.
    sent = sent_batches(fake, second)
    assert sent == plan[: min(k - 1, len(plan))]
    committed = plan[k - 3][1] if k > 2 else 0
    meta = graph_meta(fake)
    assert meta[PENDING_RUN] == second and meta[SCORE_RUN] == first
    assert RunProgress.decode(meta[RUN_PROGRESS]) == RunProgress(second, "User", committed)
    assert catalog.current_run(paths.scores) == first  # partners still read run A
    # The graph holds B for the first rows of the frame only: a reader of the store sees a mix.
    models = [fake.server.nodes["User"][u]["model_id"] for u in ids()]
    assert models == ["cg-b"] * committed + ["cg-a"] * (USERS - committed)
    # Opening the data directory reports it, keeps B's files and does not write.
    writes = fake.writes
    said = catalog.recover(paths, store)
    assert any(f"scoring run {second} is half-written" in s and "completes it" in s for s in said)
    assert fake.writes == writes and catalog.current_run(paths.scores) == first
    assert catalog.check_consistent(paths, store) is None  # features are not refused
    if how == "finish":
        assert catalog.finish_pending_run(paths, store) == second
    else:  # the next score: completes B first, then publishes its own run C
        catalog.publish_scores(paths, store, *run_frames("cg-c", 200.0))
    assert sent_batches(fake, second)[len(sent) :] == plan[k - 2 :]  # from the one that died
    assert marked_pending(fake, second) == 1  # marked once, when B began: it resumed
    final = assert_published(fake, paths)
    if how == "finish":
        assert final == second
        ref = reference(tmp_path).server.nodes["User"]
        assert fake.server.nodes["User"] == ref  # as if B had never been interrupted
    else:
        assert final not in (first, second)
        assert catalog.read_manifest(paths.scores, final)["previous_run"] == second
        users = fake.server.nodes["User"]
        b = catalog.read_run(catalog.run_dir(paths.scores, second))
        assert {u: users[u]["prev_score"] for u in users} == dict(
            zip(b["user_id"], b["score"], strict=True)
        )  # C's previous run is B, published in full before it


def test_a_publish_killed_with_another_batch_size_resumes_at_the_row(tmp_path: Path) -> None:
    state = killed_publish(tmp_path, k=4)  # two batches of 7 committed
    store, fake, paths, second = state["store"], state["fake"], state["paths"], state["second"]
    store.batch_size = 5
    assert catalog.finish_pending_run(paths, store) == second
    assert sent_batches(fake, second)[3:] == [(14, 19), (19, 24), (24, 29), (29, 34), (34, 39),
                                              (39, 40)]  # fmt: skip
    assert_published(fake, paths)
    assert fake.server.nodes["User"] == reference(tmp_path).server.nodes["User"]


def test_a_run_staged_before_parts_is_completed_from_its_two_files(tmp_path: Path) -> None:
    """A run staged by an earlier version (one scores.parquet, one inputs.parquet) and left
    pending is completed with the same rows as one staged as parts."""
    state = killed_publish(tmp_path, k=4)
    store, fake, paths, second = state["store"], state["fake"], state["paths"], state["second"]
    directory = catalog.run_dir(paths.scores, second)
    rows = catalog.run_store_rows(paths.scores, second)
    for table in (catalog.SCORES, catalog.INPUTS):
        whole = catalog.read_run(directory, table)
        shutil.rmtree(directory / table)
        whole.to_parquet(directory / f"{table}.parquet", index=False)
    assert catalog.run_files(directory) == [directory / catalog.SCORES_FILE]
    pd.testing.assert_frame_equal(catalog.run_store_rows(paths.scores, second), rows)
    assert catalog.finish_pending_run(paths, store) == second
    assert_published(fake, paths)
    assert fake.server.nodes["User"] == reference(tmp_path).server.nodes["User"]


def test_a_pending_run_whose_staged_files_are_gone_is_abandoned(tmp_path: Path) -> None:
    state = killed_publish(tmp_path, k=4)
    store, fake, paths, second = state["store"], state["fake"], state["paths"], state["second"]
    shutil.rmtree(catalog.run_dir(paths.scores, second))
    said = catalog.recover(paths, store)
    assert any(f"scoring run {second}" in s and "abandons it" in s for s in said)
    assert catalog.finish_pending_run(paths, store) is None
    before = sent_batches(fake, second)
    catalog.publish_scores(paths, store, *run_frames("cg-c", 200.0))
    assert sent_batches(fake, second) == before  # not resumed: superseded by run C
    final = assert_published(fake, paths)  # every user holds C: the half of B is overwritten
    assert final != second and catalog.current_run(paths.scores) == final
