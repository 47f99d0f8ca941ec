"""Every mistake a user can make at the command line ends in one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditgraph.cli import app
from creditgraph.ingest.pii import generate_key


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(app, args, env=env)


def _one_line_error(result) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "error" in result.output.lower()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "d"


def test_bad_settings_name_the_setting(data: Path) -> None:
    result = _invoke(["features", "--data-dir", str(data)], env={"CREDITGRAPH_SEED": "abc"})
    _one_line_error(result)
    assert "CREDITGRAPH_SEED" in result.output
    result = _invoke(["features", "--data-dir", str(data), "--store", "foo"])
    _one_line_error(result)
    assert "'foo'" in result.output
    result = _invoke(["train", "--data-dir", str(data), "--calibration", "sigmoid"])
    _one_line_error(result)
    assert "calibration" in result.output


def test_a_bad_config_file_is_named(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "creditgraph.toml"
    config.write_text('split = "sideways"\n')
    result = _invoke(["features", "--data-dir", str(data)], env={"CREDITGRAPH_CONFIG": str(config)})
    _one_line_error(result)
    assert str(config) in " ".join(result.output.split())


def test_access_commands_without_a_database(data: Path) -> None:
    for args in (["partner", "list"], ["partner", "revoke", "UNKNOWN"], ["audit", "verify"]):
        _one_line_error(_invoke([*args, "--data-dir", str(data)]))


def test_user_text_is_never_read_as_markup(data: Path) -> None:
    assert _invoke(["partner", "add", "Hotel [/x] Inn", "--data-dir", str(data)]).exit_code == 0
    listed = _invoke(["partner", "list", "--data-dir", str(data)])
    assert listed.exit_code == 0 and "Hotel [/x] Inn" in listed.output
    _one_line_error(_invoke(["partner", "revoke", "[/bold]x", "--data-dir", str(data)]))


def test_access_commands_on_bad_input(data: Path) -> None:
    _one_line_error(_invoke(["partner", "add", "", "--data-dir", str(data)]))
    assert _invoke(["partner", "add", "Hotel", "--data-dir", str(data)]).exit_code == 0
    _one_line_error(_invoke(["partner", "revoke", "UNKNOWN", "--data-dir", str(data)]))


def test_a_corrupt_access_database(data: Path) -> None:
    (data / "access").mkdir(parents=True)
    (data / "access" / "access.sqlite").write_text("not a database")
    for args in (["audit", "verify"], ["partner", "list"]):
        result = _invoke([*args, "--data-dir", str(data)])
        _one_line_error(result)
        assert "not a readable access database" in " ".join(result.output.split())


def test_rotate_key_on_an_empty_folder(data: Path) -> None:
    data.mkdir()
    keys = {"CREDITGRAPH_KEY": generate_key(), "CREDITGRAPH_NEW_KEY": generate_key()}
    result = _invoke(["rotate-key", "--data-dir", str(data)], env=keys)
    _one_line_error(result)
    assert "nothing to re-encrypt" in " ".join(result.output.split())


def test_pipeline_commands_before_their_inputs(data: Path) -> None:
    for command in ("features", "train", "score", "explain u1", "report"):
        _one_line_error(_invoke([*command.split(), "--data-dir", str(data)]))
