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
- ``replace, PAYS forward only``: the same, on a copy whose ``PAYS`` keeps only its
  forward adjacency lists (ladybug's ``storage_direction = 'fwd'``, rebuilt before the
  clock starts). The engine then fails some analysts' queries: a pattern it plans from the
  merchant's side stops with "Failed to get bwd data for rel table PAYS";
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
from creditgraph.graph.schema import DATE, NODE_TYPES, REL_TYPES
from creditgraph.ingest.load import edge_frames

TARGET_S = 20.0  # issue 17: incremental ingest of 1M new event rows at 1M users


def day_tables(day: Path) -> dict[str, pa.Table]:
    """The day's relationships as ``COPY`` takes them: one row per pair, totals as a load
    computes them (:func:`ingest.load.edge_frames`), columns in the schema's order."""
    history = {name: pd.read_csv(day / f"{name}.csv", engine="pyarrow")
               for name in ("payments", "transfers", "friendships")}  # fmt: skip
    tables = {}
    for rel, frame in edge_frames(history).items():
        columns = {"from": frame["src"], "to": frame["dst"]}
        for name, kind in REL_TYPES[rel].properties.items():
            columns[name] = frame[name]
            if kind == DATE:
                columns[name] = pa.array(pd.to_datetime(frame[name]).dt.date, pa.date32())
        tables[rel] = pa.table(columns)
    return tables


EVENTS = ("PAYS", "TRANSFER")  # the relationships whose totals a day changes


@contextmanager
def timed(rows: list[tuple[str, float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    rows.append((name, time.perf_counter() - started))


def store_forward_only(conn: ladybug.Connection, rel: str) -> None:
    """Rebuild ``rel`` with its forward adjacency lists only (same rows and properties)."""
    kind = REL_TYPES[rel]
    a, b = NODE_TYPES[kind.source], NODE_TYPES[kind.target]
    result = conn.execute(
        f"MATCH (a:{a.label})-[r:{rel}]->(b:{b.label}) RETURN a.{a.key} AS `from`, "
        f"b.{b.key} AS `to`" + "".join(f", r.{p} AS {p}" for p in kind.properties)
    )
    assert not isinstance(result, list)  # one statement, one result
    rows = result.get_as_arrow()
    columns = "".join(f", {name} {type_}" for name, type_ in kind.properties.items())
    conn.execute(f"DROP TABLE {rel}")
    conn.execute(f"CREATE REL TABLE {rel}(FROM {a.label} TO {b.label}{columns}) "
                 "WITH (storage_direction = 'fwd')")  # fmt: skip
    conn.execute(f"COPY {rel} FROM $rows", {"rows": rows})


def customers_of_a_merchant(conn: ladybug.Connection) -> str:
    """What the engine answers to the core of ``queries/commerce/owner_customer_quality``."""
    try:
        result = conn.execute(
            "MATCH (:User)-[:OWNS]->(m:Merchant) WITH m LIMIT 1 "
            "OPTIONAL MATCH (c:User)-[:PAYS]->(m) RETURN count(c) AS customers"
        )
        assert not isinstance(result, list)  # one statement, one result
        customers = result.get_as_df()["customers"].iloc[0]
    except RuntimeError as exc:
        return f"fails ({str(exc).splitlines()[0]})"
    return f"answered ({int(customers)} customers)"


def write_day(
    graph: Path, tables: dict[str, pa.Table], replace: bool, forward_only: tuple[str, ...] = ()
) -> list[tuple[str, float]]:
    """Seconds per step of writing the day into a copy of ``graph`` (whose ``forward_only``
    relationships are first rebuilt with forward adjacency lists only)."""
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="creditgraph-floor-") as tmp:
        copy = Path(tmp) / "graph"
        if forward_only:
            shutil.copyfile(graph, copy)
            with ladybug.Database(str(copy)) as db, ladybug.Connection(db) as conn:
                for rel in forward_only:
                    store_forward_only(conn, rel)
                print(f"  a merchant's customers, {'/'.join(forward_only)} forward only: "
                      f"{customers_of_a_merchant(conn)}")  # fmt: skip
            graph = Path(tmp) / "forward-only"
            copy.rename(graph)
        with timed(rows, "copy the version (as a load stages it)"):
            shutil.copyfile(graph, copy)
        db = ladybug.Database(str(copy))
        conn = ladybug.Connection(db)
        run = conn.execute
        run("BEGIN TRANSACTION")
        for rel, table in tables.items():
            if replace and rel in EVENTS:
                a, b = NODE_TYPES[REL_TYPES[rel].source], NODE_TYPES[REL_TYPES[rel].target]
                pairs = table.select(["from", "to"]).rename_columns(["src", "dst"])
                with timed(rows, f"delete {table.num_rows:,} {rel}"):
                    run(f"LOAD FROM $rows MATCH (a:{a.label} {{{a.key}: src}})-[r:{rel}]->"
                        f"(b:{b.label} {{{b.key}: dst}}) DELETE r", {"rows": pairs})  # fmt: skip
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
    models = (("replace", True, ()), ("replace, PAYS forward only", True, ("PAYS",)),
              ("append", False, ()))  # fmt: skip
    for model, replace, forward_only in models:
        rows = write_day(graph, tables, replace, forward_only)
        total = sum(seconds for _, seconds in rows)
        print(f"{model}:")
        for name, seconds in rows:
            print(f"  {name:<40} {seconds:7.2f} s")
        print(f"  {'engine alone':<40} {total:7.2f} s  {total / TARGET_S:5.2f}× the 20 s target")


if __name__ == "__main__":
    main()
