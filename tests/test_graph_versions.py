"""The embedded store's versions, and the data directory's writer lock.

A write never touches the database file readers use: it goes into a copy that
becomes current by a pointer switch once closed. Writing commands take turns
through one lock, and recovery never sweeps a running command's work.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_world
from typer.testing import CliRunner

from creditgraph import pipeline
from creditgraph.cli import app
from creditgraph.durable import Busy, exclusive
from creditgraph.errors import QueryError, StoreUnavailable
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.meta import LOAD_ID, read_meta, write_meta
from creditgraph.graph.versions import POINTER, GraphVersions
from creditgraph.settings import load_settings

USERS = pd.DataFrame({"user_id": ["u1", "u2", "u3"]})
FRIENDS = pd.DataFrame({"src": ["u1", "u2"], "dst": ["u2", "u3"]})


def _versions(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != POINTER)


def _count(store: EmbeddedStore, pattern: str) -> int:
    return int(store.query(f"MATCH {pattern} RETURN count(*) AS n")["n"].iloc[0])


def test_each_write_publishes_a_new_version_and_readers_keep_theirs(tmp_path: Path) -> None:
    versions = GraphVersions(tmp_path / "graphs")
    with EmbeddedStore(versions=versions) as store:
        assert not (tmp_path / "graphs").exists()  # opening creates nothing
        store.ensure_schema()
        first = versions.current()
        store.ensure_schema()  # nothing to create: no new version
        assert versions.current() == first
        store.bulk_load({"User": USERS}, {"FRIEND": FRIENDS}, load_id="L1")
        loaded = versions.current()
        assert loaded != first and read_meta(store)[LOAD_ID] == "L1"
        with EmbeddedStore(versions=versions, read_only=True) as reader:
            store.bulk_load({"User": USERS.assign(user_id=["u4", "u5", "u6"])}, {}, load_id="L2")
            assert _count(reader, "(u:User)") == 3  # a reader stays on the version it opened
            assert read_meta(reader)[LOAD_ID] == "L1"
        assert _count(store, "(u:User)") == 6
    # The current version and the one before it are kept; older ones are removed.
    assert _versions(tmp_path / "graphs") == sorted([loaded.name, versions.current().name])


def test_a_failed_write_leaves_the_current_version_and_no_copy(tmp_path: Path) -> None:
    versions = GraphVersions(tmp_path / "graphs")
    with EmbeddedStore(versions=versions) as store:
        store.ensure_schema()
        store.bulk_load({"User": USERS}, {"FRIEND": FRIENDS}, load_id="L1")
        before, kept = versions.current(), _versions(tmp_path / "graphs")
        with pytest.raises(QueryError):
            store.bulk_load({"User": USERS}, {"FRIEND": FRIENDS.assign(dst="nobody")},
                            load_id="L2")  # fmt: skip
        assert versions.current() == before and read_meta(store)[LOAD_ID] == "L1"
        assert _count(store, "()-[r:FRIEND]->()") == 2
    assert _versions(tmp_path / "graphs") == kept  # the staged copy is gone


def test_the_current_version_is_never_opened_for_writing(tmp_path: Path) -> None:
    versions = GraphVersions(tmp_path / "graphs")
    with EmbeddedStore(versions=versions) as store:
        store.ensure_schema()
        store.bulk_load({"User": USERS}, {}, load_id="L1")
        stamp = versions.current().stat().st_mtime_ns
        store.query("MATCH (u:User) RETURN u.user_id")
    assert versions.current().stat().st_mtime_ns == stamp
    with pytest.raises(StoreUnavailable, match="no embedded store"):
        EmbeddedStore(versions=GraphVersions(tmp_path / "none"), read_only=True)


def test_a_single_file_store_is_read_then_replaced_by_versions(tmp_path: Path) -> None:
    """A data directory from before versions: its ``graph`` file seeds the first version."""
    data = tmp_path / "data"
    source = tiny_world(tmp_path / "in")
    assert CliRunner().invoke(app, ["ingest", str(source), "--data-dir", str(data)]).exit_code == 0
    paths = load_settings(data_dir=data).paths
    current = paths.graph_versions().current()
    current.rename(paths.legacy_graph)  # the old layout: one file, no versions
    for leftover in paths.graph.iterdir():
        leftover.unlink()
    paths.graph.rmdir()
    settings = load_settings(data_dir=data)
    with pipeline.open_configured_store(settings) as store:
        assert read_meta(store)[LOAD_ID]  # read from the single file
        users = _count(store, "(u:User)")
        write_meta(store, note="x")
    assert paths.graph_versions().current().parent == paths.graph
    with pipeline.open_configured_store(settings) as store:  # recovery removes the old file
        assert _count(store, "(u:User)") == users and read_meta(store)["note"] == "x"
    assert not paths.legacy_graph.exists()


HOLD = """
import sys
from pathlib import Path
from creditgraph.durable import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_writing_commands_take_turns_and_recovery_waits_for_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tiny_world(tmp_path / "in")
    assert CliRunner().invoke(app, ["ingest", str(source), "--data-dir", str(data)]).exit_code == 0
    settings = load_settings(data_dir=data)
    lock = settings.paths.lock
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(Busy, match=str(holder.pid)), exclusive(lock, wait=False):
            pass
        # Another command's work in progress is not swept, and nothing is recovered.
        staged = data / ".tmp-0123456789ab-features.parquet"
        staged.write_text("being written")
        said: list[str] = []
        with pipeline.open_configured_store(settings, said.append):
            pass
        assert staged.exists() and said == [
            f"recovery skipped: another command is writing "
            f"({lock.absolute()} is held by process {holder.pid})"
        ]
        # A writing command waits its turn, saying for whom.
        cli = str(Path(sys.executable).with_name("creditgraph"))
        features = subprocess.Popen(
            [cli, "features", "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert features.stdout is not None
        first = features.stdout.readline()  # blocks until the command says something
        assert f"waiting for process {holder.pid}" in first, first
        time.sleep(1)
        assert features.poll() is None and not settings.paths.features.exists()
    finally:
        holder.communicate("", timeout=30)
    output, _ = features.communicate(timeout=120)
    assert features.returncode == 0, first + output
    assert settings.paths.features.exists() and not staged.exists()  # swept once free
