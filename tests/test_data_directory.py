"""The data directory's published state: history versions, scoring runs, recovery."""

from __future__ import annotations

import stat
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_world

from creditgraph import catalog, durable
from creditgraph.errors import CreditGraphError
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.meta import (
    LOAD_ID,
    PENDING_LOAD,
    PENDING_RUN,
    RUN_PROGRESS,
    SCORE_RUN,
    read_meta,
    write_meta,
)
from creditgraph.graph.schema import SCORE_PROPERTIES
from creditgraph.ingest.history import current_load_id, load_tables, read_history, stage_version
from creditgraph.ingest.load import load_directory


def _load(source: Path, store: EmbeddedStore, data: Path):
    return load_directory(source, store, data / "history", data / "rejects")


def test_replace_file_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    durable.write_text(target, "old")

    def broken(temporary: Path) -> None:
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        durable.replace_file(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_private_files_are_never_readable_by_others(tmp_path: Path) -> None:
    path = durable.write_text(tmp_path / "secret.txt", "x", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_staged_directory_never_overwrites(tmp_path: Path) -> None:
    with durable.staged_directory(tmp_path / "m") as staged:
        (staged / "f").write_text("first")
    with durable.staged_directory(tmp_path / "m") as staged:
        (staged / "f").write_text("second")
    assert (tmp_path / "m" / "f").read_text() == "first"
    with pytest.raises(RuntimeError), durable.staged_directory(tmp_path / "n") as staged:
        (staged / "f").write_text("x")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_each_load_is_a_version_and_unchanged_tables_are_shared(tmp_path, memory_store) -> None:
    source = tiny_world(tmp_path / "in")
    first = _load(source, memory_store, tmp_path)
    assert current_load_id(tmp_path / "history") == first.load_id
    assert read_meta(memory_store)[LOAD_ID] == first.load_id
    (source / "labels.csv").unlink()
    second = _load(source, memory_store, tmp_path)
    history = tmp_path / "history"
    assert second.load_id != first.load_id and current_load_id(history) == second.load_id
    assert not (history / first.load_id).exists()  # the older version is removed
    assert "labels" in load_tables(history)  # carried over from the first load


def test_personal_data_at_rest_is_owner_only(tmp_path, memory_store, monkeypatch) -> None:
    from creditgraph.ingest.pii import generate_key

    monkeypatch.setenv("CREDITGRAPH_KEY", generate_key())
    source = tiny_world(tmp_path / "in")
    users = pd.read_csv(source / "users.csv", dtype=str).assign(name=["A B", "C D", "E F"])
    users.to_csv(source / "users.csv", index=False)
    report = _load(source, memory_store, tmp_path)
    path = tmp_path / "history" / report.load_id / "personal.parquet"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_graph_commit_leaves_the_previous_load_current(tmp_path, memory_store) -> None:
    source = tiny_world(tmp_path / "in")
    first = _load(source, memory_store, tmp_path)
    users = pd.read_csv(source / "users.csv", dtype=str).assign(city="Shenzhen")
    users.to_csv(source / "users.csv", index=False)

    def refuse(*_args: object, **_kwargs: object) -> int:
        raise CreditGraphError("the store went away")

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(memory_store, "upsert_edges", refuse)
    with pytest.raises(CreditGraphError):
        _load(source, memory_store, tmp_path)
    monkeypatch.undo()
    assert current_load_id(tmp_path / "history") == first.load_id
    assert read_meta(memory_store) == {LOAD_ID: first.load_id}  # all or nothing: no marks
    assert set(read_history(tmp_path / "history", "users")["city"]) == {"Hangzhou"}
    assert set(memory_store.query("MATCH (u:User) RETURN u.city AS c")["c"]) == {"Hangzhou"}


def test_recovery_rolls_forward_a_load_whose_graph_committed(tmp_path, memory_store) -> None:
    source = tiny_world(tmp_path / "in")
    _load(source, memory_store, tmp_path)
    history = tmp_path / "history"
    # What a kill between the graph commit and the pointer switch leaves:
    stage_version(history, "L-next", {"users": read_history(history, "users")})
    with memory_store.atomic():
        write_meta(memory_store, **{LOAD_ID: "L-next"})
    done = catalog.recover(catalog.DataDir(tmp_path), memory_store)
    assert current_load_id(history) == "L-next" and "L-next" in done[0]
    assert catalog.check_consistent(catalog.DataDir(tmp_path), memory_store) == "L-next"


def test_recovery_keeps_the_staged_version_of_a_half_finished_load(tmp_path, memory_store) -> None:
    source = tiny_world(tmp_path / "in")
    first = _load(source, memory_store, tmp_path)
    history = tmp_path / "history"
    # What a batched store (Neo4j) killed half-way through a load leaves:
    stage_version(history, "L-half", {"users": read_history(history, "users")})
    stage_version(history, "L-never", {"users": read_history(history, "users")})
    with memory_store.atomic():
        write_meta(memory_store, **{PENDING_LOAD: "L-half"})
    done = catalog.recover(catalog.DataDir(tmp_path), memory_store)
    assert (history / "L-half").is_dir() and "completes it" in done[-1]
    assert not (history / "L-never").exists()  # never reached the graph: pruned as before
    assert current_load_id(history) == first.load_id
    with pytest.raises(CreditGraphError, match="holds part of load L-half"):
        catalog.check_consistent(catalog.DataDir(tmp_path), memory_store)
    # The next ingest completes L-half first, then loads the files anew.
    again = _load(source, memory_store, tmp_path)
    assert again.finished_load == "L-half" and again.load_id != "L-half"
    assert read_meta(memory_store) == {LOAD_ID: again.load_id}
    assert catalog.check_consistent(catalog.DataDir(tmp_path), memory_store) == again.load_id


def test_a_graph_holding_another_load_is_refused(tmp_path, memory_store) -> None:
    _load(tiny_world(tmp_path / "in"), memory_store, tmp_path)
    other = EmbeddedStore(None)
    other.ensure_schema()
    with pytest.raises(CreditGraphError, match="holds load none"):
        catalog.check_consistent(catalog.DataDir(tmp_path), other)
    other.close()


def _run_parts(ids: pd.Index, value: float) -> catalog.StageRun:
    """A run of ``ids`` all scored ``value``, staged two users a part."""
    scores = pd.DataFrame({name: 0.0 for name in SCORE_PROPERTIES}, index=ids)
    scores = scores.assign(score=value, model_id="cg-x", scored_at=pd.Timestamp("2025-01-01"))
    inputs = pd.DataFrame({"pagerank_scaled": 1.0, "community": 3}, index=ids[::-1])
    return catalog.frames_as_parts(scores, inputs, rows=2)


def test_publish_run_switches_one_pointer(tmp_path, memory_store) -> None:
    _load(tiny_world(tmp_path / "in"), memory_store, tmp_path)
    scores_dir = tmp_path / "scores"
    ids = pd.Index(["u1", "u2", "u3"], name="user_id")
    runs = []
    for value in (600.0, 700.0):
        runs.append(catalog.publish_run(scores_dir, memory_store, stage=_run_parts(ids, value),
                                        manifest={"model_id": "cg-x"}))  # fmt: skip
    assert catalog.current_run(scores_dir) == runs[1].run_id
    assert read_meta(memory_store)[SCORE_RUN] == runs[1].run_id
    assert set(catalog.read_current(scores_dir)["score"]) == {700.0}
    assert set(memory_store.query("MATCH (u:User) RETURN u.score AS s")["s"]) == {700.0}
    assert catalog.run_files(runs[0].directory) == [  # runs are kept, as parts
        runs[0].directory / catalog.SCORES / "part-00000.parquet",
        runs[0].directory / catalog.SCORES / "part-00001.parquet"]  # fmt: skip
    # A kill after the graph took run 2 but before the pointer moved: recovery finishes it.
    durable.write_pointer(scores_dir / catalog.POINTER, runs[0].run_id)
    catalog.recover(catalog.DataDir(tmp_path), memory_store)
    assert catalog.current_run(scores_dir) == runs[1].run_id


def test_a_failed_publish_leaves_the_embedded_store_all_or_nothing(
    tmp_path, memory_store, monkeypatch
) -> None:
    load = _load(tiny_world(tmp_path / "in"), memory_store, tmp_path)
    scores_dir, paths = tmp_path / "scores", catalog.DataDir(tmp_path)
    ids = pd.Index(["u1", "u2", "u3"], name="user_id")

    def publish(value: float) -> catalog.PublishedRun:
        return catalog.publish_run(scores_dir, memory_store, stage=_run_parts(ids, value),
                                   manifest={"model_id": "cg-x"})  # fmt: skip

    first = publish(600.0)
    original = memory_store.write_properties

    def write_then_fail(label: str, frame: pd.DataFrame) -> int:
        original(label, frame)  # every row written, then the store goes away
        raise CreditGraphError("the store went away")

    monkeypatch.setattr(memory_store, "write_properties", write_then_fail)
    with pytest.raises(CreditGraphError, match="went away"):
        publish(700.0)
    monkeypatch.undo()
    # One transaction: the scores, score_run and the pointer all still name the first run.
    assert read_meta(memory_store) == {LOAD_ID: load.load_id, SCORE_RUN: first.run_id}
    assert set(memory_store.query("MATCH (u:User) RETURN u.score AS s")["s"]) == {600.0}
    assert catalog.current_run(scores_dir) == first.run_id
    assert catalog.recover(paths, memory_store) == []  # nothing pending, nothing to roll forward
    assert catalog.finish_pending_run(paths, memory_store) is None
    # A pending mark (as Neo4j leaves) never survives a publish on the embedded store.
    with memory_store.atomic():
        write_meta(memory_store, **{PENDING_RUN: "R-elsewhere", RUN_PROGRESS: "R-elsewhere User 1"})
    second = publish(700.0)
    assert read_meta(memory_store) == {LOAD_ID: load.load_id, SCORE_RUN: second.run_id}
    assert set(memory_store.query("MATCH (u:User) RETURN u.score AS s")["s"]) == {700.0}


def test_the_cli_says_what_recovery_mended(tmp_path) -> None:
    from typer.testing import CliRunner

    from creditgraph.cli import app
    from creditgraph.settings import load_settings

    data = tmp_path / "data"
    source = tiny_world(tmp_path / "in")
    assert CliRunner().invoke(app, ["ingest", str(source), "--data-dir", str(data)]).exit_code == 0
    paths = load_settings(data_dir=data).paths
    stage_version(paths.history, "L-next", {"users": read_history(paths.history, "users")})
    with EmbeddedStore(versions=paths.graph_versions()) as store, store.atomic():
        write_meta(store, **{LOAD_ID: "L-next"})  # killed before the pointer switched
    result = CliRunner().invoke(app, ["features", "--data-dir", str(data)])
    assert "recovered: finished load L-next" in " ".join(result.output.split())
    assert current_load_id(paths.history) == "L-next"


def test_rejects_switch_with_their_load(tmp_path, memory_store, monkeypatch) -> None:
    source = tiny_world(tmp_path / "in")
    users = pd.read_csv(source / "users.csv", dtype=str)
    users.loc[0, "age"] = "7"  # rejected
    users.to_csv(source / "users.csv", index=False)
    _load(source, memory_store, tmp_path)
    rejects = tmp_path / "rejects"
    assert pd.read_csv(rejects / "users.csv")["field"].tolist() == ["age"]
    # A load that fails (personal columns without a key) leaves the last load's rejects.
    users.loc[0, "age"] = "40"
    users.assign(name=["A", "B", "C"], city=["x", "y", None]).to_csv(
        source / "users.csv", index=False
    )
    monkeypatch.delenv("CREDITGRAPH_KEY", raising=False)
    with pytest.raises(CreditGraphError):
        _load(source, memory_store, tmp_path)
    assert pd.read_csv(rejects / "users.csv")["field"].tolist() == ["age"]
    # A clean load shows no rejects at all, not the previous load's.
    tiny_world(tmp_path / "clean")
    _load(tmp_path / "clean", memory_store, tmp_path)
    assert not (rejects / "users.csv").exists()


def test_an_older_world_readable_personal_table_is_narrowed(tmp_path, memory_store) -> None:
    history = tmp_path / "history"
    history.mkdir()
    old = pd.DataFrame({"user_id": ["u1"], "name": [b"sealed"]})
    old.to_parquet(history / "personal.parquet")  # the flat layout, as written before
    (history / "personal.parquet").chmod(0o644)
    report = _load(tiny_world(tmp_path / "in"), memory_store, tmp_path)
    carried = history / report.load_id / "personal.parquet"
    assert carried.exists() and stat.S_IMODE(carried.stat().st_mode) == 0o600


def test_features_are_parts_and_a_file_from_before_parts_still_reads(tmp_path, monkeypatch) -> None:
    paths = catalog.DataDir(tmp_path)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=pd.Index(["u3", "u1", "u2"], name="user_id"))
    legacy = frame.reset_index()
    legacy.attrs = {"load_id": "L-old"}
    legacy.to_parquet(paths.legacy_features, index=False)
    assert paths.feature_files().load_id == "L-old"
    pd.testing.assert_frame_equal(paths.read_features(), frame)
    monkeypatch.setattr(catalog, "PART_ROWS", 2)
    builds = [paths.write_features(frame * i, None).name for i in (1, 2, 3)]
    assert not paths.legacy_features.exists()  # superseded by the first build
    files = paths.feature_files()
    assert [p.name for p in files.parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert files.parts[0].parent.name == builds[2] and not files.by_user_id
    pd.testing.assert_frame_equal(paths.read_features(), frame * 3)  # in the order written
    kept = sorted(p.name for p in paths.features.iterdir() if p.is_dir())
    assert kept == sorted(builds[1:])  # the build before stays for readers still on it
