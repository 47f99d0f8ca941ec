"""``creditgraph rescore``: the nightly job, chunked, resumable, with a manifest and exit codes.

One scored data directory (a model trained, a run published) and a second model
are built once; each test rescores a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph import catalog, pipeline
from creditgraph.cli import app
from creditgraph.durable import FAILPOINT_VARIABLE
from creditgraph.ingest.synthetic import generate_world
from creditgraph.scoring.metrics import psi
from creditgraph.settings import load_settings

CLI = str(Path(sys.executable).with_name("creditgraph"))
# Everything a run publishes per user except when it was scored.
COMPARED = ["user_id", "score", "pd", "reasons", "model_id"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A directory scored with model A, holding a second model B (the latest) not yet used."""
    root = tmp_path_factory.mktemp("rescore")
    world = generate_world(1500, seed=3, out_dir=root / "world")
    assert len(world["users"]) == 1500
    data = root / "data"
    settings = load_settings(data_dir=data)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, root / "world")
        features = pipeline.build_features(settings, store)
        first = pipeline.train(settings, store, features).model
        inputs = pipeline.model_inputs(settings, store, first, features)
        pipeline.write_scores(settings, store, pipeline.score_users(first, inputs), inputs)
        second = pipeline.train(load_settings(data_dir=data, seed=7), store, features).model
    assert first.model_id != second.model_id
    return {"root": root, "data": data, "first": first.model_id, "second": second.model_id}


def _copy(scored: dict[str, object], name: str) -> Path:
    target = Path(str(scored["root"])) / name
    shutil.copytree(Path(str(scored["data"])), target)
    return target


