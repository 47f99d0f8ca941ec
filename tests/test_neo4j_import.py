"""The neo4j-admin bulk-import bundle: header format, escaping, command, round trip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from creditgraph.errors import SchemaError
from creditgraph.graph.neo4j.bulk_import import (
    COMMAND_FILE,
    node_file,
    read_import_file,
    relationship_file,
    write_import_bundle,
)


def small_world() -> dict[str, pd.DataFrame]:
    users = pd.DataFrame({
        "user_id": ["u1", "u2", "u3", "u4"],
        "signup_date": pd.to_datetime(["2020-01-02", "2021-06-30", None, "2023-12-31"]),
        "age": [30, 41, None, 52],
        "city": ["Hangzhou", "São Paulo, BR", "", None],
        "education": ['say "hi"', "line1\nline2", "college", "a;b|c"],
        "occupation": ["employee", None, "owner", "student"],
        "real_name_verified": [True, False, None, True],
        "defaulted": [None, True, False, None],
        "nickname": ["not in the schema"] * 4,
    })  # fmt: skip
    merchants = pd.DataFrame(
        {
            "merchant_id": ["m1", "m2"],
            "category": ["grocery", "fuel"],
            "city": ["Hangzhou", None],
            "opened_date": ["2019-05-01", "2020-01-01"],
        }
    )
    devices = pd.DataFrame({"device_id": ["d1"]})
    friends = pd.DataFrame(
        {
            "src": ["u1", "u2"],
            "dst": ["u2", "u3"],
            "since": ["2021-01-01", "2022-02-02"],
            "src_interactions": [5, 0],
            "dst_interactions": [3, 7],
        }
    )
    transfers = pd.DataFrame(
        {
            "src": ["u1"],
            "dst": ["u4"],
            "n": [2],
            "amount": [50.25],
            "first_date": ["2024-01-01"],
            "last_date": ["2024-03-01"],
        }
    )
    pays = pd.DataFrame(
        {
            "src": ["u1", "u3"],
            "dst": ["m1", "m2"],
            "n": [3, 1],
            "amount": [20.5, 1e6],
            "last_date": ["2024-02-01", None],
        }
    )
    owns = pd.DataFrame({"src": ["u3"], "dst": ["m1"]})
    uses = pd.DataFrame({"src": ["u1"], "dst": ["d1"], "first_seen": ["2020-01-01"]})
    return {
        "User": users,
        "Merchant": merchants,
        "Device": devices,
        "FRIEND": friends,
        "TRANSFER": transfers,
        "PAYS": pays,
        "OWNS": owns,
        "USES": uses,
    }


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_import_bundle(small_world(), tmp_path / "bundle")


def days(values: pd.Series) -> list:
    return [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]


def header(path: Path) -> str:
    return path.read_text(encoding="utf-8").splitlines()[0]


def test_headers_follow_the_import_tool_format(bundle: Path) -> None:
    folder = bundle.parent
    assert header(folder / node_file("User")) == (
        "user_id:ID(User),signup_date:date,age:long,city,education,occupation,"
        "real_name_verified:boolean,defaulted:boolean"
    )
    assert header(folder / node_file("Merchant")) == (
        "merchant_id:ID(Merchant),category,city,opened_date:date"
    )
    assert header(folder / relationship_file("FRIEND")) == (
        ":START_ID(User),:END_ID(User),since:date,src_interactions:long,dst_interactions:long"
    )
    assert header(folder / relationship_file("PAYS")) == (
        ":START_ID(User),:END_ID(Merchant),n:long,amount:double,last_date:date"
    )
    assert header(folder / relationship_file("OWNS")) == ":START_ID(User),:END_ID(Merchant)"


def test_strings_are_quoted_and_escaped_and_missing_values_are_empty(bundle: Path) -> None:
    lines = (bundle.parent / node_file("User")).read_text(encoding="utf-8").split("\n")
    assert lines[1] == '"u1",2020-01-02,30,"Hangzhou","say ""hi""","employee",true,'
    assert lines[2] == '"u2",2021-06-30,41,"São Paulo, BR","line1'  # a quoted line break
    assert lines[3] == 'line2",,false,true'
    assert lines[4] == '"u3",,,"","college","owner",,false'  # "" is an empty string, not null


def _run_script(bundle: Path, *extra: str, **env: str) -> list[str]:
    """Run import.sh with a stand-in neo4j-admin that writes its report where it is told."""
    fake = bundle.parent / "fake-admin"
    fake.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$PWD" "$@"\n'
        'for a in "$@"; do case "$a" in --report-file=*) : > "${a#--report-file=}";; esac; done\n'
    )
    fake.chmod(0o755)
    done = subprocess.run(["sh", str(bundle), *extra], capture_output=True, text=True,
                          env={**os.environ, "CREDITGRAPH_NEO4J_ADMIN": str(fake), **env},
                          check=True, cwd="/")  # fmt: skip
    return done.stdout.splitlines()


def test_command_is_the_exact_neo4j_admin_invocation(bundle: Path, tmp_path: Path) -> None:
    assert bundle.name == COMMAND_FILE and os.access(bundle, os.X_OK)
    subprocess.run(["sh", "-n", str(bundle)], check=True)
    data = tmp_path / "data"  # the image's /data volume, writable by the neo4j user
    data.mkdir()
    cwd, *argv = _run_script(bundle, "--verbose", IMPORT_DATA_DIR=str(data))
    assert Path(cwd) == bundle.parent  # file paths are relative to the bundle
    assert argv == [
        "database", "import", "full", "neo4j", "--id-type=string",
        "--nodes=User=nodes-User.csv", "--nodes=Merchant=nodes-Merchant.csv",
        "--nodes=Device=nodes-Device.csv",
        "--relationships=FRIEND=relationships-FRIEND.csv",
        "--relationships=TRANSFER=relationships-TRANSFER.csv",
        "--relationships=PAYS=relationships-PAYS.csv",
        "--relationships=OWNS=relationships-OWNS.csv",
        "--relationships=USES=relationships-USES.csv",
        "--multiline-fields=true",  # u2's education holds a line break
        f"--report-file={data}/import-neo4j.report",
        "--verbose",
    ]  # fmt: skip


