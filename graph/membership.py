"""Membership of key columns, hashed in Arrow, and which rows changed.

pandas' ``isin`` on Arrow-backed strings builds its lookup set in a Python loop
(seconds for 200k keys, once per call); Arrow's ``is_in`` hashes it in C++.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Values: TypeAlias = pd.Series | pd.Index | np.ndarray | pa.Array | pa.ChunkedArray


def is_in(values: Values, lookup: Values | Iterable[object]) -> np.ndarray:
    """Whether each of ``values`` is one of ``lookup`` (a missing value never is)."""
    left, right = _arrow(values), _arrow(lookup)
    if len(left) == 0:
        return np.zeros(0, dtype=bool)
    if right.type != left.type:
        if pa.types.is_null(right.type) or len(right) == 0:
            return np.zeros(len(left), dtype=bool)
        right = right.cast(left.type)
    found = pc.is_in(left, value_set=right, skip_nulls=True)
    return found.to_numpy(zero_copy_only=False).astype(bool)


def changed_rows(new: pd.DataFrame, existing: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of ``new`` whose non-key values differ from the stored ones."""
    if new.empty:
        return new
    props = [c for c in new.columns if c not in keys]
    if not props:
        return new.iloc[:0]
    merged = new.merge(existing, on=keys, how="left", suffixes=("", "__old"))
    differs = np.zeros(len(merged), dtype=bool)
    for column in props:
        a, b = merged[column], merged[f"{column}__old"]
        if pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            a, b = pd.to_datetime(a), pd.to_datetime(b)
        both_null = a.isna().to_numpy() & b.isna().to_numpy()
        equal = a.astype(object).to_numpy() == b.astype(object).to_numpy()
        differs |= ~(both_null | equal)
    return merged.loc[differs, new.columns]


def _arrow(values: Values | Iterable[object]) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if not isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = np.asarray(list(values), dtype=object)
    return pa.array(values, from_pandas=True)
