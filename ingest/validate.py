"""Validate one input file against its declared schema, vectorised.

Good rows come back typed; bad rows come back as reject records naming the
file, the row (1-based data row; the CSV line is row + 1), the field, the
value and the reason. Nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.errors import SchemaError
from creditgraph.graph.membership import duplicated, is_in
from creditgraph.ingest.schemas import Column, DateWindow, FileSchema

REJECT_COLUMNS = ["file", "row", "field", "value", "reason"]
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Validated:
    """A validated file: typed good rows and one reject record per failed field."""

    schema: FileSchema
    path: Path
    rows: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int

    @property
    def rejected_rows(self) -> int:
        return int(self.rejects["row"].nunique()) if len(self.rejects) else 0


def find_file(directory: Path, schema: FileSchema) -> Path | None:
    """The schema's file in ``directory`` (``.csv`` or ``.parquet``), or ``None``.

    Both present is ambiguous (which one is current?) and refused.
    """
    found = [directory / f"{schema.name}{s}" for s in (".csv", ".parquet")]
    found = [path for path in found if path.exists()]
    if len(found) > 1:
        raise SchemaError(
            f"both {found[0].name} and {found[1].name} are in {directory}; keep only one",
            file=found[0].name,
        )
    return found[0] if found else None


def read_raw(path: Path, schema: FileSchema) -> pd.DataFrame:
    """Read a file as text columns (so bad values can be reported as they were)."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
            for column in frame.columns:
                frame[column] = frame[column].map(_as_text, na_action="ignore")
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                                engine="pyarrow")  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SchemaError(f"cannot read: {exc}", file=path.name) from exc
    missing = [c.name for c in schema.columns if c.name not in frame.columns and not c.optional]
    if missing:
        raise SchemaError(
            f"missing column(s) {missing}; expected {[c.name for c in schema.columns]}",
            file=path.name,
            field=missing[0],
        )
    return frame[[c.name for c in schema.columns if c.name in frame.columns]]


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def validate(
    path: Path,
    schema: FileSchema,
    known_keys: dict[str, pd.Index] | None = None,
    *,
    window: DateWindow | None = None,
) -> Validated:
    """Check types, required fields, allowed values, ranges, finite numbers, plausible dates
    (``window``, default :class:`DateWindow`), rules between a row's columns (a date not
    before another, a column given only when another says so), duplicate keys and references.

    ``known_keys`` maps a referenced file name (e.g. ``"users"``) to its accepted keys.
    """
    window = window or DateWindow()
    raw = read_raw(path, schema)
    typed = pd.DataFrame(index=raw.index)
    problems: list[pd.DataFrame] = []

    def reject(mask: np.ndarray | pd.Series, field: str, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems.append(
                pd.DataFrame(
                    {
                        "file": path.name,
                        "row": raw.index[mask] + 1,
                        "field": field,
                        "value": raw.loc[mask, field].astype(object).to_numpy()
                        if field in raw
                        else None,
                        "reason": reason,
                    }
                )
            )

    for column in schema.columns:
        if column.name not in raw:  # an optional personal column the file does not have
            continue
        text = _strip(raw[column.name])
        present = text.notna().to_numpy()
        if column.required:
            reject(~present, column.name, "required value is missing")
        value, bad_type = _parse(text, column)
        reject(present & bad_type, column.name, f"not a valid {column.kind}")
        ok = present & ~bad_type
        if column.kind == "float":
            infinite = ok & ~np.isfinite(value.to_numpy(dtype=float, na_value=0.0))
            reject(infinite, column.name, "not a finite number")
            ok &= ~infinite
        if column.kind == "date":
            first, last = window.earliest, window.last(column.scheduled)
            early, late = (value < pd.Timestamp(first)), (value > pd.Timestamp(last))
            reject(ok & early.to_numpy(), column.name, f"before earliest date {first}")
            ahead = f" (latest + {window.ahead_days} days for scheduled dates)"
            reason = f"after latest date {last}" + (ahead if column.scheduled else "")
            reject(ok & late.to_numpy(), column.name, reason)
        if column.allowed is not None:
            reject(
                ok & ~is_in(text, column.allowed),
                column.name,
                f"not one of {list(column.allowed)}",
            )
        if column.min is not None:
            reject(ok & (value < column.min).to_numpy(), column.name, f"below minimum {column.min}")
        if column.max is not None:
            reject(ok & (value > column.max).to_numpy(), column.name, f"above maximum {column.max}")
        typed[column.name] = value

    # Rules between columns of one row, on values that passed their own column's checks.
    for column in schema.columns:
        if column.name not in typed:
            continue
        if column.not_before is not None:
            other = column.not_before
            earlier = (typed[column.name] < typed[other]).to_numpy(dtype=bool, na_value=False)
            reject(earlier, column.name, f"before {other} of the same row")
        if column.given_when is not None:
            when, values = column.given_when
            present = _strip(raw[column.name]).notna().to_numpy()
            stated = _strip(raw[when])
            known = stated.isin(schema.column(when).allowed or stated.dropna().unique())
            holds = stated.isin(values).to_numpy()
            said = f"{when} is {' or '.join(values)}"
            reject(holds & ~present, column.name, f"required when {said}")
            reject(known.to_numpy() & ~holds & present, column.name, f"given only when {said}")

    for field, target in schema.references.items():
        if known_keys is not None and target in known_keys:
            present = typed[field].notna().to_numpy()
            reject(
                present & ~is_in(typed[field], known_keys[target]),
                field,
                f"unknown {target} id (not in {target} file)",
            )
    if schema.key:
        either = " in either order" if schema.undirected else ""
        reject(
            duplicated(schema.key_frame(typed)),
            schema.key[0],
            f"duplicate key {list(schema.key)}{either} (first occurrence kept)",
        )
    if schema.event_id is not None and schema.event_id in typed:
        ids = typed[schema.event_id]
        reject(
            ids.notna().to_numpy() & duplicated(ids),
            schema.event_id,
            f"duplicate key {[schema.event_id]} (first occurrence kept)",
        )
    if {"src", "dst"} <= set(schema.references):
        reject((typed["src"] == typed["dst"]).to_numpy(), "dst", "relationship to itself")

    rejects = (
        pd.concat(problems, ignore_index=True).sort_values(["row", "field"], kind="stable")
        if problems
        else pd.DataFrame(columns=REJECT_COLUMNS)
    )
    if len(rejects):  # (dropping no rows would still copy every column)
        good = typed.drop(index=raw.index[rejects["row"].unique() - 1]).reset_index(drop=True)
    else:
        good = typed.reset_index(drop=True)
    return Validated(schema, path, good, rejects.reset_index(drop=True), len(raw))


_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 32]] = True
_ASCII_SPACE[128:] = True  # a multi-byte character may be a space too: strip to be sure


