"""Configuration in one place: typed defaults, overridable by a TOML file and the environment.

Precedence (last wins): defaults → ``creditgraph.toml`` (or the file named by
``CREDITGRAPH_CONFIG``) → environment variables ``CREDITGRAPH_<FIELD>``.
Credentials (Neo4j password, encryption key) are read from the environment only.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

from creditgraph.catalog import MIN_KEEP, DataDir
from creditgraph.errors import ConfigError
from creditgraph.scoring.scale import CALIBRATIONS, ScoreScale


@dataclass(frozen=True)
class Settings:
    """Everything a run can be told; defaults run out of the box."""

    data_dir: Path = Path("creditgraph-data")
    store: str = "embedded"  # "embedded", "memory", "neo4j" or a bolt:// / neo4j:// URI
    seed: int = 42
    demo_users: int = 20_000
    batch_size: int = 10_000
    split: Literal["random", "time"] = "random"  # time: the latest observation cohort is test
    calibration: Literal["platt", "isotonic"] = "platt"  # platt keeps factor points additive
    scale: ScoreScale = field(default_factory=ScoreScale)
    earliest_date: str = "1900-01-01"  # input dates before it are rejected
    # Input dates after it are rejected (None: the day of the load, plus a day for clocks);
    # scheduled dates (instalment due dates, observation dates) may run a year past it.
    latest_date: str | None = None
    # The partner policy file (None: the shipped default); read by creditgraph.access.policy.
    policies: Path | None = None
    # A Dask scheduler (tcp://host:8786) or "local" for the commands given --cluster without
    # an address; None: they run in this process (CREDITGRAPH_DASK_SCHEDULER).
    dask_scheduler: str | None = None
    # Published scoring runs whose scores and inputs `score` and `rescore` keep after each
    # publish (the newest N; manifests always stay). None: every run, because a lender may
    # have to explain an old decision from the scores and inputs behind it.
    keep_runs: int | None = None

    @property
    def paths(self) -> DataDir:
        """Every path under ``data_dir`` (the layout lives in :mod:`creditgraph.catalog`)."""
        return DataDir(self.data_dir)


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Build settings from defaults, an optional TOML file, the environment and overrides."""
    settings = Settings()
    path = path or _config_path()
    if path is not None and path.exists():
        try:
            with path.open("rb") as fh:
                values = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        settings = _apply(settings, values, str(path))
    for f in fields(Settings):
        variable = f"CREDITGRAPH_{f.name.upper()}"
        if f.name != "scale" and variable in os.environ:
            settings = _apply(settings, {f.name: os.environ[variable]}, variable)
    return _apply(settings, {k: v for k, v in overrides.items() if v is not None}, "flag")


def _config_path() -> Path | None:
    named = os.environ.get("CREDITGRAPH_CONFIG")
    if named:
        return Path(named)
    local = Path("creditgraph.toml")
    return local if local.exists() else None


STORES = ("embedded", "memory", "neo4j")  # or a bolt:// / neo4j:// URI
SPLITS = ("random", "time")
_CHOICES = {"split": SPLITS, "calibration": CALIBRATIONS}
_INTEGERS = ("seed", "demo_users", "batch_size")


def _apply(settings: Settings, values: dict, source: str = "settings") -> Settings:
    """``settings`` with ``values`` applied, each checked now, naming any bad one."""
    kinds = {f.name for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in kinds:
            raise ConfigError(f"unknown setting {key!r} in {source}; known: {sorted(kinds)}")
        changes[key] = _checked(settings, key, value, source)
    return replace(settings, **changes)


def _checked(settings: Settings, key: str, value: Any, source: str) -> Any:
    where = f"setting {key!r} ({source})"
    if key == "scale":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table of numbers, not {value!r}")
        known = {f.name for f in fields(ScoreScale)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
        try:
            scale = replace(settings.scale, **{k: float(v) for k, v in value.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} must hold numbers: {exc}") from None
        if scale.points_to_double_odds <= 0 or scale.base_odds <= 0:
            raise ConfigError(f"{where}: base_odds and points_to_double_odds must be positive")
        if scale.min_score >= scale.max_score:
            raise ConfigError(f"{where}: min_score must be below max_score")
        return scale
    if key == "data_dir":
        return Path(value)
    if key == "policies":
        return Path(value) if value not in (None, "") else None
    if key == "dask_scheduler":
        return str(value) if value not in (None, "") else None
    if key == "keep_runs":
        return _keep_runs(value, where)
    if key in ("earliest_date", "latest_date"):
        if key == "latest_date" and value in (None, ""):
            return None  # the day of each load
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ConfigError(f"{where} must be a YYYY-MM-DD date, not {value!r}") from None
    if key in _INTEGERS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
        if key != "seed" and number <= 0:
            raise ConfigError(f"{where} must be positive, not {number}")
        return number
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{where} must be one of {', '.join(_CHOICES[key])}, not {value!r}")
    if key == "store" and value not in STORES and "://" not in str(value):
        raise ConfigError(
            f"{where} must be embedded, memory, neo4j or a bolt:// / neo4j:// URI, not {value!r}"
        )
    return value


def _keep_runs(value: Any, where: str) -> int | None:
    """``keep_runs``: None (or empty) keeps every run; else at least the current and previous."""
    if value in (None, ""):
        return None
    try:
        number = int(value)
        whole = not isinstance(value, bool) and number == float(value)
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ConfigError(f"{where} must be a whole number of runs, not {value!r}")
    if number < MIN_KEEP:
        raise ConfigError(
            f"{where} must be at least {MIN_KEEP} (the current run and the one before it are "
            f"always kept), not {value!r}; leave it out to keep every run"
        )
    return number
