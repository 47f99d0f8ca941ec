"""Turn a feature frame into the model's design matrix: fixed columns, dtypes and categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from creditgraph.errors import MissingColumns


def categories_of(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The categories of every categorical or string column (fixed at training time)."""
    out: dict[str, list[str]] = {}
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            out[column] = [str(c) for c in series.cat.categories]
        elif not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            out[column] = sorted(str(v) for v in series.dropna().unique())
    return out


def design_matrix(
    frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Exactly ``features`` in order; numeric as float, categoricals with the training categories.

    A category unseen in training becomes missing (XGBoost then follows the
    learned default branch) rather than silently taking another code.
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise MissingColumns(
            f"feature columns missing from input: {missing[:12]}"
            + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        )
    columns = {}
    for name in features:
        if name in categories:
            values = frame[name].astype(object).where(frame[name].notna(), None)
            text = values.map(lambda v: None if v is None else str(v))
            columns[name] = pd.Categorical(text, categories=categories[name])
        else:
            columns[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return pd.DataFrame(columns, index=frame.index)


def dmatrix(design: pd.DataFrame, label: np.ndarray | None = None) -> xgb.DMatrix:
    return xgb.DMatrix(design, label=label, enable_categorical=True, missing=np.nan, nthread=-1)
