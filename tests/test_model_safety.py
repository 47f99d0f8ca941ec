"""Saved models survive kills and corruption; training refuses data too small to trust.

Real XGBoost models trained on the tabular features of synthetic worlds, real
files, and real SIGKILLs of a process that is saving models.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditgraph.errors import ModelNotFound, TrainingError, TrainingWarning
from creditgraph.ingest.synthetic import generate_world
from creditgraph.scoring.features import observation_dates, tabular_features
from creditgraph.scoring.model import (
    LATEST,
    MIN_TRAIN_OUTCOMES,
    MIN_VALID_OUTCOMES,
    CreditModel,
    latest_model,
    list_models,
    train_model,
)
from creditgraph.scoring.scale import ScoreScale
from creditgraph.scoring.splits import split_users

ROOT = Path(__file__).resolve().parents[1]


def _tabular(users: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    tables = generate_world(users, seed=seed)
    features = tabular_features(tables, observation_dates(tables))
    labels = tables["labels"].set_index("user_id")["defaulted"].astype(int)
    return features, labels


@pytest.fixture(scope="module")
def data() -> dict:
    features, labels = _tabular(3000, seed=5)
    split = split_users(labels, 5)
    return {"features": features, "labels": labels, "split": split}


@pytest.fixture(scope="module")
def big_model(data) -> CreditModel:
    """~500 deep trees (a 1.6 MB booster): writing it takes long enough to be killed in."""
    split = data["split"]
    return train_model(
        data["features"], data["labels"], train_index=split.train, valid_index=split.valid,
        scale=ScoreScale(), seed=5, params={"eta": 0.01, "max_depth": 8, "min_child_weight": 1},
    )  # fmt: skip


def _renamed(model: CreditModel, model_id: str, created_at: str | None = None) -> CreditModel:
    return replace(model, model_id=model_id, created_at=created_at or model.created_at)


def _same_scores(model: CreditModel, reference: CreditModel, frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(model.score(frame), reference.score(frame))
    pd.testing.assert_series_equal(model.training_labels, reference.training_labels)


def _same_model(model: CreditModel, reference: CreditModel) -> None:
    """Every saved part equal (cheaper than scoring a big model)."""
    assert model.booster.save_raw("json") == reference.booster.save_raw("json")
    assert (model.features, model.calibration, model.bias) == (
        reference.features, reference.calibration, reference.bias
    )  # fmt: skip
    np.testing.assert_array_equal(model.factor_means, reference.factor_means)
    pd.testing.assert_series_equal(model.training_labels, reference.training_labels)


# -- item 6 / 7: killed saves --------------------------------------------------------
SAVER = """
import sys
from pathlib import Path

from creditgraph.scoring.model import CreditModel

source, models_dir = Path(sys.argv[1]), Path(sys.argv[2])
model = CreditModel.load(source)
base = model.model_id
print("ready", flush=True)
i = 0
while True:  # until killed: a new model each round, then the existing one again
    i += 1
    model.model_id = f"{base}-v{i:04d}"
    model.save(models_dir)
    model.model_id = base
    model.save(models_dir)
