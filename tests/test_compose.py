"""docker-compose.yml: what a user relies on (no Docker engine here: it is read, not run)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[1]
# Settings are checked name by name against Neo4j 5.26's list in tests/test_neo4j_reference.py.


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's own substitution: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if op == ":?" and not env.get(name):
            raise ValueError(arg)
        return env.get(name) or (arg if op == ":-" else "")

    text = re.sub(r"(?<!\$)\$\{([A-Za-z_]\w*)(?:(:-|:\?)([^}]*))?\}", value, text)
    return text.replace("$$", "$")


def test_neo4j_and_plugins_are_pinned_together(compose: dict[str, Any]) -> None:
    neo4j = compose["services"]["neo4j"]
    assert re.fullmatch(r"neo4j:5\.26\.\d+-community", neo4j["image"]), neo4j["image"]
    plugins = compose["services"]["plugins"]
    assert plugins["image"] == neo4j["image"]  # APOC core comes from this very release
    assert re.fullmatch(r"2\.13\.\d+", plugins["environment"]["GDS_VERSION"])  # GDS for 5.26
    script = plugins["entrypoint"][-1]
    assert '/var/lib/neo4j/labs}"/apoc-*-core.jar' in script  # no APOC download at all
    assert "graph-data-science/releases/download" in script  # the release asset ...
    assert "https://graphdatascience.ninja/$$gds" in script  # ... else Neo4j's own location
    assert "NEO4J_PLUGINS" not in neo4j["environment"]  # would re-download GDS every start
    assert neo4j["depends_on"]["plugins"]["condition"] == "service_completed_successfully"
    assert all(
        ":" in s["image"] and not s["image"].endswith(":latest")
        for s in compose["services"].values()
    )


def test_every_downloaded_jar_is_checked_by_sha256(compose: dict[str, Any]) -> None:
    script = interpolate(compose["services"]["plugins"]["entrypoint"][-1], {})
    downloads = re.findall(r"(?:wget|curl)\b[^\n]*?(?:-O|-o|--output-document=?)\s*\"?([^\s\"]+)",
                           script)  # fmt: skip
    assert len(downloads) == 2  # the GitHub release asset and the fallback
    for target in set(downloads):
        check = f'echo "${{GDS_SHA256}}  {target}" | sha256sum -c -'
        assert check in script, f"{target} is downloaded but never checked"
        assert script.index(check) < script.index(f'mv "{target}"'), "checked before use"
    assert compose["services"]["plugins"]["environment"]["GDS_SHA256"] == "${GDS_SHA256:-}"


def _plugins_run(
    compose: dict[str, Any],
    tmp_path: Path,
    password: str = "long-enough pw",
    sha: str | None = None,
    fail_github: bool = False,
) -> subprocess.CompletedProcess:
    """Run the plugins step on this machine with a stand-in wget and image folders."""
    script = interpolate(compose["services"]["plugins"]["entrypoint"][-1], {})
    bin_dir, labs, plugins = tmp_path / "bin", tmp_path / "labs", tmp_path / "plugins"
    for folder in (bin_dir, labs, plugins):
        folder.mkdir(exist_ok=True)
    (labs / "apoc-5.26.10-core.jar").write_bytes(b"apoc")
    (bin_dir / "wget").write_text(
        '#!/bin/sh\nout=""; url=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -O) out="$2"; shift;; -*) ;; *) url="$1";; esac; '
        'shift; done\necho "$url" >> "$WGET_LOG"\n'
        'case "$url" in *github.com*) [ -z "$FAIL_GITHUB" ] || exit 8;; esac\n'
        'printf gds-jar > "$out"\n'
    )  # fmt: skip
    (bin_dir / "wget").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "WGET_LOG": str(tmp_path / "wget.log"),
        "PLUGINS_DIR": str(plugins), "APOC_DIR": str(labs), "GDS_VERSION": "2.13.4",
        "GDS_SHA256": hashlib.sha256(b"gds-jar").hexdigest() if sha is None else sha,
        "CREDITGRAPH_NEO4J_PASSWORD": password, "FAIL_GITHUB": "1" if fail_github else "",
    }  # fmt: skip
    return subprocess.run(["sh", "-euc", script], env=env, capture_output=True, text=True)


def _downloads(tmp_path: Path) -> list[str]:
    log = tmp_path / "wget.log"
    return log.read_text().splitlines() if log.exists() else []


def test_plugins_step_installs_verified_jars_once(compose: dict[str, Any], tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "neo4j-graph-data-science-2.12.0.jar").write_bytes(b"old")  # a previous pin
    done = _plugins_run(compose, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in plugins.iterdir()) == [
        "apoc-5.26.10-core.jar", "neo4j-graph-data-science-2.13.4.jar"]  # fmt: skip
    assert _downloads(tmp_path) == [
        "https://github.com/neo4j/graph-data-science/releases/download/2.13.4/"
        "neo4j-graph-data-science-2.13.4.jar"]  # fmt: skip
    assert _plugins_run(compose, tmp_path).returncode == 0
    assert len(_downloads(tmp_path)) == 1  # verified jar kept: no second download


def test_plugins_step_falls_back_and_refuses_a_wrong_jar(compose, tmp_path: Path) -> None:
    done = _plugins_run(compose, tmp_path, fail_github=True)
    assert done.returncode == 0, done.stderr
    assert _downloads(tmp_path)[-1] == (
        "https://graphdatascience.ninja/neo4j-graph-data-science-2.13.4.jar"
    )
    (tmp_path / "plugins" / "neo4j-graph-data-science-2.13.4.jar").unlink()
    refused = _plugins_run(compose, tmp_path, sha="0" * 64)
    assert refused.returncode != 0
    assert not (tmp_path / "plugins" / "neo4j-graph-data-science-2.13.4.jar").exists()
    unset = _plugins_run(compose, tmp_path, sha="")
    assert unset.returncode != 0 and "set GDS_SHA256" in unset.stderr


@pytest.mark.parametrize(
    ("password", "message"),
    [("neo4j", "may not be 'neo4j'"), ("seven77", "at least 8"), ("pass/word123", "'/'"),
     ("neo4j/true", "'/'")],
)  # fmt: skip
def test_passwords_the_image_refuses_are_refused_first(
    compose, tmp_path: Path, password: str, message: str
) -> None:
    # docker-entrypoint.sh: NEO4J_AUTH must match neo4j/<no slash>, the password may not be
    # 'neo4j', and neo4j-admin refuses fewer than dbms.security.auth_minimum_password_length (8).
    done = _plugins_run(compose, tmp_path, password=password)
    assert done.returncode != 0 and message in done.stderr
    assert not _downloads(tmp_path)  # refused before anything else
    assert _plugins_run(compose, tmp_path, password="eight888").returncode == 0


def test_auth_comes_from_the_environment(compose: dict[str, Any]) -> None:
    env = compose["services"]["neo4j"]["environment"]
    assert env["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD:?")
    with pytest.raises(ValueError, match="NEO4J_PASSWORD"):
        interpolate(env["NEO4J_AUTH"], {})
    assert interpolate(env["NEO4J_AUTH"], {"NEO4J_PASSWORD": "pw-123456"}) == "neo4j/pw-123456"
    plugins = compose["services"]["plugins"]["environment"]["CREDITGRAPH_NEO4J_PASSWORD"]
    with pytest.raises(ValueError, match="NEO4J_PASSWORD"):
        interpolate(plugins, {})  # the check sees the same password the server gets
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"NEO4J_AUTH:\s*neo4j/[^$]", text)  # no literal password anywhere


def test_memory_and_procedure_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["neo4j"]["environment"]
    defaults = {key: re.fullmatch(r"\$\{(NEO4J_\w+):-(\d+[GM])\}", env[key]).groups()
                for key in ("NEO4J_server_memory_heap_initial__size",
                            "NEO4J_server_memory_heap_max__size",
                            "NEO4J_server_memory_pagecache_size",
                            "NEO4J_dbms_memory_transaction_total_max")}  # fmt: skip
    assert defaults["NEO4J_server_memory_heap_max__size"] == ("NEO4J_HEAP_SIZE", "4G")
    assert defaults["NEO4J_server_memory_heap_initial__size"] == ("NEO4J_HEAP_SIZE", "4G")
    assert defaults["NEO4J_server_memory_pagecache_size"] == ("NEO4J_PAGECACHE_SIZE", "2G")
    assert defaults["NEO4J_dbms_memory_transaction_total_max"] == ("NEO4J_TX_MEMORY", "1G")
    assert "gds.*" in env["NEO4J_dbms_security_procedures_unrestricted"]
    example = dict(line.split("=", 1) for line in
                   (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))  # fmt: skip
    for variable, default in defaults.values():
        assert example[variable] == default, variable  # .env.example says what compose does


def test_readme_states_the_sizing_compose_uses(compose: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running on Neo4j") :]
    section = section[: section.index("\n## ", 3)]
    for needle in ("1M users", "10M relationships", "heap", "page cache",
                   "`NEO4J_HEAP_SIZE=4G`", "`NEO4J_PAGECACHE_SIZE=2G`", "`NEO4J_TX_MEMORY=1G`",
                   "GDS_SHA256", "NEO4J_URI"):  # fmt: skip
        assert needle in section, needle


def test_health_check_calls_gds_version(compose: dict[str, Any], tmp_path: Path) -> None:
    check = compose["services"]["neo4j"]["healthcheck"]
    kind, command = check["test"]
    assert kind == "CMD-SHELL" and "RETURN gds.version()" in command
    # Run it as the container's shell would, with a stand-in cypher-shell.
    (tmp_path / "cypher-shell").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    (tmp_path / "cypher-shell").chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "NEO4J_AUTH": "neo4j/pa ss word!",
        "ARGS_FILE": str(tmp_path / "args"),
    }
    subprocess.run(["sh", "-c", interpolate(command, {})], env=env, check=True)
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("-u") + 1] == "neo4j" and args[args.index("-p") + 1] == "pa ss word!"
    assert check["retries"] * _seconds(check["interval"]) >= 120  # time for plugins to load


def _seconds(value: str) -> int:
    return int(value.rstrip("s"))


def test_data_lives_in_a_named_volume(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["neo4j"]["volumes"]
    assert "neo4j-data:/data" in volumes and "neo4j-plugins:/plugins" in volumes
    assert "neo4j-data" in compose["volumes"] and "neo4j-plugins" in compose["volumes"]
    assert any(v.endswith(":/import") for v in volumes)  # for `export neo4j-import` bundles
    ports = compose["services"]["neo4j"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in ports)  # not exposed beyond this machine


def test_plugin_script_is_valid_shell(compose: dict[str, Any]) -> None:
    script = interpolate(compose["services"]["plugins"]["entrypoint"][-1], {})
    subprocess.run(["sh", "-n", "-c", script], check=True)


def test_env_example_names_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_]\w*)", text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    declared = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert used <= set(declared), used - set(declared)
    assert {"NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"} <= set(declared)
    assert declared["NEO4J_PASSWORD"] == "" and declared.get("JUPYTER_TOKEN") == ""  # no secrets


def test_notebooks_service_is_optional_and_reaches_neo4j(compose: dict[str, Any]) -> None:
    jupyter = compose["services"]["jupyter"]
    assert jupyter["profiles"] == ["notebooks"]
    assert jupyter["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert jupyter["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert "pip install" in jupyter["command"][-1] and "/app" in jupyter["command"][-1]


# -- the `cluster` profile: Dask scheduler, two workers, the command; the project's image ----
CLUSTER = ("dask-scheduler", "dask-worker-1", "dask-worker-2", "creditgraph")


def test_cluster_profile_runs_the_projects_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert all(services[name]["profiles"] == ["cluster"] for name in CLUSTER)
    image = services["dask-scheduler"]["image"]
    assert services["dask-scheduler"]["build"] == "."  # built from the repository's Dockerfile
    assert all(services[name]["image"] == image for name in CLUSTER)
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-cache-dir '.[dask]'" in dockerfile
    assert re.search(r"^FROM python:3\.11\.\d+-slim", dockerfile, re.MULTILINE)  # pinned base
    for folder in ("creditgraph", "graph", "ingest", "scoring", "queries"):
        assert f"COPY {folder} ./{folder}" in dockerfile  # every folder the wheel installs


def test_cluster_profile_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    scheduler = services["dask-scheduler"]["entrypoint"]
    assert scheduler[:2] == ["dask", "scheduler"] and "8786" in scheduler
    workers = [services[f"dask-worker-{i}"] for i in (1, 2)]
    for worker in workers:
        assert worker["entrypoint"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
        assert worker["entrypoint"][worker["entrypoint"].index("--nthreads") + 1] == "1"
        assert "dask-scheduler" in worker["depends_on"]
    command = services["creditgraph"]
    assert command["environment"]["CREDITGRAPH_DASK_SCHEDULER"] == "tcp://dask-scheduler:8786"
    data = command["environment"]["CREDITGRAPH_DATA_DIR"]
    shared = f"creditgraph-data:{data}"
    assert all(shared in s["volumes"] for s in [*workers, command])  # one data volume
    assert "creditgraph-data" in compose["volumes"]
    ports = services["dask-scheduler"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in ports)  # not exposed beyond this machine
    assert any(p.endswith(":8787") for p in ports)  # the dashboard the CLI prints
