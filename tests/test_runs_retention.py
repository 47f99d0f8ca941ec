"""Retention of published scoring runs: ``catalog.prune_runs``, ``creditgraph runs``, keep_runs.

One data directory is built once by the real pipeline (a 1,500-user world ingested, its
features, a model, five runs published one after the other, all within a few seconds, so
their ids do not sort in publish order); each test works on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph import catalog, pipeline
from creditgraph.access.scores import ParquetScoreSource, resolve_scores
from creditgraph.cli import app
from creditgraph.durable import FAILPOINT_VARIABLE, TMP_PREFIX, staged_directory
from creditgraph.errors import ConfigError, InvalidArgument, RunPruned
from creditgraph.graph.meta import PENDING_RUN, write_meta
from creditgraph.ingest.synthetic import generate_world
from creditgraph.settings import load_settings

CLI = str(Path(sys.executable).with_name("creditgraph"))
RUNS = 5


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A data directory with RUNS published runs; ``chain`` their ids, newest first."""
    root = tmp_path_factory.mktemp("retention")
    generate_world(1500, seed=3, out_dir=root / "world")
    data = root / "data"
    settings = load_settings(data_dir=data)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, root / "world")
        features = pipeline.build_features(settings, store)
        model = pipeline.train(settings, store, features).model
        inputs = pipeline.model_inputs(settings, store, model, features)
        scores = pipeline.score_users(model, inputs)
        ids = [pipeline.write_scores(settings, store, scores, inputs).name for _ in range(RUNS)]
    return {"root": root, "data": data, "chain": ids[::-1], "scores": scores, "inputs": inputs}


def _copy(published: dict[str, object], name: str) -> Path:
    target = Path(str(published["root"])) / name
    shutil.copytree(Path(str(published["data"])), target)
    return target


def _scores_dir(data: Path) -> Path:
    return load_settings(data_dir=data).paths.scores


def _manifest(data: Path, run_id: str) -> dict:
    return catalog.read_manifest(_scores_dir(data), run_id)


def _has_data(data: Path, run_id: str) -> bool:
    return bool(catalog.run_files(catalog.run_dir(_scores_dir(data), run_id)))


def _prune(data: Path, keep: int) -> catalog.PruneReport:
    settings = load_settings(data_dir=data)
    with pipeline.open_configured_store(settings) as store:
        return catalog.prune_runs(settings.paths, keep, store=store)


def test_keep_n_leaves_the_newest_published_runs_and_marks_the_others(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "keep3"), list(published["chain"])
    assert catalog.published_runs(_scores_dir(data)) == chain  # publish order, not id order
    current_before = catalog.read_current(_scores_dir(data))
    size = sum(f.stat().st_size for f in catalog.run_dir(_scores_dir(data), chain[-1]).rglob("*")
               if f.is_file() and f.name != catalog.MANIFEST_FILE)  # fmt: skip

    report = _prune(data, keep=3)

    assert list(report.removed) == chain[:2:-1]  # the two oldest, oldest first
    assert report.kept == chain[:3] and report.freed_bytes == pytest.approx(2 * size, rel=0.05)
    for run_id in chain[:3]:
        assert _has_data(data, run_id) and "pruned" not in _manifest(data, run_id)
    for run_id in chain[3:]:
        directory = catalog.run_dir(_scores_dir(data), run_id)
        assert [p.name for p in directory.iterdir()] == [catalog.MANIFEST_FILE]
        manifest = _manifest(data, run_id)
        assert manifest["pruned"]["reason"] == "retention" and manifest["pruned"]["keep"] == 3
        assert manifest["users"] == 1500  # the history stays
    assert _manifest(data, chain[3])["previous_run"] == chain[4]
    assert catalog.published_runs(_scores_dir(data)) == chain  # still listable, in order
    pd.testing.assert_frame_equal(catalog.read_current(_scores_dir(data)), current_before)
    again = _prune(data, keep=3)
    assert again.removed == {} and again.kept == chain[:3]
    with pytest.raises(InvalidArgument, match="at least 2"):
        _prune(data, keep=1)