def test_the_report_never_goes_into_the_import_mount(bundle: Path, tmp_path: Path) -> None:
    # In Docker the bundle is the /import bind mount, which the neo4j user cannot write:
    # the report must go under /data; without a writable /data it stays beside the bundle.
    data = tmp_path / "data"
    data.mkdir()
    _run_script(bundle, IMPORT_DATA_DIR=str(data))
    assert (data / "import-neo4j.report").exists()
    assert not list(bundle.parent.glob("*.report"))
    argv = _run_script(bundle, IMPORT_DATA_DIR=str(tmp_path / "missing"))
    assert f"--report-file={bundle.parent}/import-neo4j.report" in argv
    argv = _run_script(bundle, IMPORT_REPORT_FILE=str(tmp_path / "r.txt"))
    assert f"--report-file={tmp_path}/r.txt" in argv
    assert "NEO4J_ADMIN" not in bundle.read_text().replace("CREDITGRAPH_NEO4J_ADMIN", "")
    # (a NEO4J_* variable in the container would be read as a Neo4j setting)


def test_a_pair_repeated_in_a_relationship_table_is_written_once(tmp_path: Path) -> None:
    users = pd.DataFrame({"user_id": ["a", "b", "c"]})
    friends = pd.DataFrame(
        {"src": ["a", "a", "b", "a"], "dst": ["b", "b", "a", "c"], "src_interactions": [1, 2, 3, 4]}
    )
    write_import_bundle({"User": users, "FRIEND": friends}, tmp_path)
    back = read_import_file(tmp_path / relationship_file("FRIEND"))
    # (a, b) once with the last row's values, as the store's MERGE keeps it; b->a is its own
    assert back[["src", "dst", "src_interactions"]].values.tolist() == [
        ["a", "b", 2], ["b", "a", 3], ["a", "c", 4]]  # fmt: skip
    with pytest.raises(SchemaError, match="no User node"):  # rows still named as given
        write_import_bundle({"User": users, "FRIEND": pd.DataFrame(
            {"src": ["a", "a", "a"], "dst": ["b", "b", "z"]})}, tmp_path / "x")  # fmt: skip


def test_single_line_values_leave_multiline_parsing_off(tmp_path: Path) -> None:
    script = write_import_bundle(
        {"User": pd.DataFrame({"user_id": ["a", "b"]})}, tmp_path, database="credit"
    )
    text = script.read_text()
    assert "database import full credit --id-type=string" in text
    assert "--multiline-fields" not in text


def test_round_trip_of_a_small_world(bundle: Path) -> None:
    world = small_world()
    users = read_import_file(bundle.parent / node_file("User"))
    original = world["User"].drop(columns="nickname")
    assert list(users.columns) == list(original.columns)
    assert users["user_id"].tolist() == ["u1", "u2", "u3", "u4"]
    assert users["city"].tolist()[:3] == ["Hangzhou", "São Paulo, BR", ""]
    assert pd.isna(users["city"].iloc[3])
    assert users["education"].tolist() == original["education"].tolist()
    assert users["age"].tolist()[:2] == [30, 41] and pd.isna(users["age"].iloc[2])
    assert days(users["signup_date"]) == days(original["signup_date"])
    assert users["real_name_verified"].tolist() == [True, False, None, True]
    for name in ("FRIEND", "TRANSFER", "PAYS", "OWNS", "USES"):
        back = read_import_file(bundle.parent / relationship_file(name))
        sent = world[name]
        assert back[["src", "dst"]].to_numpy().tolist() == sent[["src", "dst"]].to_numpy().tolist()
        for column in sent.columns.drop(["src", "dst"]):
            if "date" in column or column in ("since", "first_seen"):
                assert days(back[column]) == days(sent[column]), (name, column)
            else:
                assert back[column].tolist() == sent[column].tolist(), (name, column)


def test_timestamps_are_local_datetimes_in_utc(tmp_path: Path) -> None:
    # No timestamp in the schema's import tables yet; the writer still handles scored_at-like data.
    from creditgraph.graph.neo4j.bulk_import import _arrow_column

    stamps = pd.Series(pd.to_datetime(["2024-01-31 12:00:00+02:00", None], utc=True))
    rendered = _arrow_column(stamps, "TIMESTAMP", "x").to_pylist()
    assert rendered == ["2024-01-31T10:00:00.000000", None]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"User": pd.DataFrame({"user_id": ["u1", "u1"]})}, "duplicate key"),
        ({"User": pd.DataFrame({"user_id": ["u1", None]})}, "missing key"),
        ({"User": pd.DataFrame({"age": [1]})}, "missing column 'user_id'"),
        (
            {
                "User": pd.DataFrame({"user_id": ["u1"]}),
                "FRIEND": pd.DataFrame({"src": ["u1"], "dst": ["ghost"]}),
            },
            "no User node",
        ),
        ({"FRIEND": pd.DataFrame({"src": ["u1"], "dst": ["u2"]})}, "need the User node table"),
        ({"People": pd.DataFrame({"id": [1]})}, "unknown tables"),
        ({"User": pd.DataFrame({"user_id": ["u1"], "age": ["old"]})}, "cannot write as long"),
    ],
)
def test_bad_tables_are_refused_with_the_place(tmp_path: Path, tables: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        write_import_bundle(tables, tmp_path)
