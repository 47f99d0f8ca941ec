"""Score sources: the scoring pipeline's Parquet file and the graph store's User nodes."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from creditgraph.access.errors import ScoresNotReady
from creditgraph.access.scores import (
    FACTORS,
    ParquetScoreSource,
    ScoreRecord,
    ScoreSource,
    StoreScoreSource,
)
from creditgraph.durable import write_parquet, write_pointer
from creditgraph.errors import SchemaError

AT = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


def frame(**changes: list) -> pd.DataFrame:
    base = {
        "user_id": ["u1", "u2"],
        "score": [702.3, 455.0],
        "pd": [0.015, 0.31],
        "scored_at": [AT, AT],
        "model_id": ["m-2025-03", "m-2025-03"],
        **{f"f_{name}": [float(i), -float(i)] for i, name in enumerate(FACTORS)},
        "reasons": ["late bill payments; few long-standing friends", None],
    }
    return pd.DataFrame({**base, **changes})


def test_parquet_source_reads_every_field(tmp_path: Path) -> None:
    frame().to_parquet(tmp_path / "latest.parquet")
    source = ParquetScoreSource(tmp_path / "latest.parquet")
    assert isinstance(source, ScoreSource) and len(source) == 2
    assert source.get("u1") == ScoreRecord(
        score=702.3,
        pd=0.015,
        scored_at=AT,
        model_id="m-2025-03",
        factors={
            "credit_history": 0.0,
            "behaviour": 1.0,
            "capacity": 2.0,
            "characteristics": 3.0,
            "relationships": 4.0,
        },
        reasons=["late bill payments", "few long-standing friends"],
    )
    assert getattr(source.get("u2"), "reasons", None) == []
    assert source.get("nobody") is None


def test_parquet_source_reloads_a_new_scoring_run(tmp_path: Path) -> None:
    path = tmp_path / "latest.parquet"
    frame().to_parquet(path)
    source = ParquetScoreSource(path, recheck_s=0)
    frame(score=[650.0, 455.0]).to_parquet(path)
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1_000_000))
    deadline = time.monotonic() + 5
    while getattr(source.get("u1"), "score", None) != 650.0:  # reloaded in the background
        assert time.monotonic() < deadline, "the new scores were not picked up"
        time.sleep(0.01)


def test_parquet_source_names_missing_columns(tmp_path: Path) -> None:
    frame().drop(columns=["f_capacity"]).to_parquet(tmp_path / "latest.parquet")
    with pytest.raises(SchemaError, match="f_capacity"):
        ParquetScoreSource(tmp_path / "latest.parquet")
    with pytest.raises(SchemaError, match="not found"):
        ParquetScoreSource(tmp_path / "missing.parquet")


def publish(scores_dir: Path, run_id: str, scores: pd.DataFrame) -> None:
    """What a scoring run does: write the run aside, then switch the pointer to it."""
    write_parquet(scores_dir / "runs" / run_id / "scores.parquet", scores)
    write_pointer(scores_dir / "CURRENT", run_id)


def wait_for(source: ParquetScoreSource, subject: str, score: float) -> None:
    deadline = time.monotonic() + 5
    while getattr(source.get(subject), "score", None) != score:  # reloaded in the background
        assert time.monotonic() < deadline, "the new scores were not picked up"
        time.sleep(0.01)


def test_a_scores_directory_follows_its_current_pointer(tmp_path: Path) -> None:
    scores_dir = tmp_path / "scores"
    publish(scores_dir, "run-1", frame())
    source = ParquetScoreSource(scores_dir, recheck_s=0)
    assert getattr(source.get("u1"), "score", None) == 702.3
    publish(scores_dir, "run-2", frame(score=[650.0, 455.0]))
    wait_for(source, "u1", 650.0)
    write_pointer(scores_dir / "CURRENT", "run-3")  # a run that is not there (yet)
    for _ in range(20):
        assert getattr(source.get("u1"), "score", None) == 650.0  # the last good run answers
        time.sleep(0.005)
    publish(scores_dir, "run-3", frame(score=[720.0, 455.0]))
    wait_for(source, "u1", 720.0)
    (scores_dir / "CURRENT").write_bytes(b"\xff\xfe damaged")  # not even text
    for _ in range(20):
        assert getattr(source.get("u1"), "score", None) == 720.0
        time.sleep(0.005)
    publish(scores_dir, "run-4", frame(score=[610.0, 455.0]))  # and reloading still works
    wait_for(source, "u1", 610.0)


def test_a_run_published_as_parts_is_served_whole(tmp_path: Path) -> None:
    """A run's parts (one per chunk) are read together, after a run of one file; a part a
    kill left half-written aside is never read."""
    scores_dir = tmp_path / "scores"
    publish(scores_dir, "run-1", frame())  # one scores.parquet: a run from before parts
    source = ParquetScoreSource(scores_dir, recheck_s=0)
    parts = scores_dir / "runs" / "run-2" / "scores"
    both = frame(score=[650.0, 455.5])
    write_parquet(parts / "part-00000.parquet", both.iloc[:1])
    write_parquet(parts / "part-00001.parquet", both.iloc[1:])
    (parts / ".tmp-0123456789ab-part-00002.parquet").write_bytes(b"half")
    write_pointer(scores_dir / "CURRENT", "run-2")
    wait_for(source, "u1", 650.0)
    second = source.get("u2")
    assert len(source) == 2 and second is not None and second.score == 455.5
    assert second.reasons == [] and ParquetScoreSource(parts).get("u1") is not None


def test_a_scores_directory_without_runs_is_refused(tmp_path: Path) -> None:
    scores_dir = tmp_path / "scores"
    scores_dir.mkdir()
    with pytest.raises(SchemaError, match="no scores published"):
        ParquetScoreSource(scores_dir)
    write_pointer(scores_dir / "CURRENT", "../../elsewhere")
    with pytest.raises(SchemaError, match="does not name a run"):
        ParquetScoreSource(scores_dir)
    frame().to_parquet(scores_dir / "latest.parquet")  # the layout before runs had pointers
    (scores_dir / "CURRENT").unlink()
    assert len(ParquetScoreSource(scores_dir)) == 2


def test_a_lazy_source_loads_in_the_background(tmp_path: Path) -> None:
    scores_dir = tmp_path / "scores"
    publish(scores_dir, "run-1", frame())
    source = ParquetScoreSource(scores_dir, lazy=True, ready_timeout_s=5)
    assert getattr(source.get("u1"), "score", None) == 702.3  # waits for the first load
    write_pointer(scores_dir / "CURRENT", "run-2")
    (scores_dir / "runs" / "run-2").mkdir()
    (scores_dir / "runs" / "run-2" / "scores.parquet").write_bytes(b"not parquet")
    broken = ParquetScoreSource(scores_dir, lazy=True, ready_timeout_s=5, recheck_s=60)
    with pytest.raises(ScoresNotReady, match="not loaded"):
        broken.get("u1")


def test_scored_at_is_utc_whatever_its_storage(tmp_path: Path) -> None:
    naive = frame(scored_at=[AT.replace(tzinfo=None)] * 2)
    naive.to_parquet(tmp_path / "naive.parquet")
    text = frame(scored_at=["2025-03-01T09:30:00+01:00"] * 2)
    text.to_parquet(tmp_path / "text.parquet")
    for name in ("naive", "text"):
        record = ParquetScoreSource(tmp_path / f"{name}.parquet").get("u1")
        assert record is not None and record.scored_at == AT


def test_a_repeated_subject_reads_its_last_row(tmp_path: Path) -> None:
    frame(user_id=["u1", "u1"]).to_parquet(tmp_path / "latest.parquet")
    assert getattr(ParquetScoreSource(tmp_path / "latest.parquet").get("u1"), "score", 0) == 455.0


@pytest.mark.parametrize("with_reasons", [False, True])
def test_store_source_reads_user_nodes(with_reasons: bool) -> None:
    from creditgraph.graph.embedded import EmbeddedStore

    with EmbeddedStore(None) as store:
        store.ensure_schema()
        store.upsert_nodes("User", pd.DataFrame({"user_id": ["u1", "u2", "u3"]}))
        scores = frame().set_index("user_id")
        if not with_reasons:
            scores = scores.drop(columns=["reasons"])
        scores["scored_at"] = scores["scored_at"].dt.tz_localize(None)  # stored as UTC
        store.write_properties("User", scores)
        source = StoreScoreSource(store)
        assert isinstance(source, ScoreSource)
        record = source.get("u1")
        assert record is not None
        assert (record.score, record.pd, record.scored_at, record.model_id, record.reasons) == (
            702.3,
            0.015,
            AT,
            "m-2025-03",
            ["late bill payments", "few long-standing friends"] if with_reasons else [],
        )
        assert record.factors["relationships"] == 4.0
        assert source.get("u3") is None  # a user without a score
        assert source.get("nobody") is None