def test_current_previous_pending_and_unpublished_runs_are_never_pruned(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "protected"), list(published["chain"])
    settings = load_settings(data_dir=data)
    # What a kill between staging a run and its graph write leaves (test_crash_safety's
    # score:run-staged): a run directory with its parts and manifest, never published.
    unpublished = "R20990101T000000-staged-000000"
    with staged_directory(catalog.run_dir(settings.paths.scores, unpublished)) as staged:
        catalog.frames_as_parts(published["scores"], published["inputs"])(staged)
        (staged / catalog.MANIFEST_FILE).write_text(json.dumps(
            {"run_id": unpublished, "model_id": "cg-x", "previous_run": chain[0]}))  # fmt: skip
    with pipeline.open_configured_store(settings) as store:
        with store.atomic():  # a batched publish of an old run half-way (as Neo4j marks it)
            write_meta(store, **{PENDING_RUN: chain[3]})
        report = catalog.prune_runs(settings.paths, 2, store=store)
    assert list(report.removed) == [chain[4], chain[2]]
    for run_id in (chain[0], chain[1], chain[3], unpublished):
        assert _has_data(data, run_id) and "pruned" not in _manifest(data, run_id), run_id
    listed = {run.run_id: run.status for run in catalog.list_runs(settings.paths.scores)}
    assert listed == {chain[0]: "current", chain[1]: "previous", chain[2]: "pruned",
                      chain[3]: "kept", chain[4]: "pruned", unpublished: "unpublished"}  # fmt: skip


def test_a_pruned_run_says_so_to_every_reader(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "readers"), list(published["chain"])
    _prune(data, keep=2)
    scores_dir = _scores_dir(data)
    old = catalog.run_dir(scores_dir, chain[-1])
    said = rf"run {chain[-1]} was pruned \(retention\)"
    with pytest.raises(RunPruned, match=said):
        catalog.read_run(old)
    with pytest.raises(RunPruned, match=said):
        catalog.read_run(old, catalog.INPUTS)
    with pytest.raises(RunPruned, match=said):
        catalog.run_store_rows(scores_dir, chain[-1])
    for path in (old, old / catalog.SCORES):  # the partner API's source given an old run
        with pytest.raises(RunPruned, match=said):
            resolve_scores(path)
        with pytest.raises(RunPruned, match=said):
            ParquetScoreSource(path)
    assert isinstance(RunPruned("x"), FileNotFoundError)  # old `except` clauses still catch it
    # The published run still answers, and so does the one before it (the shift's base).
    assert ParquetScoreSource(scores_dir).get(str(published["scores"].index[0])) is not None
    assert len(catalog.read_run(catalog.run_dir(scores_dir, chain[1]))) == 1500


def test_score_applies_keep_runs_after_publishing_and_records_it(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "score"), list(published["chain"])
    with pipeline.open_configured_store(load_settings(data_dir=data)) as store:
        kept_all = pipeline.score(load_settings(data_dir=data), store)  # the default: keep all
        assert kept_all.retention is None and all(_has_data(data, r) for r in chain)
        result = pipeline.score(load_settings(data_dir=data, keep_runs=3), store)
    newest = [result.directory.name, kept_all.directory.name, chain[0]]
    assert catalog.published_runs(_scores_dir(data))[:3] == newest
    assert result.retention is not None and list(result.retention.removed) == chain[:0:-1]
    assert _manifest(data, result.directory.name)["retention"] == {
        "keep": 3, "pruned": chain[:0:-1], "freed_bytes": result.retention.freed_bytes}  # fmt: skip
    assert all(_has_data(data, r) for r in newest) and not any(
        _has_data(data, r) for r in chain[1:])  # fmt: skip


