"""What the embedded engine alone costs to take a day of events, whatever creditgraph does
around it: the floor under issue 17's incremental-ingest target.

    python benchmarks/embedded_floor.py --data-dir DIR --day DAY

``DIR`` is a data directory with the world loaded (``creditgraph ingest``) and ``DAY`` a
folder of new events not yet loaded into it (``benchmarks/nightly.py`` writes one:
payments, transfers, friendships). Each way of writing the day runs on its own copy of
the current graph version, in one transaction, then commits and closes (the checkpoint),
as a load does:

- ``replace`` (the graph model creditgraph has: one relationship per pair): delete the
  pairs the day's payments and transfers touch, copy them again with new totals (the
  totals here are the day's own: the engine's work is the same), copy new friendships;
- ``append`` (one relationship per pair and load, which readers would have to sum):
  copy the day's pair totals and friendships as new relationships, touching nothing.

Nothing here validates, reads history or recomputes totals: those come on top.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ladybug
import pandas as pd
import pyarrow as pa

from creditgraph.durable import read_pointer

TARGET_S = 20.0  # issue 17: incremental ingest of 1M new event rows at 1M users


def _dates(values: pd.Series) -> pa.Array:
    return pa.array(pd.to_datetime(values).dt.date, pa.date32())


def day_tables(day: Path) -> dict[str, pa.Table]:
    """The day's relationships as ``COPY`` takes them: one row per pair (totals per pair)."""

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(day / f"{name}.csv", engine="pyarrow")

    pays = read("payments").groupby(["user_id", "merchant_id"], as_index=False).agg(
        n=("amount", "size"), amount=("amount", "sum"), last_date=("date", "max"))  # fmt: skip
    transfers = read("transfers").groupby(["src", "dst"], as_index=False).agg(
        n=("amount", "size"), amount=("amount", "sum"), first_date=("date", "min"),
        last_date=("date", "max"))  # fmt: skip
    friends = read("friendships")
    return {
        "PAYS": pa.table({"from": pays["user_id"], "to": pays["merchant_id"], "n": pays["n"],
                          "amount": pays["amount"], "last_date": _dates(pays["last_date"])}),
        "TRANSFER": pa.table({"from": transfers["src"], "to": transfers["dst"],
                              "n": transfers["n"], "amount": transfers["amount"],
                              "first_date": _dates(transfers["first_date"]),
                              "last_date": _dates(transfers["last_date"])}),
        "FRIEND": pa.table({"from": friends["src"], "to": friends["dst"],
                            "since": _dates(friends["since"]),
                            "src_interactions": friends["src_interactions"],
                            "dst_interactions": friends["dst_interactions"]}),
    }  # fmt: skip


ENDPOINTS = {"PAYS": ("User", "user_id", "Merchant", "merchant_id"),
             "TRANSFER": ("User", "user_id", "User", "user_id")}  # fmt: skip


@contextmanager
def timed(rows: list[tuple[str, float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    rows.append((name, time.perf_counter() - started))


def write_day(graph: Path, tables: dict[str, pa.Table], replace: bool) -> list[tuple[str, float]]:
    """Seconds per step of writing the day into a copy of ``graph``."""
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="creditgraph-floor-") as tmp:
        copy = Path(tmp) / "graph"
        with timed(rows, "copy the version (as a load stages it)"):
            shutil.copyfile(graph, copy)
        db = ladybug.Database(str(copy))
        conn = ladybug.Connection(db)
        run = conn.execute
        run("BEGIN TRANSACTION")
        for rel, table in tables.items():
            if replace and rel in ENDPOINTS:
                a, a_key, b, b_key = ENDPOINTS[rel]
                pairs = table.select(["from", "to"]).rename_columns(["src", "dst"])
                with timed(rows, f"delete {table.num_rows:,} {rel}"):
                    run(f"LOAD FROM $rows MATCH (a:{a} {{{a_key}: src}})-[r:{rel}]->"
                        f"(b:{b} {{{b_key}: dst}}) DELETE r", {"rows": pairs})  # fmt: skip
            with timed(rows, f"copy {table.num_rows:,} {rel}"):
                run(f"COPY {rel} FROM $rows", {"rows": table})
        with timed(rows, "commit"):
            run("COMMIT")
        with timed(rows, "close (checkpoint)"):
            conn.close()
            db.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--day", type=Path, required=True)
    args = parser.parse_args()
    graphs = args.data_dir / "graphs"
    graph = graphs / str(read_pointer(graphs / "CURRENT"))
    tables = day_tables(args.day)
    print(f"embedded engine floor: {graph.stat().st_size / 2**20:,.0f} MiB store, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    for model, replace in (("replace", True), ("append", False)):
        rows = write_day(graph, tables, replace)
        total = sum(seconds for _, seconds in rows)
        print(f"{model}:")
        for name, seconds in rows:
            print(f"  {name:<40} {seconds:7.2f} s")
        print(f"  {'engine alone':<40} {total:7.2f} s  {total / TARGET_S:5.2f}× the 20 s target")


if __name__ == "__main__":
    main()
