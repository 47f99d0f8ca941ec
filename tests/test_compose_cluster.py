"""The compose ``cluster`` profile, run for real without Docker (issue 18).

No Docker engine runs here, so the services are started as local processes with the
very entrypoints ``docker-compose.yml`` gives them (the scheduler's and workers' ports
made free loopback ports, ``dask-scheduler`` made 127.0.0.1, the worker memory limit its
default); then the README's three commands ("Scaling out on Dask") run as written, the
``creditgraph`` service's environment pointing at a temporary data directory shared by
every process (the compose volume). The scores the cluster publishes must equal a
single-machine rescore's with the same model.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from creditgraph import catalog

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's creditgraph and dask commands
USERS = 3_000  # the README's demo has 20,000
COMPARED = ["user_id", "score", "pd", "f_relationships", "reasons", "model_id"]


def readme_commands() -> list[list[str]]:
    """The README's cluster commands (its "demo world on the compose cluster" block), split
    as a shell would split them."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**The demo world on the compose cluster**") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README lost its compose cluster commands"
    return [shlex.split(line) for line in block.group(1).replace("\\\n", " ").splitlines()]


def default(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the default."""
    return re.sub(r"\$\{[A-Za-z_]\w*:-([^}]*)\}", r"\1", value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def on_loopback(argv: list[str], port: int) -> list[str]:
    """A service's entrypoint with its addresses on loopback and free ports."""
    swap = {"0.0.0.0": "127.0.0.1", "8786": str(port), ":8787": f"127.0.0.1:{free_port()}",
            "tcp://dask-scheduler:8786": f"tcp://127.0.0.1:{port}"}  # fmt: skip
    return [swap.get(default(arg), default(arg)) for arg in argv]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Starts what the README's first command brings up, as local processes."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    up = readme_commands()[0]
    assert up[:6] == ["docker", "compose", "--profile", "cluster", "up", "-d"]
    names = [arg for arg in up[6:] if not arg.startswith("-")]
    assert names == ["dask-scheduler", "dask-worker-1", "dask-worker-2"]
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CREDITGRAPH_DASK_SCHEDULER", None)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            service = compose["services"][name]
            assert service["profiles"] == ["cluster"]
            argv = on_loopback(service["entrypoint"], port)
            with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy
                started.append(subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log,
                                                stderr=log, start_new_session=True))  # fmt: skip
        address = f"tcp://127.0.0.1:{port}"
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            workers = client.scheduler_info()["workers"].values()
            assert [w["nthreads"] for w in workers] == [1, 1]
            assert {w["memory_limit"] for w in workers} == {4 * 2**30}  # the default, 4 GiB
        yield {"compose": compose, "address": address, "env": env}
    finally:
        for process in reversed(started):  # only what this test started, by its process group
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_service(
    services: dict[str, Any], command: list[str], data: Path, *, scheduler: bool = True
) -> str:
    """``docker compose --profile cluster run --rm [--entrypoint E] creditgraph ARGS`` as a
    local process, with the service's environment (the data volume at ``data``)."""
    assert command[:6] == ["docker", "compose", "--profile", "cluster", "run", "--rm"]
    rest = command[6:]
    entrypoint = ["creditgraph"]
    if rest[0] == "--entrypoint":
        entrypoint, rest = [rest[1]], rest[2:]
    assert rest[0] == "creditgraph"  # the service
    argv = [*entrypoint, *rest[1:]]
    if argv[:2] == ["creditgraph", "demo"]:
        argv[argv.index("--users") + 1] = str(USERS)
    environment = services["compose"]["services"]["creditgraph"]["environment"]
    env = {**services["env"], **environment, "CREDITGRAPH_DATA_DIR": str(data)}
    if scheduler:
        assert environment["CREDITGRAPH_DASK_SCHEDULER"] == "tcp://dask-scheduler:8786"
        env["CREDITGRAPH_DASK_SCHEDULER"] = services["address"]
    else:
        del env["CREDITGRAPH_DASK_SCHEDULER"]
    done = subprocess.run(argv, env=env, cwd=data.parent, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def published(data: Path) -> pd.DataFrame:
    frame = catalog.read_current(data / "scores")
    assert frame is not None
    return frame[COMPARED].sort_values("user_id", ignore_index=True)


@pytest.mark.slow
def test_the_readmes_cluster_commands_run_on_the_compose_services(
    services: dict[str, Any], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    demo, stages = readme_commands()[1:]
    assert demo[-3:] == ["demo", "--users", "20000"]
    assert stages[-1] == "creditgraph features && creditgraph train && creditgraph rescore"
    run_service(services, demo, data)  # the demo itself runs in one process
    said = run_service(services, stages, data)
    assert said.count("Dask: 2 workers") == 3, said  # features, train, rescore on the cluster
    scores = data / "scores"
    run = catalog.run_dir(scores, str(catalog.current_run(scores)))
    manifest = catalog.read_manifest(scores, run.name)
    assert manifest["users"] == USERS and len(catalog.run_files(run)) == manifest["chunks"]
    files = catalog.DataDir(data).feature_files()
    assert files.by_user_id and len(files.parts) == 2  # written by the two workers
    # The same model on one machine, from the same kept features: the same scores.
    single = tmp_path / "single"
    shutil.copytree(data, single)
    run_service(services, [*stages[:6], "creditgraph", "rescore"], single, scheduler=False)
    assert catalog.read_manifest(single / "scores", str(catalog.current_run(single / "scores")))[
        "model_id"] == manifest["model_id"]  # fmt: skip
    pd.testing.assert_frame_equal(published(data), published(single), check_exact=True)
