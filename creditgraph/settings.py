"""Configuration in one place: typed defaults, overridable by a TOML file and the environment.

Precedence (last wins): defaults → ``creditgraph.toml`` (or the file named by
``CREDITGRAPH_CONFIG``) → environment variables ``CREDITGRAPH_<FIELD>``.
Credentials (Neo4j password, encryption key) are read from the environment only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ScoreScale:
    """Anchors of the score scale: ``score = offset + factor * ln(good:bad odds)``.

    ``base_odds`` is good:bad (20 means 20 good payers for each defaulter, PD ≈ 4.8%)
    and is scored ``base_score``; every ``points_to_double_odds`` points the
    good:bad odds double. Scores are clipped to ``[min_score, max_score]``.
    """

    base_score: float = 650.0
    base_odds: float = 20.0
    points_to_double_odds: float = 60.0
    min_score: float = 350.0
    max_score: float = 950.0


@dataclass(frozen=True)
class Settings:
    """Everything a run can be told; defaults run out of the box."""

    data_dir: Path = Path("creditgraph-data")
    store: str = "embedded"  # "embedded", "memory", "neo4j" or a bolt:// / neo4j:// URI
    seed: int = 42
    demo_users: int = 20_000
    batch_size: int = 10_000
    split: str = "random"  # "random" (stratified) or "time" (latest observation cohort = test)
    calibration: str = "platt"  # "platt" (keeps points additive) or "isotonic"
    scale: ScoreScale = field(default_factory=ScoreScale)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "graph"

    @property
    def history_dir(self) -> Path:
        return self.data_dir / "history"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def scores_dir(self) -> Path:
        return self.data_dir / "scores"

    @property
    def rejects_dir(self) -> Path:
        return self.data_dir / "rejects"


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Build settings from defaults, an optional TOML file, the environment and overrides."""
    settings = Settings()
    path = path or _config_path()
    if path is not None and path.exists():
        with path.open("rb") as fh:
            settings = _apply(settings, tomllib.load(fh))
    env = {
        f.name: os.environ[f"CREDITGRAPH_{f.name.upper()}"]
        for f in fields(Settings)
        if f.name != "scale" and f"CREDITGRAPH_{f.name.upper()}" in os.environ
    }
    settings = _apply(settings, env)
    return _apply(settings, {k: v for k, v in overrides.items() if v is not None})


def _config_path() -> Path | None:
    named = os.environ.get("CREDITGRAPH_CONFIG")
    if named:
        return Path(named)
    local = Path("creditgraph.toml")
    return local if local.exists() else None


def _apply(settings: Settings, values: dict) -> Settings:
    kinds = {f.name: f.type for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in kinds:
            raise ValueError(f"unknown setting {key!r}; known: {sorted(kinds)}")
        if key == "scale":
            value = replace(settings.scale, **{k: float(v) for k, v in dict(value).items()})
        elif key == "data_dir":
            value = Path(value)
        elif key in ("seed", "demo_users", "batch_size"):
            value = int(value)
        changes[key] = value
    return replace(settings, **changes)
