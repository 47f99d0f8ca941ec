"""One error tree: what a user can cause is a CreditGraphError (still its old built-in type),
named in one line by the CLI; only broken internal invariants stay plain built-ins."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_world
from typer.testing import CliRunner

from creditgraph.cli import app
from creditgraph.errors import (
    ConfigError,
    CreditGraphError,
    DataMissing,
    InvalidArgument,
    MissingColumns,
    SchemaError,
    UnknownFeature,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("creditgraph", "graph", "ingest", "scoring", "queries")
BUILT_IN = (
    r"(ValueError|TypeError|KeyError|LookupError|IndexError|FileNotFoundError|OSError|RuntimeError)"
)
# Built-in raises that are internal invariants or control flow, never a user's mistake:
# (file, words of the message).
INTERNAL = {
    ("creditgraph/access/db.py", "has no timezone"),  # callers pass aware datetimes
    ("creditgraph/access/db.py", "the access database is closed"),  # used after close()
    ("creditgraph/access/service.py", "threshold is required"),  # pydantic makes it a 422
    ("ingest/pii.py", "too short to be a ciphertext"),  # caught: DecryptionError
    ("ingest/validate.py", "unknown column kind"),  # schemas are code
    ("scoring/boosting.py", "needs patience"),  # a caller's bug
    ("scoring/evaluate.py", "the edge arrays must index"),  # a caller's bug (the CLI aligns them)
    ("scoring/dictionary.py", "already declared"),  # an experiment declared a name twice
}
# Exceptions that are not errors a user sees.
NOT_ERRORS = {"TrainingWarning", "_BadBody"}


def _sources() -> list[Path]:
    return [p for folder in PACKAGE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_built_in_raise_is_an_internal_invariant() -> None:
    found = []
    for path in _sources():
        text = path.read_text()
        for match in re.finditer(rf"raise {BUILT_IN}\(\s*f?[\"']([^\"']*)", text):
            name = path.relative_to(ROOT).as_posix()
            if not any(name == f and words in match.group(2) for f, words in INTERNAL):
                found.append(f"{name}: {match.group(0)[:90]}")
    assert not found, (
        "raise a CreditGraphError subclass (see creditgraph/errors.py):\n" + "\n".join(found)
    )


def _module_name(path: Path) -> str:
    """creditgraph/x/y.py → creditgraph.x.y, scoring/y.py → creditgraph.scoring.y."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "creditgraph" else ["creditgraph", *parts])


def _package_classes() -> list[type[BaseException]]:
    classes = []
    for path in _sources():
        loaded = importlib.import_module(_module_name(path))
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == loaded.__name__:
                classes.append(cls)
    return classes


def test_every_exception_class_is_in_the_tree_and_prints_its_message() -> None:
    classes = _package_classes()
    names = {c.__name__ for c in classes}
    assert {"ConfigError", "InvalidArgument", "ServerNotStarted", "DataMissing"} <= names
    outside = [c.__name__ for c in classes
               if not issubclass(c, CreditGraphError) and c.__name__ not in NOT_ERRORS]  # fmt: skip
    assert not outside
    for cls in classes:
        if issubclass(cls, CreditGraphError) and cls.__init__ is BaseException.__init__:
            assert str(cls("what was wrong")) == "what was wrong", cls  # KeyError would quote it


def test_library_errors_keep_their_built_in_type_and_name_the_problem(tmp_path: Path) -> None:
    from creditgraph.graph.readonly import with_limit
    from creditgraph.ingest.history import version_tables
    from creditgraph.ingest.schemas import DateWindow
    from creditgraph.ingest.synthetic import generate_world
    from creditgraph.scoring.design import design_matrix
    from creditgraph.scoring.dictionary import spec

    with pytest.raises(MissingColumns, match=r"^feature columns missing from input: \['age'\]$"):
        design_matrix(pd.DataFrame({"x": [1.0]}), ["age"], {})
    assert issubclass(MissingColumns, KeyError) and issubclass(MissingColumns, SchemaError)
    with pytest.raises(KeyError, match="'no_such_feature' is not in"):
        spec("no_such_feature")
    assert issubclass(UnknownFeature, KeyError)
    with pytest.raises(FileNotFoundError, match="history version v9 is missing") as missing:
        version_tables(tmp_path, "v9")
    assert isinstance(missing.value, DataMissing)
    with pytest.raises(ConfigError, match="'earliest_date': 'yesterday' is not a YYYY-MM-DD"):
        DateWindow.of("yesterday", None)
    with pytest.raises(ConfigError, match="earliest 2030-01-01 must precede latest 2020-01-01"):
        DateWindow.of("2030-01-01", "2020-01-01")
    with pytest.raises(ValueError, match="limit must be a positive int") as limit:
        with_limit("MATCH (u:User) RETURN u", 0)
    assert isinstance(limit.value, InvalidArgument)
    with pytest.raises(InvalidArgument, match="at least 200 users, not 50"):
        generate_world(50)


def _one_line(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "error:" in output, result.output
    for word in words:
        assert word in output, output


def _nodes(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "nodes.csv"
    pd.DataFrame({"id": [f"n{i}" for i in range(60)], "x": rng.normal(size=60),
                  "target": [0, 1] * 30}).to_csv(path, index=False)  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--folds", "1"], ["folds must be at least 2, not 1"]),
        (["--train-frac", "1.5"], ["train_frac must be between 0 and 1"]),
        (["--folds", "40"], ["40 stratified folds need at least 40 rows of each label"]),
        (["--splits", "{missing}"], ["file missing.csv", "cannot read"]),
        (["--splits", "{nodes}", "--id", "user"], ["field 'user'", "column not found"]),
    ],
)
def test_evaluate_mistakes_are_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    nodes = _nodes(tmp_path)
    args = [a.format(missing=tmp_path / "missing.csv", nodes=nodes) for a in args]
    id_args = [] if "--id" in args else ["--id", "id"]
    result = CliRunner().invoke(app, ["evaluate", str(nodes), "--label", "target", *id_args, *args])
    _one_line(result, *words)


def test_cli_mistakes_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    _one_line(runner.invoke(app, ["evaluate", str(tmp_path / "none.csv")]), "file none.csv")
    _one_line(
        runner.invoke(app, ["demo", "--users", "50", "--data-dir", str(tmp_path / "demo")]),
        "at least 200 users, not 50",
    )
    _one_line(
        runner.invoke(
            app, ["audit", "verify", "--expect-head", "abc", "--data-dir", str(tmp_path)]
        ),
        "64 hexadecimal characters",
    )
    _one_line(
        runner.invoke(app, ["subject", "revoke-token", "--data-dir", str(tmp_path)]), "give a token"
    )
    source = tiny_world(tmp_path / "in")
    _one_line(
        runner.invoke(
            app,
            ["ingest", str(source), "--data-dir", str(tmp_path / "d")],
            env={"CREDITGRAPH_EARLIEST_DATE": "1.1.2000"},
        ),
        "'earliest_date'",
        "must be a YYYY-MM-DD date, not '1.1.2000'",
    )
