"""The one XGBoost training loop, and that the model and evaluate both go through it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from creditgraph.scoring.boosting import boost

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2, "eta": 0.3,
          "seed": 0}  # fmt: skip


def _data(n: int, seed: int) -> xgb.DMatrix:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + rng.normal(scale=2.0, size=n) > 0).astype(float)  # noisy: it overfits
    return xgb.DMatrix(x, y)


def test_early_stopping_cuts_the_booster_at_its_best_round() -> None:
    train, valid = _data(400, 0), _data(200, 1)
    fitted = boost(PARAMS, train, 500, valid=valid, patience=10)
    reference = xgb.train(PARAMS, train, 500, evals=[(valid, "valid")],
                          early_stopping_rounds=10, verbose_eval=False)  # fmt: skip
    assert fitted.rounds == reference.best_iteration + 1 < 500  # it stopped early
    assert fitted.booster.num_boosted_rounds() == fitted.rounds
    assert fitted.best_score == pytest.approx(reference.best_score)
    cut = reference.predict(valid, iteration_range=(0, fitted.rounds))
    np.testing.assert_array_equal(fitted.booster.predict(valid), cut)


def test_without_validation_it_runs_exactly_the_rounds_given() -> None:
    train = _data(300, 2)
    fitted = boost(PARAMS, train, 17)
    assert fitted.rounds == fitted.booster.num_boosted_rounds() == 17
    assert np.isnan(fitted.best_score)
    np.testing.assert_array_equal(
        fitted.booster.predict(train), xgb.train(PARAMS, train, 17).predict(train)
    )


def test_early_stopping_needs_patience() -> None:
    with pytest.raises(TypeError, match="patience"):
        boost(PARAMS, _data(50, 3), 10, valid=_data(50, 4))


def test_nothing_else_in_the_package_trains_xgboost() -> None:
    """``xgb.train`` is called in scoring/boosting.py only (``xgb.cv`` estimates, keeps nothing)."""
    callers = [
        path.relative_to(ROOT).as_posix()
        for folder in ("creditgraph", "graph", "ingest", "scoring", "queries")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bxgb\.train\(|\bxgboost\.train\(", path.read_text())
    ]
    assert callers == ["scoring/boosting.py"]
