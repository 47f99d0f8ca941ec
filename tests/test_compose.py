"""docker-compose.yml: what a user relies on (no Docker engine here: it is read, not run)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[1]
# Neo4j's image turns every NEO4J_* variable into a setting and refuses unknown ones
# (strict validation), so only these and real setting namespaces may appear.
IMAGE_VARIABLES = {"NEO4J_AUTH", "NEO4J_PLUGINS", "NEO4J_ACCEPT_LICENSE_AGREEMENT"}
SETTING_NAMESPACES = ("NEO4J_server_", "NEO4J_dbms_", "NEO4J_db_", "NEO4J_initial_")


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
    match = re.fullmatch(r"neo4j:(5\.26\.\d+)-community", neo4j["image"])
    assert match, neo4j["image"]
    versions = compose["services"]["plugins"]["environment"]
    assert versions["NEO4J_VERSION"] == match.group(1)
    assert versions["APOC_VERSION"] == match.group(1)  # APOC core is released per Neo4j patch
    assert re.fullmatch(r"2\.13\.\d+", versions["GDS_VERSION"])  # GDS 2.13 is built for 5.26
    script = compose["services"]["plugins"]["command"][-1]
    assert "neo4j/apoc/releases/download" in script and "graph-data-science/releases" in script
    assert "NEO4J_PLUGINS" not in neo4j["environment"]  # that would fetch the newest GDS
    assert neo4j["depends_on"]["plugins"]["condition"] == "service_completed_successfully"
    assert all(":" in s["image"] and not s["image"].endswith(":latest")
               for s in compose["services"].values())


def test_auth_comes_from_the_environment(compose: dict[str, Any]) -> None:
    env = compose["services"]["neo4j"]["environment"]
    assert env["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD:?")
    with pytest.raises(ValueError, match="NEO4J_PASSWORD"):
        interpolate(env["NEO4J_AUTH"], {})
    assert interpolate(env["NEO4J_AUTH"], {"NEO4J_PASSWORD": "pw-123456"}) == "neo4j/pw-123456"
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"NEO4J_AUTH:\s*neo4j/[^$]", text)  # no literal password anywhere


def test_memory_and_procedure_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["neo4j"]["environment"]
    for key in ("NEO4J_server_memory_heap_initial__size", "NEO4J_server_memory_heap_max__size",
                "NEO4J_server_memory_pagecache_size"):
        assert re.fullmatch(r"\$\{NEO4J_\w+:-\d+[GM]\}", env[key]), key
    assert "gds.*" in env["NEO4J_dbms_security_procedures_unrestricted"]
    for key in env:
        assert key in IMAGE_VARIABLES or key.startswith(SETTING_NAMESPACES), key


def test_health_check_calls_gds_version(compose: dict[str, Any], tmp_path: Path) -> None:
    check = compose["services"]["neo4j"]["healthcheck"]
    kind, command = check["test"]
    assert kind == "CMD-SHELL" and "RETURN gds.version()" in command
    # Run it as the container's shell would, with a stand-in cypher-shell.
    (tmp_path / "cypher-shell").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\n')
    (tmp_path / "cypher-shell").chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "NEO4J_AUTH": "neo4j/pa/ss word",
           "ARGS_FILE": str(tmp_path / "args")}
    subprocess.run(["sh", "-c", interpolate(command, {})], env=env, check=True)
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("-u") + 1] == "neo4j" and args[args.index("-p") + 1] == "pa/ss word"
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
    script = interpolate(compose["services"]["plugins"]["command"][-1], {})
    subprocess.run(["sh", "-n", "-c", script], check=True)


def test_env_example_names_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_]\w*)", text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    declared = dict(line.split("=", 1) for line in example.splitlines()
                    if line and not line.startswith("#"))
    assert used <= set(declared), used - set(declared)
    assert {"NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"} <= set(declared)
    assert declared["NEO4J_PASSWORD"] == "" and declared.get("JUPYTER_TOKEN") == ""  # no secrets


def test_notebooks_service_is_optional_and_reaches_neo4j(compose: dict[str, Any]) -> None:
    jupyter = compose["services"]["jupyter"]
    assert jupyter["profiles"] == ["notebooks"]
    assert jupyter["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert jupyter["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert "pip install" in jupyter["command"][-1] and "/app" in jupyter["command"][-1]
