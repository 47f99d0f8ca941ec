"""Key membership and repeats hashed in Arrow agree with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from creditgraph.graph.membership import duplicated, is_in, mapped, positions


@pytest.fixture(scope="module")
def keys() -> pd.DataFrame:
    """Arrow strings, dates and nullable integers with repeats and missing values."""
    rng = np.random.default_rng(3)
    n = 50_000
    frame = pd.DataFrame({
        "user": pd.array(rng.integers(0, 400, n).astype(str), dtype="string[pyarrow]"),
        "day": pd.to_datetime(rng.integers(0, 30, n), unit="D"),
        "count": pd.array(rng.integers(0, 6, n), dtype="Int64"),
    })  # fmt: skip
    frame.loc[rng.random(n) < 0.05, "user"] = None
    frame.loc[rng.random(n) < 0.05, "count"] = None
    text = frame["user"].astype(object)  # as read from CSV: Arrow strings in several chunks
    frame["user"] = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(
        [pa.array(text[: n // 2], type=pa.string(), from_pandas=True),
         pa.array(text[n // 2 :], type=pa.string(), from_pandas=True)])))  # fmt: skip
    return frame


@pytest.mark.parametrize("keep", ["first", "last"])
@pytest.mark.parametrize("columns", [["user"], ["user", "day"], ["user", "day", "count"]])
def test_duplicated_is_pandas(keys: pd.DataFrame, columns: list[str], keep: str) -> None:
    expected = keys[columns].duplicated(keep=keep).to_numpy()  # type: ignore[arg-type]
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(duplicated(keys[columns], keep=keep), expected)  # type: ignore[arg-type]


def test_duplicated_series_and_edges() -> None:
    ids = pd.Series(["b", None, "a", "b", None, "c"], dtype="string[pyarrow]")
    np.testing.assert_array_equal(duplicated(ids), [False, False, False, True, True, False])
    np.testing.assert_array_equal(duplicated(ids, keep="last"),
                                  [True, True, False, False, False, False])  # fmt: skip
    assert duplicated(ids.iloc[:1]).tolist() == [False]
    assert duplicated(ids.iloc[:0]).tolist() == []


def test_many_wide_columns_do_not_overflow() -> None:
    """Codes of several high-cardinality columns are renumbered before they overflow."""
    n = 20_000
    frame = pd.DataFrame({f"c{i}": np.arange(n).astype(str) for i in range(6)})
    frame.iloc[-1] = frame.iloc[0]
    mask = duplicated(frame)
    assert mask.sum() == 1 and mask[-1]


def test_is_in_skips_missing() -> None:
    values = pd.Series(["a", None, "c"], dtype="string[pyarrow]")
    assert is_in(values, ["a", None]).tolist() == [True, False, False]


def test_positions_and_mapped_are_pandas() -> None:
    keys = pd.Index(["a", "b", "c"])
    dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]), index=keys)
    values = pd.Series(["c", "x", None, "a", "c"], dtype="str")
    assert positions(values, keys).tolist() == [2, -1, -1, 0, 2]
    expected = values.map(dates).to_numpy(dtype="datetime64[ns]")
    np.testing.assert_array_equal(mapped(values, dates).astype("datetime64[ns]"), expected)
    np.testing.assert_array_equal(mapped(values, pd.Series([1.5, 2.5, 3.5], index=keys)),
                                  [3.5, np.nan, np.nan, 1.5, 3.5])  # fmt: skip
    assert np.isnat(mapped(values, dates.iloc[:0])).all()
