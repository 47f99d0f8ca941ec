"""The one XGBoost training loop: the credit model and ``evaluate`` both fit through it.

With a validation set, boosting stops ``patience`` rounds after the
validation metric last improved and the booster is cut at its best round;
without one it runs exactly ``rounds`` (a refit with a count chosen earlier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import xgboost as xgb


@dataclass(frozen=True)
class Boosted:
    """A fitted booster and how many rounds it kept."""

    booster: xgb.Booster
    rounds: int  # trees per output kept: the best round when early-stopped
    best_score: float  # the validation metric at that round (NaN without validation)


def boost(
    params: dict[str, Any], train: xgb.DMatrix, rounds: int, *,
    valid: xgb.DMatrix | None = None, patience: int | None = None,
    maximize: bool | None = None,
) -> Boosted:  # fmt: skip
    """Fit ``params`` on ``train`` for at most ``rounds`` rounds.

    ``valid`` (with ``patience``) early-stops on the last metric in ``params``;
    ``maximize`` None lets XGBoost tell from the metric's name (AUC up, log-loss
    down). The booster returned is cut at the best round, so predicting with it
    needs no ``iteration_range``.
    """
    if valid is None:
        return Boosted(xgb.train(params, train, num_boost_round=rounds), rounds, float("nan"))
    if patience is None:
        raise TypeError("early stopping on a validation set needs patience")  # a caller's bug
    booster = xgb.train(
        params, train, num_boost_round=rounds, evals=[(valid, "valid")],
        early_stopping_rounds=patience, verbose_eval=False, maximize=maximize,
    )  # fmt: skip
    best = booster.best_iteration + 1
    return Boosted(booster[:best], best, float(booster.best_score))
