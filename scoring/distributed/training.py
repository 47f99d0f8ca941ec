"""Boosting on a Dask cluster with ``xgboost.dask``: the same parameters and constraints.

:func:`cluster_fit` is a :data:`scoring.model.Fit`: :func:`scoring.model.train_model`
builds the design matrix, monotone and interaction constraints exactly as for one
machine, and calibrates and splits factors the same way; only the trees are grown by
the cluster's workers, early-stopping on the validation rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import numpy as np
import xgboost as xgb
from xgboost import dask as dxgb

from creditgraph.scoring.model import Fit, Rows

if TYPE_CHECKING:
    from distributed import Client

LABEL = "\0label"  # a column name no feature can have


def _matrix(client: Client, rows: Rows, partitions: int) -> dxgb.DaskDMatrix:
    design, label = rows
    frame = dd.from_pandas(design.assign(**{LABEL: label}), npartitions=partitions, sort=False)
    return dxgb.DaskDMatrix(client, frame[list(design.columns)], frame[LABEL],
                            enable_categorical=True, missing=np.nan)  # fmt: skip


def cluster_fit(client: Client, partitions: int) -> Fit:
    """A fit that grows the trees on ``client``'s workers, rows in ``partitions`` pieces."""

    def fit(params: dict[str, Any], train: Rows, valid: Rows, rounds: int,
            patience: int) -> xgb.Booster:  # fmt: skip
        result = dxgb.train(
            client, params, _matrix(client, train, partitions), rounds,
            evals=[(_matrix(client, valid, partitions), "valid")],
            early_stopping_rounds=patience, verbose_eval=False,
        )  # fmt: skip
        booster: xgb.Booster = result["booster"]
        return booster[: booster.best_iteration + 1]

    return fit
