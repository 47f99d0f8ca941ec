"""The wheel adds one top-level name, and works installed in a fresh venv outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(out), str(ROOT)], cwd=out)  # fmt: skip
    (built,) = out.glob("creditgraph-*.whl")
    return built


def test_the_wheel_holds_only_creditgraph(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"creditgraph"}
    # Every module and query of the repository's package folders is in the wheel (a
    # subpackage missing from pyproject's explicit list would silently be left out).
    folders = {"creditgraph": "creditgraph", "graph": "creditgraph/graph",
               "ingest": "creditgraph/ingest", "scoring": "creditgraph/scoring",
               "queries": "creditgraph/queries"}  # fmt: skip
    expected = {
        f"{inside}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, inside in folders.items()
        for pattern in ("**/*.py", "**/*.cypher", "**/py.typed")
        for path in (ROOT / folder).glob(pattern)
        if "__pycache__" not in path.parts
    }
    assert expected and expected <= set(names), sorted(expected - set(names))


def test_a_fresh_venv_runs_the_cli_and_a_tiny_pipeline(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
          "--no-deps", str(wheel)], cwd=tmp_path)  # fmt: skip
    # Dependencies come from the project's venv (nothing is downloaded); its own editable
    # install of creditgraph is not activated, since .pth files of an added path are not read.
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).strip())  # fmt: skip
    (site / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CREDITGRAPH_"))}
    where = _run([str(python), "-c", "import creditgraph; print(creditgraph.__file__)"],
                 cwd=tmp_path, env=env)  # fmt: skip
    assert where.startswith(str(venv))
    for old in ("graph", "ingest", "scoring", "queries"):
        probe = subprocess.run([str(python), "-c", f"import {old}"], cwd=tmp_path, env=env,
                               capture_output=True)  # fmt: skip
        assert probe.returncode != 0, f"a top-level {old!r} is importable"
    cli = str(venv / "bin" / "creditgraph")
    assert "Five-factor credit scores" in _run([cli, "--help"], cwd=tmp_path, env=env)
    output = _run([cli, "demo", "--users", "1500", "--data-dir", str(tmp_path / "data")],
                  cwd=tmp_path, env=env)  # fmt: skip
    assert "roc_auc" in output
    assert "friend_cluster" in _run([cli, "query", "list"], cwd=tmp_path, env=env)