def _published(data: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    scores_dir = load_settings(data_dir=data).paths.scores
    run_id = catalog.current_run(scores_dir)
    assert run_id is not None
    frame = catalog.read_current(scores_dir)
    assert frame is not None
    return frame, catalog.read_manifest(scores_dir, run_id)


def test_chunked_run_equals_one_chunk_and_publishes_one_version(scored) -> None:  # noqa: ANN001
    results = {}
    for chunk_size in (100, 10**6):
        data = _copy(scored, f"chunks-{chunk_size}")
        settings = load_settings(data_dir=data)
        with pipeline.open_configured_store(settings) as store:
            result = pipeline.rescore(settings, store, chunk_size=chunk_size)
            graph = store.query("MATCH (u:User) RETURN u.user_id AS user_id, u.score AS score")
        frame, manifest = _published(data)
        assert manifest["run_id"] == result.run_id and manifest["chunks"] == -(-1500 // chunk_size)
        assert not (settings.paths.scores / catalog.RESUME).exists()  # cleared once published
        published = frame.set_index("user_id")["score"]
        np.testing.assert_array_equal(graph.set_index("user_id")["score"].loc[published.index],
                                      published.to_numpy())  # fmt: skip
        results[chunk_size] = frame[COMPARED]
    pd.testing.assert_frame_equal(results[100], results[10**6])


def test_manifest_counts_and_shift_against_the_previous_run(scored) -> None:  # noqa: ANN001
    data = _copy(scored, "manifest")
    before, _ = _published(data)
    result = CliRunner().invoke(app, ["rescore", "--data-dir", str(data), "--chunk-size", "400"])
    assert result.exit_code == 0, result.output
    after, manifest = _published(data)
    assert manifest["model_id"] == scored["second"] and manifest["users"] == len(after) == 1500
    assert manifest["chunks"] == 4 and manifest["chunks_resumed"] == 0
    assert set(manifest["stage_seconds"]) == {"features", "inputs", "score", "publish"}
    assert manifest["peak_memory_mib"] > 0
    old = before.set_index("user_id")["score"].reindex(after["user_id"]).to_numpy()
    new = after["score"].to_numpy()
    shift = manifest["shift"]
    assert shift["psi"] == pytest.approx(psi(old, new)) and shift["psi"] > 0
    assert shift["mean_change"] == pytest.approx(float(np.mean(new - old)))
    band = lambda s: np.floor(np.minimum(s, 949.999) / 50)  # noqa: E731
    assert shift["users_band_changed"] == int((band(old) != band(new)).sum()) > 0
    assert "users changed band" in " ".join(result.output.split())


def test_drift_above_the_limit_exits_1_after_publishing(scored) -> None:  # noqa: ANN001
    data = _copy(scored, "drift")
    result = CliRunner().invoke(app, ["rescore", "--data-dir", str(data), "--max-psi", "0"])
    assert result.exit_code == 1 and "warning: PSI" in " ".join(result.output.split())
    _, manifest = _published(data)
    assert manifest["model_id"] == scored["second"] and manifest["warnings"]
    bad = CliRunner().invoke(app, ["rescore", "--data-dir", str(data), "--chunk-size", "0"])
    assert bad.exit_code == 2 and "chunk size must be at least 1" in bad.output


def _run(data: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != FAILPOINT_VARIABLE}
    if failpoint:
        env[FAILPOINT_VARIABLE] = failpoint
    return subprocess.run([CLI, "rescore", "--data-dir", str(data), "--chunk-size", "400"],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(scored) -> pd.DataFrame:  # noqa: ANN001
    """What a rescore run from start to end publishes (the CLI, as killed runs are)."""
    reference = _copy(scored, "reference")
    assert _run(reference).returncode == 0
    return _published(reference)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failpoint", "published_by_the_kill"),
    [("rescore:chunk-written", False), ("score:run-staged", False),
     ("score:graph-committed", True)],
)  # fmt: skip
def test_a_killed_rescore_resumes_and_publishes_what_an_uninterrupted_run_would(
    scored, uninterrupted: pd.DataFrame, failpoint: str, published_by_the_kill: bool,  # noqa: ANN001
) -> None:  # fmt: skip
    expected = uninterrupted
    data = _copy(scored, f"killed-{failpoint}")
    killed = _run(data, failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    state = json.loads((data / "scores" / catalog.RESUME / catalog.STATE_FILE).read_text())
    pipeline.open_configured_store(load_settings(data_dir=data)).close()  # recovery
    current, _ = _published(data)  # what readers see after the kill: one whole run
    assert set(current["model_id"]) == {scored["second"] if published_by_the_kill
                                        else scored["first"]}  # fmt: skip
    again = _run(data)
    assert again.returncode == 0, again.stdout + again.stderr
    published, manifest = _published(data)
    pd.testing.assert_frame_equal(published[COMPARED], expected[COMPARED])
    # The killed run, finished: its id and start time, and its scored chunks kept.
    assert manifest["run_id"] == state["run_id"]
    assert (published["scored_at"] == pd.Timestamp(state["scored_at"])).all()
    if failpoint == "rescore:chunk-written":
        assert manifest["chunks_resumed"] == 1
    elif not published_by_the_kill:
        assert manifest["chunks_resumed"] == 4


def test_chunks_of_another_run_are_never_resumed(tmp_path: Path) -> None:
    """A removal a kill cut short (state gone, chunks left) must not pass for finished work."""
    paths = load_settings(data_dir=tmp_path).paths
    first = catalog.resume_or_start_run(paths, {"model_id": "cg-a"}, chunks=2)
    scores = pd.DataFrame({"score": [700.0]}, index=pd.Index(["u1"], name="user_id"))
    first.write_chunk(0, scores, scores)
    (first.directory / catalog.STATE_FILE).unlink()  # killed while removing it
    second = catalog.resume_or_start_run(paths, {"model_id": "cg-b"}, chunks=2)
    assert second.finished() == set() and second.run_id != first.run_id
    again = catalog.resume_or_start_run(paths, {"model_id": "cg-b"}, chunks=2)
    assert again.run_id == second.run_id  # the same inputs resume the same run