"""


def test_killed_saves_never_lose_or_expose_a_broken_model(big_model, data, tmp_path):
    models = tmp_path / "models"
    base_dir = big_model.save(models)
    frame = data["features"].head(40)
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    checked: set[Path] = set()
    delays = np.random.default_rng(20).uniform(0.2, 0.6, size=3)
    for delay in delays:
        with (tmp_path / "saver.err").open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), str(base_dir), str(models)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
            assert proc.stdout.readline().strip() == "ready", (tmp_path / "saver.err").read_text()
            time.sleep(delay)
            assert proc.poll() is None, (tmp_path / "saver.err").read_text()  # still saving
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        # The previous model is intact, "latest" is complete, and nothing broken is visible.
        _same_model(CreditModel.load(base_dir), big_model)
        _same_model(latest_model(models), big_model)
        visible = {d for d in models.iterdir() if d.is_dir() and not d.name.startswith(".")}
        # Every visible directory is listed (its files are all there, at their saved
        # sizes); the newest few are loaded in full too (loading them all takes long).
        listed = {entry.directory for entry in list_models(models)}
        assert listed == visible and base_dir in listed
        for directory in sorted(visible - checked)[-2:]:
            _same_model(CreditModel.load(directory), big_model)
        checked |= visible
    assert len(checked) > 3  # the saver did publish models between the kills
    _same_scores(latest_model(models), big_model, frame)
    # The next save succeeds and becomes the latest model.
    after = _renamed(big_model, "cg-after-the-kills")
    assert after.save(models) == models / "cg-after-the-kills"
    assert latest_model(models).model_id == "cg-after-the-kills"
    assert (models / LATEST).read_text().strip() == "cg-after-the-kills"


# -- item 6: saving ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model(data) -> CreditModel:
    split = data["split"]
    return train_model(data["features"], data["labels"], train_index=split.train,
                       valid_index=split.valid, scale=ScoreScale(), seed=5)  # fmt: skip


def test_save_never_overwrites_a_complete_model(small_model, tmp_path):
    directory = small_model.save(tmp_path)
    booster = directory / "booster.json"
    before = (booster.stat().st_ino, booster.stat().st_mtime_ns, booster.read_bytes())
    assert small_model.save(tmp_path) == directory
    assert (booster.stat().st_ino, booster.stat().st_mtime_ns, booster.read_bytes()) == before
    assert (tmp_path / LATEST).read_text().strip() == small_model.model_id
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LATEST, small_model.model_id])


def test_save_replaces_a_half_written_directory_of_the_same_id(small_model, data, tmp_path):
    """What a kill left with the old in-place save: model.json from before, booster at 0 bytes."""
    directory = small_model.save(tmp_path / "good")
    broken = tmp_path / "models" / small_model.model_id
    shutil.copytree(directory, broken)
    meta = json.loads((broken / "model.json").read_text())
    del meta["files"]  # the old format listed no files
    (broken / "model.json").write_text(json.dumps(meta))
    (broken / "booster.json").write_bytes(b"")
    with pytest.raises(ModelNotFound, match="booster.json"):
        CreditModel.load(broken)
    assert small_model.save(tmp_path / "models") == broken
    _same_scores(CreditModel.load(broken), small_model, data["features"].head(20))


# -- item 7: finding the latest model ------------------------------------------------
def test_latest_model_follows_the_pointer_not_file_times(small_model, tmp_path):
    first = _renamed(small_model, "cg-first", "2024-01-01T00:00:00+00:00").save(tmp_path)
    _renamed(small_model, "cg-second", "2024-02-01T00:00:00+00:00").save(tmp_path)
    future = time.time() + 3600
    os.utime(first / "model.json", (future, future))  # newest file, not the latest model
    assert latest_model(tmp_path).model_id == "cg-second"
    assert [(e.model_id, e.latest) for e in list_models(tmp_path)] == [
        ("cg-first", False), ("cg-second", True)
    ]  # fmt: skip


def test_without_a_pointer_the_newest_complete_model_by_created_at(small_model, tmp_path):
    """A data directory from before the pointer: temporary and broken directories are skipped."""
    older = _renamed(small_model, "cg-older", "2024-01-01T00:00:00+00:00").save(tmp_path)
    newer = _renamed(small_model, "cg-newer", "2024-06-01T00:00:00+00:00").save(tmp_path)
    late = "2030-01-01T00:00:00+00:00"
    staged = _renamed(small_model, "cg-staged", late).save(tmp_path / "aside")
    shutil.copytree(staged, tmp_path / ".tmp-0123456789ab-cg-staged")
    half = tmp_path / "cg-half"
    shutil.copytree(staged, half)
    (half / "booster.json").write_bytes(b'{"learner": {')  # a truncated write
    (tmp_path / LATEST).unlink()
    for path, stamp in ((older, 3), (newer, 1), (half, 2)):  # file times point elsewhere
        os.utime(path / "model.json", (time.time() + stamp * 60,) * 2)
    assert latest_model(tmp_path).model_id == "cg-newer"
    assert [e.model_id for e in list_models(tmp_path)] == ["cg-older", "cg-newer"]


def test_latest_model_with_no_model_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound, match="creditgraph train"):
        latest_model(tmp_path / "models")
    (tmp_path / LATEST).write_text("../elsewhere\n")
    with pytest.raises(ModelNotFound, match="not a model id"):
        latest_model(tmp_path)


@pytest.mark.parametrize(
    "damage", ["no model.json", "garbage model.json", "empty booster", "truncated labels",
               "temporary"],
)  # fmt: skip
def test_loading_a_corrupt_model_is_model_not_found(small_model, tmp_path, damage):
    directory = small_model.save(tmp_path)
    if damage == "no model.json":
        (directory / "model.json").unlink()
    elif damage == "garbage model.json":
        (directory / "model.json").write_text("{not json")
    elif damage == "empty booster":
        (directory / "booster.json").write_bytes(b"")
    elif damage == "truncated labels":
        labels = directory / "training_labels.parquet"
        labels.write_bytes(labels.read_bytes()[:100])
    else:
        directory = directory.rename(tmp_path / f".tmp-abcdef012345-{directory.name}")
    with pytest.raises(ModelNotFound, match=str(directory.name)):
        CreditModel.load(directory)
    assert all(entry.directory != directory for entry in list_models(tmp_path))


def test_a_corrupt_file_with_its_recorded_size_is_still_model_not_found(small_model, tmp_path):
    directory = small_model.save(tmp_path)
    booster = directory / "booster.json"
    booster.write_bytes(b"x" * booster.stat().st_size)
    with pytest.raises(ModelNotFound, match="corrupt"):
        CreditModel.load(directory)


# -- item 20: too little data --------------------------------------------------------
def test_training_on_a_tiny_set_is_refused_naming_the_counts():
    features, labels = _tabular(300, seed=5)
    split = split_users(labels, 5)
    train_bad = int(labels.loc[split.train].sum())
    valid_bad = int(labels.loc[split.valid].sum())
    assert train_bad < MIN_TRAIN_OUTCOMES and valid_bad < MIN_VALID_OUTCOMES
    with pytest.raises(TrainingError) as refused:
        train_model(features, labels, train_index=split.train, valid_index=split.valid,
                    scale=ScoreScale())  # fmt: skip
    message = str(refused.value)
    assert f"training {train_bad} defaults and {len(split.train) - train_bad} non-defaults" in (
        message
    )
    assert f"validation {valid_bad} defaults" in message
    assert f"at least {MIN_TRAIN_OUTCOMES} of each in training" in message
    assert f"{MIN_VALID_OUTCOMES} of each in validation" in message


def test_too_few_non_defaults_are_refused_too(data):
    features, labels, split = data["features"], data["labels"], data["split"]
    keep = labels.loc[split.valid]
    valid = keep[keep == 1].index.append(keep[keep == 0].index[: MIN_VALID_OUTCOMES - 1])
    with pytest.raises(TrainingError, match=f"{MIN_VALID_OUTCOMES - 1} non-defaults"):
        train_model(features, labels, train_index=split.train, valid_index=valid,
                    scale=ScoreScale())  # fmt: skip


def test_base_points_outside_the_score_range_warn(data, small_model):
    features, labels, split = data["features"], data["labels"], data["split"]
    base = small_model.score(features.head(1)).attrs["base_points"]
    assert 350 <= base <= 950
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)  # the default scale: no warning
        train_model(features, labels, train_index=split.train, valid_index=split.valid,
                    scale=ScoreScale(), seed=5)  # fmt: skip
    narrow = ScoreScale(min_score=350, max_score=base - 50)
    with pytest.warns(TrainingWarning, match=r"base points \d+ fall outside the score range"):
        train_model(features, labels, train_index=split.train, valid_index=split.valid,
                    scale=narrow, seed=5)  # fmt: skip