def test_rescore_applies_keep_runs_from_the_environment(published, monkeypatch) -> None:  # noqa: ANN001
    data, chain = _copy(published, "rescore"), list(published["chain"])
    monkeypatch.setenv("CREDITGRAPH_KEEP_RUNS", "2")
    result = CliRunner().invoke(app, ["rescore", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    run_id = catalog.current_run(_scores_dir(data))
    assert run_id is not None and run_id not in chain
    output = " ".join(result.output.split())
    for pruned in chain[1:]:
        assert f"pruned run {pruned}:" in output and not _has_data(data, pruned)
    assert "retention (keep 2): 4 runs pruned" in output and _has_data(data, chain[0])
    assert _manifest(data, run_id)["retention"]["pruned"] == chain[:0:-1]
    monkeypatch.setenv("CREDITGRAPH_KEEP_RUNS", "1")
    with pytest.raises(ConfigError, match="'keep_runs'.*at least 2"):
        load_settings(data_dir=data)


def test_runs_list_and_prune_on_the_command_line(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "cli"), list(published["chain"])
    runner = CliRunner()
    refused = runner.invoke(app, ["runs", "prune", "--keep", "1", "--data-dir", str(data)])
    assert refused.exit_code == 2 and "at least 2" in refused.output
    unset = runner.invoke(app, ["runs", "prune", "--data-dir", str(data)])
    assert unset.exit_code == 2 and "--keep" in unset.output
    pruned = runner.invoke(app, ["runs", "prune", "--keep", "4", "--data-dir", str(data)])
    assert pruned.exit_code == 0, pruned.output
    output = " ".join(pruned.output.split())
    assert f"pruned run {chain[-1]}: 0." in output and "MiB freed" in output
    assert "retention (keep 4): 1 run pruned" in output
    listed = runner.invoke(app, ["runs", "list", "--data-dir", str(data)], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.output.splitlines()
            if line.startswith("│ R")}  # fmt: skip
    assert list(rows) == chain  # newest first
    assert "current" in rows[chain[0]] and "previous" in rows[chain[1]]
    assert "kept" in rows[chain[3]] and "pruned 20" in rows[chain[4]]
    assert "1,500" in rows[chain[4]] and "0.0 MiB" in rows[chain[4]]
    assert "0.0 MiB" not in rows[chain[3]]


def _state(data: Path, chain: list[str]) -> dict[str, object]:
    """Each run whole and unmarked, or marked pruned; the marked ones the oldest (as a larger
    keep leaves them); the current run readable. Returns what a reader sees of each run."""
    seen = {}
    for run_id in chain:
        marked = "pruned" in _manifest(data, run_id)
        if not marked:  # whole: its parts all there
            assert len(catalog.read_run(catalog.run_dir(_scores_dir(data), run_id))) == 1500
        else:
            with pytest.raises(RunPruned):
                catalog.read_run(catalog.run_dir(_scores_dir(data), run_id))
        seen[run_id] = marked
    marks = [seen[r] for r in chain]
    assert marks == sorted(marks), "pruned runs must be the oldest"
    assert catalog.read_current(_scores_dir(data)) is not None
    return seen


@pytest.mark.parametrize("failpoint", ["prune:run-marked", "prune:part-aside"])
def test_a_killed_prune_leaves_a_consistent_directory_and_the_next_one_finishes(
    published, failpoint: str,  # noqa: ANN001
) -> None:  # fmt: skip
    data, chain = _copy(published, f"kill-{failpoint[6:]}"), list(published["chain"])
    env = {**os.environ, FAILPOINT_VARIABLE: failpoint}
    killed = subprocess.run([CLI, "runs", "prune", "--keep", "2", "--data-dir", str(data)],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    runs_dir = _scores_dir(data) / catalog.RUNS
    leftovers = list(runs_dir.glob(f"{TMP_PREFIX}*"))
    assert len(leftovers) == (failpoint == "prune:part-aside")  # a part set aside, not deleted
    seen = _state(data, chain)
    assert [r for r in chain if seen[r]] == [chain[-1]]  # killed inside the oldest run
    listed = {run.run_id: run.status for run in catalog.list_runs(_scores_dir(data))}
    assert listed[chain[-1]] == "pruned"

    report = _prune(data, keep=2)  # opening the directory sweeps the part set aside

    assert list(report.removed) == chain[:1:-1] and report.kept == chain[:2]
    assert not list(runs_dir.glob(f"{TMP_PREFIX}*"))
    assert _state(data, chain) == {r: r not in chain[:2] for r in chain}
    for run_id in chain[2:]:
        directory = catalog.run_dir(_scores_dir(data), run_id)
        assert [p.name for p in directory.iterdir()] == [catalog.MANIFEST_FILE]


def test_a_run_staged_by_a_killed_score_is_discarded_by_the_next_command(published) -> None:  # noqa: ANN001
    data, chain = _copy(published, "killed-score"), list(published["chain"])
    env = {**os.environ, FAILPOINT_VARIABLE: "score:run-staged"}
    killed = subprocess.run([CLI, "score", "--data-dir", str(data)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    before = {run.run_id: run.status for run in catalog.list_runs(_scores_dir(data))}
    staged = [run_id for run_id, status in before.items() if status == "unpublished"]
    assert len(staged) == 1 and catalog.current_run(_scores_dir(data)) == chain[0]

    opened = CliRunner().invoke(
        app, ["runs", "prune", "--keep", str(RUNS), "--data-dir", str(data)]
    )

    said = " ".join(opened.output.split())
    assert opened.exit_code == 0 and f"discarded scoring run {staged[0]}" in said, said
    after = {run.run_id: run.status for run in catalog.list_runs(_scores_dir(data))}
    assert after == {run_id: status for run_id, status in before.items() if run_id not in staged}
    assert not (_scores_dir(data) / catalog.RUNS / staged[0]).exists()
    assert catalog.current_run(_scores_dir(data)) == chain[0]
