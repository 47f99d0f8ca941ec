"""Values between Python/pandas/numpy and the Neo4j driver, both ways.

Going in, a frame column becomes driver-ready Python values of its schema type
(every missing value ``None``, which removes the property); coming out, driver
values (temporal types, lists, maps) become plain Python values and columns the
numpy arrays the embedded store gives for the same schema type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from creditgraph.errors import QueryError
from creditgraph.graph.schema import ARROW_TYPES, BOOL, DATE, FLOAT, INT, STRING, TIMESTAMP


def python_values(series: pd.Series, kind: str) -> list[Any]:
    """A column as driver-ready Python values; every missing value becomes ``None``."""
    missing = series.isna().to_numpy()
    values: list[Any]
    if kind == DATE:
        stamps = pd.to_datetime(series)
        values = [None if m else s.date() for s, m in zip(stamps, missing, strict=True)]
    elif kind == TIMESTAMP:
        stamps = pd.to_datetime(series)
        if getattr(stamps.dt, "tz", None) is not None:  # stored as UTC LocalDateTime
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        values = [None if m else s.to_pydatetime() for s, m in zip(stamps, missing, strict=True)]
    else:
        casts: dict[str, Callable[[Any], Any]] = {INT: int, FLOAT: float, BOOL: _to_bool}
        cast = casts.get(kind, str)
        values = [None if m else cast(v) for v, m in zip(series.tolist(), missing, strict=True)]
    return values


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):  # bool("false") would be True
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise QueryError(f"{value!r} is not a boolean")
        return value.strip().lower() in ("true", "1")
    return bool(value)


def unwind_rows(
    frame: pd.DataFrame, keys: Mapping[str, str], kinds: Mapping[str, str]
) -> list[dict]:
    """``[{<key columns>, "props": {...}}]`` rows for ``UNWIND $rows``; None removes a property."""
    columns = {c: python_values(frame[c], kinds.get(c, STRING)) for c in frame.columns}
    props = [c for c in frame.columns if c not in keys]
    out = []
    for i in range(len(frame)):
        row: dict[str, Any] = {alias: columns[c][i] for c, alias in keys.items()}
        row["props"] = {c: columns[c][i] for c in props}
        out.append(row)
    return out


def native(value: Any) -> Any:
    """Driver values (temporal types, nodes) as plain Python values."""
    if hasattr(value, "to_native"):
        return value.to_native()
    if isinstance(value, list):
        return [native(v) for v in value]
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    return value


def column_array(values: list[Any], kind: str | None) -> np.ndarray:
    """Values as the numpy array the embedded store gives for the same column type."""
    values = [native(v) for v in values]
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    try:
        array = pa.array(values, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return np.array(values, dtype=object)
    return array.to_numpy(zero_copy_only=False)


def key_strings(series: pd.Series, what: str) -> pd.Series:
    """Keys as strings, as the store keeps them; a missing key is a :class:`QueryError`."""
    if series.isna().any():
        raise QueryError(f"{what}: {int(series.isna().sum())} rows have no key")
    return series.astype(str)


def property_chunk(values: list[Any], kind: str | None) -> pa.Array | list[Any]:
    """One chunk of a property as an Arrow array of its schema type (as values if it is not)."""
    natives = [native(v) for v in values]
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    try:
        return pa.array(natives, type=arrow_type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return natives


def property_array(parts: list[pa.Array | list[Any]], kind: str | None) -> np.ndarray:
    """Chunks of one property as the numpy array the embedded store gives for its type."""
    arrow_type = ARROW_TYPES.get(kind) if kind else None
    arrays = [part for part in parts if isinstance(part, pa.Array)]
    if len(arrays) == len(parts) and (arrow_type is not None or len({a.type for a in arrays}) < 2):
        if not arrays:
            return column_array([], kind)
        return pa.chunked_array(arrays, type=arrow_type).to_numpy()
    lists = [part.to_pylist() if isinstance(part, pa.Array) else part for part in parts]
    values = [v for part in lists for v in part]
    return column_array(values, kind)
