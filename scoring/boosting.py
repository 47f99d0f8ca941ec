"""The one XGBoost training loop: the credit model and ``evaluate`` both fit through it.

With a validation set, boosting stops ``patience`` rounds after the
validation metric last improved and the booster is cut at its best round;
without one it runs exactly ``rounds`` (a refit with a count chosen earlier).
:func:`boost_folds` cross-validates (``evaluate``'s inner CV) and keeps no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def boost_folds(
    params: dict[str, Any], folds: Sequence[tuple[xgb.DMatrix, xgb.DMatrix]], rounds: int, *,
    patience: int, maximize: bool = True,
) -> np.ndarray:  # fmt: skip
    """Cross-validate ``params``: one booster per (train, valid) fold, boosted in lockstep.

    As ``xgboost.cv``, boosting stops ``patience`` rounds after the folds' mean
    validation metric (the last in ``params``) last improved, so every fold runs
    the same rounds. Returns that metric per round (rows) and fold (columns),
    from which a caller picks a round count and a spread; no model is kept.
    """
    boosters = [xgb.Booster(params, [train, valid]) for train, valid in folds]
    sign = 1.0 if maximize else -1.0
    history: list[list[float]] = []
    best, best_round = -np.inf, 0
    for i in range(rounds):
        row = []
        for booster, (train, valid) in zip(boosters, folds, strict=True):
            booster.update(train, i)
            # "[i]\tvalid-auc:0.81": the last metric's value ends the line
            row.append(float(booster.eval(valid, "valid", i).rsplit(":", 1)[1]))
        history.append(row)
        if sign * np.mean(row) > best:
            best, best_round = sign * float(np.mean(row)), i
        elif i - best_round >= patience:
            break
    return np.array(history)
