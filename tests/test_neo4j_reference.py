"""What we set in Neo4j and call in GDS, checked against Neo4j's own published lists.

No machine here runs a Neo4j server, so the reference is
``../shared/neo4j/`` beside the checkout (``settings-5.26.txt``: every setting
name Neo4j 5.26 accepts; ``gds-2.13-procedures.txt``: every GDS 2.13
procedure and function). When the folder is missing these tests fail; they
never skip. With strict configuration validation (the default) one unknown
setting stops the server at start, and the container restarts forever.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_neo4j_fake import reference_lines

ROOT = Path(__file__).resolve().parents[1]
# The neo4j image's docker-entrypoint.sh skips these "docker control envs" (its not_configs
# list, docker-neo4j, docker-image-src/5/coredb/docker-entrypoint.sh); every other NEO4J_*
# variable of the container becomes a setting.
IMAGE_VARIABLES = {
    "NEO4J_ACCEPT_LICENSE_AGREEMENT", "NEO4J_AUTH", "NEO4J_AUTH_PATH", "NEO4J_DEBUG",
    "NEO4J_EDITION", "NEO4J_HOME", "NEO4J_PLUGINS", "NEO4J_SHA256", "NEO4J_TARBALL",
}  # fmt: skip
# Read by creditgraph (graph/neo4j/store.py, from_env) or substituted by compose into the
# file; never given to the server container, so never turned into settings.
CLIENT_VARIABLES = {"NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"}
COMPOSE_VARIABLES = {
    "NEO4J_HEAP_SIZE", "NEO4J_PAGECACHE_SIZE", "NEO4J_TX_MEMORY", "NEO4J_HTTP_PORT",
    "NEO4J_BOLT_PORT", "NEO4J_IMPORT_DIR",
}  # fmt: skip
VARIABLE = re.compile(r"\bNEO4J_\w+")
# A gds.* name, not a shell variable such as $gds.part.
GDS_NAME = re.compile(r"(?<![\w$.])gds(?:\.[A-Za-z_]\w*)+")
SOURCES = ("graph", "creditgraph", "queries", "ingest", "scoring", "benchmarks", "notebooks",
           "tools/cypher-lint/lint.mjs", "docker-compose.yml")  # fmt: skip


def setting(variable: str) -> str:
    """The setting an image variable names: strip NEO4J_, ``_`` → ``.``, then ``..`` → ``_``."""
    return variable.removeprefix("NEO4J_").replace("_", ".").replace("..", "_")


@pytest.fixture(scope="module")
def settings() -> set[str]:
    return set(reference_lines("settings-5.26.txt"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def env_example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines()
                if line and not line.startswith("#"))  # fmt: skip


def neo4j_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if str(s.get("image", "")).startswith("neo4j:")}  # fmt: skip


def test_the_mapping_rule_is_the_entrypoints(settings: set[str]) -> None:
    assert setting("NEO4J_server_memory_heap_max__size") == "server.memory.heap.max_size"
    assert setting("NEO4J_dbms_security_auth__minimum__password__length") in settings
    assert setting("NEO4J_server_tx__log_rotation_retention__policy") == (
        "server.tx_log.rotation.retention_policy"
    )  # the entrypoint's own example
    assert "server.memory.transaction.total.max" not in settings  # what compose used to set


def test_every_server_variable_in_compose_is_a_526_setting(compose, settings) -> None:
    checked = 0
    for name, service in neo4j_services(compose).items():
        assert "env_file" not in service, f"{name}: an env_file would turn .env into settings"
        for variable in service.get("environment", {}):
            if not variable.startswith("NEO4J_") or variable in IMAGE_VARIABLES:
                continue
            assert variable not in CLIENT_VARIABLES | COMPOSE_VARIABLES, variable
            assert setting(variable) in settings, (
                f"{name}: {variable} names {setting(variable)!r}, not a Neo4j 5.26 setting"
            )
            checked += 1
    assert checked >= 6  # memory, transaction and procedure settings are all checked


def test_every_neo4j_variable_anywhere_is_known_or_a_setting(compose, settings) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    names = set(VARIABLE.findall(text)) | {k for k in env_example() if k.startswith("NEO4J_")}
    unknown = {
        n for n in names
        if n not in IMAGE_VARIABLES | CLIENT_VARIABLES | COMPOSE_VARIABLES
        and setting(n) not in settings
    }  # fmt: skip
    assert not unknown, f"neither image/client/compose variables nor 5.26 settings: {unknown}"
    used = set(re.findall(r"(?<!\$)\$\{(NEO4J_\w+)", text))
    assert COMPOSE_VARIABLES <= used, "a compose variable listed here is no longer used"
    assert set(env_example()) >= COMPOSE_VARIABLES | CLIENT_VARIABLES


def test_every_gds_name_the_project_sends_is_in_gds_213() -> None:
    listed = set(reference_lines("gds-2.13-procedures.txt"))
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else [
            f for f in path.rglob("*")
            if f.suffix in (".py", ".cypher", ".ipynb", ".mjs") and "node_modules" not in f.parts
        ]  # fmt: skip
        for file in files:
            for name in GDS_NAME.findall(file.read_text(encoding="utf-8")):
                found.setdefault(name, []).append(str(file.relative_to(ROOT)))
    assert "gds.graph.project" in found and "gds.pageRank.mutate" in found  # the scan works
    unknown = {name: where for name, where in found.items() if name not in listed}
    assert not unknown, f"not GDS 2.13 procedures or functions: {unknown}"
