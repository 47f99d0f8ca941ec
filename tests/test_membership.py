"""Key membership and repeats hashed in Arrow agree with pandas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from creditgraph.graph.membership import differs, duplicated, is_in, mapped, positions, rows_in


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


def test_differs_compares_dates_as_dates_and_missing_as_equal() -> None:
    days = pd.to_datetime(["2024-01-02", "2024-01-02", None, None, "2024-03-01"])
    new = pd.DataFrame({"day": days, "n": [1, 1, 2, 2, 3]})
    old = pd.DataFrame({"day": [dt.date(2024, 1, 2), dt.date(2024, 1, 3), None,
                                dt.date(2024, 1, 1), dt.date(2024, 3, 1)],
                        "n": [1, 1, 2, 2, 4]})  # fmt: skip
    assert differs(new, old).tolist() == [False, True, False, True, True]


def test_rows_in_agrees_with_a_merge_and_never_matches_missing_values(keys: pd.DataFrame) -> None:
    rows = keys[["user", "day"]].iloc[:20_000]
    lookup = keys[["user", "day"]].iloc[15_000:40_000].astype({"user": "string[python]"})
    want = rows.merge(lookup.dropna().drop_duplicates().astype({"user": rows["user"].dtype}),
                      how="left", indicator=True)["_merge"].eq("both").to_numpy()  # fmt: skip
    want = want & rows.notna().all(axis=1).to_numpy()
    assert want.any() and not want.all()
    np.testing.assert_array_equal(rows_in(rows, lookup), want)
    assert not rows_in(pd.DataFrame({"a": [None, "x"]}), pd.DataFrame({"a": [None, "y"]})).any()