def _strip(text: pd.Series) -> pd.Series:
    """``text`` without surrounding whitespace.

    Stripping copies every value; a column whose values all begin and end with
    a printable ASCII byte (read off its Arrow buffers) is returned as it is.
    """
    if text.dtype == object or any(_edge_may_be_space(chunk) for chunk in _chunks(text)):
        return text.str.strip()
    return text


def _chunks(text: pd.Series) -> list[pa.Array]:
    values = pa.array(text, from_pandas=True)
    return list(values.chunks) if isinstance(values, pa.ChunkedArray) else [values]


def _edge_may_be_space(chunk: pa.Array) -> bool:
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        return True
    _, offsets, data = chunk.buffers()
    if data is None:
        return False
    wide = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    window = slice(chunk.offset, chunk.offset + len(chunk) + 1)
    bounds = np.frombuffer(offsets, dtype=wide)[window].astype(np.int64)
    start, end = bounds[:-1], bounds[1:]
    filled = end > start
    byte = np.frombuffer(data, dtype=np.uint8)
    return bool(
        _ASCII_SPACE[byte[start[filled]]].any() or _ASCII_SPACE[byte[end[filled] - 1]].any()
    )


def _to_number(text: pd.Series) -> pd.Series:
    """Numbers of a text column, NaN where one does not parse.

    Arrow's parser (in C++) takes a clean column at once; pandas' ``to_numeric``,
    which goes value by value, only reads a column holding an unparsable value.
    """
    try:
        parsed = pc.cast(pa.array(text, type=pa.string(), from_pandas=True), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pd.to_numeric(text, errors="coerce").astype(float)
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index)


def _to_date(text: pd.Series) -> pd.Series:
    """Dates of a YYYY-MM-DD text column, NaT where one does not parse.

    Arrow's ISO-8601 cast (in C++) takes a column whose every value is ten
    characters long at once; otherwise pandas reads it value by value.
    """
    values = pa.array(text, type=pa.string(), from_pandas=True)
    if pc.all(pc.equal(pc.utf8_length(values), 10)).as_py() is not False:
        try:
            parsed = pc.cast(values, pa.timestamp("s"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            days = parsed.to_numpy(zero_copy_only=False).astype("datetime64[us]")
            return pd.Series(days, index=text.index)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")


def _parse(text: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray]:
    """Typed values and a mask of present values that failed to parse."""
    present = text.notna()
    if column.kind == "str":
        return text, np.zeros(len(text), dtype=bool)
    if column.kind in ("int", "float"):
        number = _to_number(text)
        bad = present & number.isna()
        if column.kind == "int":  # whole and exact in a float64 (|n| < 2**53)
            bad |= present & number.notna() & ((number % 1 != 0) | (number.abs() >= 2**53))
            number = number.where(~bad).astype("Int64")
        return number, bad.to_numpy()
    if column.kind == "date":
        date = _to_date(text)
        return date, (present & date.isna()).to_numpy()
    if column.kind == "bool":
        lower = text.str.lower()
        value = pd.Series(pd.NA, index=text.index, dtype="boolean")
        value[lower.isin(_TRUE)] = True
        value[lower.isin(_FALSE)] = False
        return value, (present & value.isna()).to_numpy()
    raise ValueError(f"unknown column kind {column.kind!r} for {column.name}")
