"""Membership and repeats of key columns, hashed in Arrow, and which rows changed.

pandas' ``isin`` on Arrow-backed strings builds its lookup set in a Python loop
(seconds for 200k keys, once per call); Arrow's ``is_in`` hashes it in C++. Its
``duplicated`` on Arrow strings takes about 1 s per million rows; dictionary codes
from Arrow and one integer sort take a third of that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

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


def rows_in(rows: pd.DataFrame, lookup: pd.DataFrame) -> np.ndarray:
    """Whether each row of ``rows`` equals some row of ``lookup`` in every column (both have
    the same columns; a row with a missing value never does). Each column of both is coded
    against one dictionary, so no key strings are joined."""
    n = len(rows)
    code = np.zeros(n + len(lookup), dtype=np.int64)
    valid = np.ones(n + len(lookup), dtype=bool)
    for column in rows.columns:
        left, right = _arrow(rows[column]), _arrow(lookup[column])
        if right.type != left.type:
            right = right.cast(left.type)
        encoded = pc.dictionary_encode(pa.concat_arrays([left, right]))
        valid &= encoded.indices.is_valid().to_numpy(zero_copy_only=False)
        codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        size = max(1, len(encoded.dictionary))
        if int(code.max(initial=0)) >= np.iinfo(np.int64).max // size:  # renumber first
            code = pd.factorize(code)[0].astype(np.int64)
        code = code * size + codes
    return valid[:n] & is_in(code[:n], code[n:][valid[n:]])


def positions(values: Values, lookup: Values) -> np.ndarray:
    """Position in ``lookup`` of each of ``values`` (its first), -1 where it is not there
    (a missing value never is)."""
    left, right = _arrow(values), _arrow(lookup)
    if len(left) == 0 or len(right) == 0:
        return np.full(len(left), -1, dtype=np.int64)
    if right.type != left.type:
        right = right.cast(left.type)
    found = pc.index_in(left, value_set=right, skip_nulls=True).fill_null(-1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)


def mapped(values: Values, mapping: pd.Series) -> np.ndarray:
    """``mapping``'s value for each of ``values`` (by ``mapping``'s index), as a NumPy array;
    NaN or NaT where a value is not in the index. pandas' ``map`` on Arrow strings
    converts every string to a Python object first."""
    where = positions(values, mapping.index)
    table = mapping.to_numpy()
    dates = table.dtype.kind == "M"
    missing = np.datetime64("NaT") if dates else np.nan
    if len(table) == 0:
        return np.full(len(where), missing, dtype=table.dtype if dates else float)
    return np.where(where >= 0, table[np.maximum(where, 0)], missing)


def duplicated(
    keys: pd.DataFrame | pd.Series, keep: Literal["first", "last"] = "first"
) -> np.ndarray:
    """pandas' ``keys.duplicated(keep=keep)``: whether each row's key (every column)
    repeats an earlier row's (``"last"``: a later row's); missing values equal each other."""
    frame = keys.to_frame() if isinstance(keys, pd.Series) else keys
    if keep == "last":
        return duplicated(frame.iloc[::-1])[::-1].copy()
    if len(frame) < 2:
        return np.zeros(len(frame), dtype=bool)
    code = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        codes, size = _codes(frame[column])
        if int(code.max()) >= np.iinfo(np.int64).max // size:  # renumber before overflowing
            code = pd.factorize(code)[0].astype(np.int64)
        code = code * size + codes
    order = np.argsort(code, kind="stable")  # equal keys stay in row order: the first is kept
    ordered = code[order]
    repeat = np.zeros(len(code), dtype=bool)
    repeat[order[1:]] = ordered[1:] == ordered[:-1]
    return repeat


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Dense codes of ``values`` (a missing value is one more code) and how many there are."""
    encoded = pc.dictionary_encode(_arrow(values), null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), max(
        1, len(encoded.dictionary)
    )


def changed_rows(new: pd.DataFrame, existing: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows of ``new`` whose non-key values differ from the stored ones."""
    if new.empty:
        return new
    props = [c for c in new.columns if c not in keys]
    if not props:
        return new.iloc[:0]
    merged = new.merge(existing, on=keys, how="left", suffixes=("", "__old"))
    old = merged[[f"{c}__old" for c in props]].set_axis(props, axis=1)
    return merged.loc[differs(merged[props], old), new.columns]


def differs(new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    """Whether each row of ``new`` differs from the same row of ``old`` (same columns, same
    row order) in any value; two missing values are equal, dates compare as dates."""
    result = np.zeros(len(new), dtype=bool)
    for column in new.columns:
        a, b = new[column], old[column]
        if pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            # as instants: boxing each as an object costs about 2 µs a value
            at = pd.to_datetime(a).to_numpy("datetime64[ns]")
            bt = pd.to_datetime(b).to_numpy("datetime64[ns]")
            result |= ~((np.isnat(at) & np.isnat(bt)) | (at == bt))
            continue
        both_null = a.isna().to_numpy() & b.isna().to_numpy()
        equal = a.astype(object).to_numpy() == b.astype(object).to_numpy()
        result |= ~(both_null | equal)
    return result


def _arrow(values: Values | Iterable[object]) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if not isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = np.asarray(list(values), dtype=object)
    array = pa.array(values, from_pandas=True)  # chunked when pandas holds Arrow chunks
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
