"""The initial bulk load of Neo4j: CSV files and the exact ``neo4j-admin`` import command.

Transactional loading (:class:`graph.neo4j.store.Neo4jStore`) runs at tens of
thousands of rows a second; ``neo4j-admin database import full`` writes the
store files directly and loads millions of rows a minute into a database that
does not exist yet. :func:`write_import_bundle` writes one CSV per node label
and relationship type in the tool's header format (Neo4j 5 operations manual,
"Import" → "CSV header format") plus ``import.sh`` with the command.

Header format used here::

    user_id:ID(User),signup_date:date,age:long,city,...,real_name_verified:boolean
    :START_ID(User),:END_ID(User),since:date,src_interactions:long,...

Each label is its own ID space (``ID(User)``), so ids need only be unique per
label; the key is stored as a string property of that name. Labels and types
come from the command line (``--nodes=User=...``, ``--relationships=FRIEND=...``).
A (src, dst) pair repeated in a relationship table is written once, the last
row winning, as :meth:`graph.neo4j.store.Neo4jStore.upsert_edges` merges it.
Values: strings are always quoted (a quote inside is doubled, RFC 4180), so an
empty string ``""`` stays an empty string while an empty unquoted field is a
missing value; dates are ISO ``YYYY-MM-DD``; timestamps
``YYYY-MM-DDTHH:MM:SS.ffffff`` as ``localdatetime`` (UTC). A field with a line break turns on
``--multiline-fields=true``.

The import report goes to ``--report-file``: ``/data/import-<database>.report``
when ``/data`` (``IMPORT_DATA_DIR``) is writable (the Neo4j image, where the
bundle's ``/import`` mount is a host folder the ``neo4j`` user cannot write),
else next to the bundle; ``IMPORT_REPORT_FILE`` overrides both. CSV rather than
``--input-type=parquet`` (new in 5.26): the CSV header format is what
:func:`read_import_file` and the tests pin down.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from creditgraph.errors import SchemaError
from creditgraph.graph.schema import (
    ARROW_TYPES,
    BOOL,
    DATE,
    FLOAT,
    INT,
    NODE_TYPES,
    REL_TYPES,
    STRING,
    TIMESTAMP,
    NodeType,
    RelType,
)

# Portable schema types → neo4j-admin import header types (INT64 is ``long``; ``int`` is 32-bit).
IMPORT_TYPES = {
    STRING: "string",
    INT: "long",
    FLOAT: "double",
    BOOL: "boolean",
    DATE: "date",
    TIMESTAMP: "localdatetime",
}
COMMAND_FILE = "import.sh"


def node_file(label: str) -> str:
    return f"nodes-{label}.csv"


def relationship_file(rel: str) -> str:
    return f"relationships-{rel}.csv"


def _property_header(name: str, kind: str) -> str:
    return name if kind == STRING else f"{name}:{IMPORT_TYPES[kind]}"


def node_header(node: NodeType, columns: list[str]) -> list[str]:
    """Header fields for a node file with ``columns`` (the key first)."""
    return [f"{node.key}:ID({node.label})"] + [
        _property_header(c, node.properties[c]) for c in columns if c != node.key
    ]


def relationship_header(rel: RelType, columns: list[str]) -> list[str]:
    """Header fields for a relationship file with ``src``, ``dst`` and property ``columns``."""
    return [f":START_ID({rel.source})", f":END_ID({rel.target})"] + [
        _property_header(c, rel.properties[c]) for c in columns if c not in ("src", "dst")
    ]


def _arrow_column(series: pd.Series, kind: str, where: str) -> pa.Array:
    """A column as the Arrow array whose CSV rendering the import tool reads as ``kind``."""
    try:
        if kind == DATE:
            return pa.array(pd.to_datetime(series).dt.date, type=pa.date32(), from_pandas=True)
        if kind == TIMESTAMP:
            stamps = pd.to_datetime(series)
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            array = pa.array(stamps, type=pa.timestamp("us"), from_pandas=True)
            return pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
        if kind == STRING:
            values = series.astype(object).where(series.notna(), None)
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
        if kind == INT and pd.api.types.is_float_dtype(series):
            series = series.astype("Int64")  # whole numbers with gaps, not "3.0"
        return pa.array(series, type=ARROW_TYPES[kind], from_pandas=True)
    except (ValueError, TypeError, pa.ArrowInvalid) as exc:
        raise SchemaError(
            f"cannot write as {IMPORT_TYPES[kind]}: {exc}", file=where, field=str(series.name)
        ) from exc


def _write_csv(path: Path, header: list[str], columns: dict[str, pa.Array]) -> bool:
    """Write one import file; return whether a value holds a line break."""
    table = pa.table(columns)
    multiline = False
    for column in table.columns:
        if pa.types.is_string(column.type):
            found = pc.any(pc.match_substring_regex(column, r"[\r\n]")).as_py()
            multiline = multiline or bool(found)
    with path.open("wb") as fh:
        fh.write((",".join(header) + "\n").encode("utf-8"))
        # "needed" quotes every string and leaves numbers, booleans, dates and nulls bare.
        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return multiline


def _keys(frame: pd.DataFrame, column: str, where: str) -> pd.Series:
    if column not in frame.columns:
        raise SchemaError(f"missing column {column!r}", file=where, field=column)
    keys = frame[column]
    if keys.isna().any():
        row = int(keys.isna().to_numpy().argmax())
        raise SchemaError("missing key", file=where, row=row, field=column)
    return keys.astype(str)


def write_import_bundle(
    tables: Mapping[str, pd.DataFrame], out_dir: Path | str, *, database: str = "neo4j"
) -> Path:
    """Write import CSVs for ``tables`` into ``out_dir``; return the path of ``import.sh``.

    ``tables`` maps node labels (frames with the key and property columns of
    :mod:`graph.schema`) and relationship types (frames with ``src``, ``dst``
    and property columns) to their rows; other columns are left out. Node keys
    must be unique and every relationship must end at a node in the bundle,
    else :class:`SchemaError` names the file, row and value.

    Run the script with the server stopped, into a database that does not
    exist yet (see the script's comments for Docker)::

        >>> script = write_import_bundle({"User": users, "FRIEND": friends}, "bundle")
        >>> print(script.read_text())  # doctest: +SKIP
    """
    unknown = sorted(set(tables) - set(NODE_TYPES) - set(REL_TYPES))
    if unknown:
        raise SchemaError(
            f"unknown tables {unknown}; use node labels {sorted(NODE_TYPES)} "
            f"or relationship types {sorted(REL_TYPES)}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args: list[str] = []
    multiline = False
    ids: dict[str, pd.Index] = {}
    for label, frame in tables.items():
        if label not in NODE_TYPES:
            continue
        node, where = NODE_TYPES[label], node_file(label)
        keys = _keys(frame, node.key, where)
        duplicated = keys.duplicated()
        if duplicated.any():
            row = int(duplicated.to_numpy().argmax())
            raise SchemaError(
                "duplicate key", file=where, row=row, field=node.key, value=keys.iloc[row]
            )
        ids[label] = pd.Index(keys)
        columns = [node.key] + [c for c in frame.columns if c in node.properties and c != node.key]
        arrays = {node.key: pa.array(keys.tolist(), type=pa.string())}
        arrays |= {c: _arrow_column(frame[c], node.properties[c], where) for c in columns[1:]}
        multiline |= _write_csv(out / where, node_header(node, columns), arrays)
        args.append(f"--nodes={label}={where}")
    for name, frame in tables.items():
        if name not in REL_TYPES:
            continue
        rel, where = REL_TYPES[name], relationship_file(name)
        ends: dict[str, pd.Series] = {}
        for column, label in (("src", rel.source), ("dst", rel.target)):
            keys = _keys(frame, column, where)
            if label not in ids:
                raise SchemaError(
                    f"relationships need the {label} node table in the same bundle",
                    file=where,
                    field=column,
                )
            unknown_end = ~keys.isin(ids[label])
            if unknown_end.any():
                row = int(unknown_end.to_numpy().argmax())
                raise SchemaError(
                    f"no {label} node with this key",
                    file=where,
                    row=row,
                    field=column,
                    value=keys.iloc[row],
                )
            ends[column] = keys
        # One relationship a pair, the last row winning, as the store's MERGE keeps it.
        keep = ~pd.DataFrame(ends).duplicated(keep="last").to_numpy()
        frame = frame.loc[keep]
        arrays = {c: pa.array(keys[keep].tolist(), type=pa.string()) for c, keys in ends.items()}
        columns = ["src", "dst"] + [c for c in frame.columns if c in rel.properties]
        arrays |= {c: _arrow_column(frame[c], rel.properties[c], where) for c in columns[2:]}
        multiline |= _write_csv(out / where, relationship_header(rel, columns), arrays)
        args.append(f"--relationships={name}={where}")
    if multiline:
        args.append("--multiline-fields=true")
    return _write_command(out, database, args)


def import_command(database: str, args: list[str]) -> list[str]:
    """The ``neo4j-admin`` argument list (database right after ``full``, as 5.19+ requires)."""
    return ["neo4j-admin", "database", "import", "full", database, "--id-type=string", *args]


def _write_command(out: Path, database: str, args: list[str]) -> Path:
    command = [shlex.quote(a) for a in import_command(database, args)]
    # positional part on the first line, then one option a line
    lines = " \\\n  ".join([" ".join(command[1:6]), *command[6:]])
    report = shlex.quote(f"import-{database}.report")
    script = out / COMMAND_FILE
    script.write_text(
        "#!/bin/sh\n"
        "# Initial bulk load written by creditgraph (graph/neo4j/bulk_import.py).\n"
        "# Run with the Neo4j server STOPPED, into a database that does not exist yet:\n"
        "#   sh import.sh                      (on the server, neo4j-admin on PATH)\n"
        "#   docker compose run --rm --no-deps neo4j sh /import/import.sh\n"
        "#                                    (this folder mounted at /import)\n"
        "# Extra options pass through, e.g. sh import.sh --overwrite-destination=true\n"
        "# The report goes under /data in the container (the neo4j user cannot write the\n"
        "# /import mount), else beside this script; IMPORT_REPORT_FILE overrides it.\n"
        "# Afterwards start the server; `creditgraph` creates the key constraints.\n"
        "set -eu\n"
        'cd "$(dirname "$0")"\n'
        'if [ -z "${IMPORT_REPORT_FILE:-}" ]; then\n'
        '  data="${IMPORT_DATA_DIR:-/data}"\n'
        f'  if [ -d "$data" ] && [ -w "$data" ]; then IMPORT_REPORT_FILE="$data"/{report}\n'
        f'  else IMPORT_REPORT_FILE="$PWD"/{report}; fi\n'
        "fi\n"
        f'exec "${{CREDITGRAPH_NEO4J_ADMIN:-neo4j-admin}}" {lines} \\\n'
        '  --report-file="$IMPORT_REPORT_FILE" \\\n  "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def read_import_file(path: Path | str) -> pd.DataFrame:
    """Read an import CSV back as the frame it came from (``src``/``dst`` for endpoints)."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    names, types = [], {}
    reverse = {v: k for k, v in IMPORT_TYPES.items()}
    for field in header:
        name, _, kind = field.partition(":")
        if kind.startswith("START_ID"):
            name, kind = "src", "string"
        elif kind.startswith("END_ID"):
            name, kind = "dst", "string"
        elif kind.startswith("ID"):
            kind = "string"
        names.append(name)
        types[name] = ARROW_TYPES[reverse[kind or "string"]]
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
