"""Type-check creditgraph as it installs: ``python tools/typecheck.py`` (``make typecheck``).

The repository keeps graph/, ingest/, scoring/ and queries/ at the top, but they
install as creditgraph.graph, …; mypy cannot follow the editable install's import
hook, so this links the installed layout into a temporary folder and checks that,
with the benchmark scripts, which import it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSIDE = ("graph", "ingest", "scoring", "queries")  # folders that install inside creditgraph
BENCHMARKS = ROOT / "benchmarks"  # scripts, checked against the package as installed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="creditgraph-mypy-") as tmp:
        package = Path(tmp) / "creditgraph"
        package.mkdir()
        for child in (ROOT / "creditgraph").iterdir():
            if child.name != "__pycache__":
                (package / child.name).symlink_to(child)
        for folder in INSIDE:
            (package / folder).symlink_to(ROOT / folder)
        (Path(tmp) / "benchmarks").symlink_to(ROOT / "benchmarks")
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
             "creditgraph", *sorted(f"benchmarks/{p.name}" for p in BENCHMARKS.glob("*.py"))],
            cwd=tmp, capture_output=True, text=True,
        )  # fmt: skip
        output = done.stdout + done.stderr
        for folder in INSIDE:  # report repository paths, not the temporary links
            output = output.replace(f"creditgraph/{folder}/", f"{folder}/")
        print(output, end="")
        return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
