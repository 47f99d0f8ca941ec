"""The credit model: factor-grouped monotone XGBoost → Platt-calibrated PD → score and factors.

Interactions are constrained to stay within a factor, so every tree uses the
features of exactly one factor and the model is additive over factors. A
factor's contribution is then the margin of its own trees minus that margin's
training mean: exact (these are the factor-level Shapley values of the
additive model) and as fast as plain prediction. Margins map to score points
linearly through the Platt calibration, so base points plus the five factor
points equal the unclipped score.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from creditgraph.durable import (
    TMP_PREFIX,
    failpoint,
    read_pointer,
    staged_directory,
    temporary_sibling,
    write_pointer,
)
from creditgraph.errors import ConfigError, ModelNotFound, TrainingError, TrainingWarning
from creditgraph.scoring import scale as scoring_scale
from creditgraph.scoring.boosting import boost
from creditgraph.scoring.design import categories_of, design_matrix, dmatrix
from creditgraph.scoring.dictionary import FACTORS, model_features, reason_words, spec
from creditgraph.scoring.metrics import summary
from creditgraph.scoring.scale import CALIBRATIONS, ScoreScale

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "max_cat_to_onehot": 8,
}
MAX_ROUNDS = 1500
EARLY_STOPPING = 50
# Fewest defaults, and fewest non-defaults, each split must hold (else TrainingError).
# Validation: early stopping reads its log-loss and the Platt fit (slope and intercept) is
# made on it; at the usual ~10 events per fitted parameter, fewer than 20 defaults leave the
# slope mostly noise (a 300-user world, ~5 validation defaults, gave base points of 1,426).
# Training: monotone trees with min_child_weight 5 over ~60 features need a few dozen
# defaults before a split reflects more than noise. 50 and 20 keep a 1,500-user world (~80
# and ~27 at a 9% default rate) trainable and refuse a 300-user one.
MIN_TRAIN_OUTCOMES = 50
MIN_VALID_OUTCOMES = 20
LATEST = "LATEST"  # models_dir/LATEST: the id of the latest saved model, switched atomically
STALE_SECONDS = 3600  # a .tmp-* leftover older than this belongs to a killed save


@dataclass
class CreditModel:
    """A trained, calibrated, explainable credit model. Save/load round-trips exactly."""

    booster: xgb.Booster
    features: list[str]
    categories: dict[str, list[str]]
    calibration: tuple[float, float]  # Platt: logit(PD) = a · margin + b
    scale: ScoreScale
    tree_factor: np.ndarray  # factor index of each tree (-1: a single-leaf tree)
    factor_means: np.ndarray  # training mean of each factor's margin
    bias: float  # margin not carried by any tree (XGBoost's base score, stumps)
    model_id: str
    fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    training_labels: pd.Series | None = None  # labels the label-aware features may use
    isotonic: tuple[np.ndarray, np.ndarray] | None = None  # (margins, PDs) when isotonic

    # -- prediction -------------------------------------------------------
    def factor_margins(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, 5) margin of each factor's trees: one prediction per factor's sub-model."""
        data = dmatrix(design_matrix(frame, self.features, self.categories))
        parts, base = _factor_boosters(self.booster, self.tree_factor)
        out = np.zeros((data.num_row(), len(FACTORS)))
        for k, part in enumerate(parts):
            if part is not None:
                out[:, k] = part.predict(data, output_margin=True) - base
        return out

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        return self.factor_margins(frame).sum(axis=1) + self.bias

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return self._pd_from_margin(self.margin(frame))

    def _pd_from_margin(self, margin: np.ndarray) -> np.ndarray:
        if self.isotonic is not None:
            x, y = self.isotonic
            return np.clip(np.interp(margin, x, y), 1e-6, 1 - 1e-6)
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-(a * margin + b)))

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Score one user given as a dict of model inputs; identical to batch scoring."""
        frame = pd.DataFrame([record]).reindex(columns=self.features)
        row = self.score(frame).iloc[0]
        return {**row.to_dict(), "reasons": self.reasons(frame).iloc[0].split("; ")}

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score, PD and the five factor contributions in score points, one row per input row.

        ``base_points + Σ f_<factor>`` equals ``score``: when the score is
        clipped to the range, factor points are scaled by the same ratio.
        """
        margins = self.factor_margins(frame)
        centred = margins - self.factor_means
        base_margin = self.bias + self.factor_means.sum()
        pd_ = self._pd_from_margin(margins.sum(axis=1) + self.bias)
        base_points = float(_points(self._pd_from_margin(np.array([base_margin])), self.scale)[0])
        # Points are linear in the margin (Platt slope); isotonic PDs are monotone in the margin,
        # so rescaling to the final score keeps every factor's sign.
        points = centred * (-scoring_scale.factor(self.scale) * self.calibration[0])
        raw = base_points + points.sum(axis=1)
        score = scoring_scale.clip(_points(pd_, self.scale), self.scale)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(raw != base_points, (score - base_points) / (raw - base_points), 1.0)
        points = points * ratio[:, None]
        result = pd.DataFrame({"score": score, "pd": pd_}, index=frame.index)
        for k, name in enumerate(FACTORS):
            result[f"f_{name}"] = points[:, k]
        result.attrs["base_points"] = base_points
        return result

    def feature_points(self, frame: pd.DataFrame, *, exact: bool = False) -> pd.DataFrame:
        """Per-feature contributions in score points (exact TreeSHAP when ``exact``).

        The approximate (Saabas) path is ~100× faster and still sums, per
        factor, to the factor's contribution; use exact SHAP for adverse action.
        """
        design = design_matrix(frame, self.features, self.categories)
        points = self._feature_points(design, exact)
        return pd.DataFrame(points, index=frame.index, columns=self.features)

    def _feature_points(self, design: pd.DataFrame, exact: bool) -> np.ndarray:
        contribs = self.booster.predict(
            dmatrix(design), pred_contribs=True, approx_contribs=not exact
        )[:, :-1]
        return -scoring_scale.factor(self.scale) * self.calibration[0] * contribs

    def reasons(self, frame: pd.DataFrame, top: int = 4, *, exact: bool = False) -> pd.Series:
        """Up to ``top`` plain-words reasons per row: what lowered the score most.

        A feature with a value speaks its ``words``; a missing one (no record)
        its ``missing_words`` or nothing (see :mod:`scoring.dictionary`).
        Features with the same wording form one reason worth the sum of their
        points (a group's Shapley value), so no reason is said twice.
        """
        design = design_matrix(frame, self.features, self.categories)
        points = self._feature_points(design, exact)
        words, value_slot, missing_slot = reason_words(self.features)
        pooled = np.zeros((len(words), len(design)))  # one row per reason: columns add fast
        for j, name in enumerate(self.features):
            column = design[name]
            missing = column.isna().to_numpy()
            absent = spec(name).absent_value
            if absent is not None:
                missing = missing | (column.to_numpy(dtype=float, na_value=np.nan) == absent)
            if value_slot[j] >= 0:
                pooled[value_slot[j]] += np.where(missing, 0.0, points[:, j])
            if missing_slot[j] >= 0:
                pooled[missing_slot[j]] += np.where(missing, points[:, j], 0.0)
        pooled = pooled.T
        k = min(top, len(words))
        if k == 0 or not len(design):
            return pd.Series([""] * len(design), index=frame.index, dtype=object)
        chosen = np.argpartition(pooled, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(pooled, chosen, axis=1)
        order = np.lexsort((chosen, values), axis=1)  # lowest points first, ties by wording
        chosen = np.take_along_axis(chosen, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        names = np.where(values < -0.5, np.array(words, dtype=object)[chosen], "")
        return pd.Series(["; ".join(r for r in row if r) for row in names], index=frame.index)

    # -- persistence ------------------------------------------------------
    def save(self, models_dir: Path) -> Path:
        """Publish ``models_dir/<model_id>/`` and point ``models_dir/LATEST`` at it.

        The directory is built aside and renamed into place, so a kill at any
        moment leaves either no directory or a complete one. A complete
        directory of the same id (the same model) is kept as it is; an
        incomplete one (left by a killed save of an older version) is moved
        aside first. The pointer is switched last, in one rename.
        """
        models_dir = Path(models_dir)
        directory = models_dir / self.model_id
        if _problem(directory) is not None:
            if directory.exists():
                _discard(directory)
            _sweep_stale(models_dir)
            try:
                with staged_directory(directory) as staged:
                    self._write(staged)
            except OSError:
                if _problem(directory) is not None:  # not published meanwhile by another save
                    raise
        failpoint("train:model-staged")  # crash tests: the model is in place, LATEST not yet
        write_pointer(models_dir / LATEST, self.model_id)
        return directory

    def _write(self, directory: Path) -> None:
        """Booster, training labels, then ``model.json`` listing both files' sizes."""
        self.booster.save_model(directory / "booster.json")
        files = ["booster.json"]
        if self.training_labels is not None:
            frame = self.training_labels.rename("defaulted").rename_axis("user_id").reset_index()
            frame.to_parquet(directory / "training_labels.parquet", index=False)
            files.append("training_labels.parquet")
        meta = {
            "model_id": self.model_id,
            "created_at": self.created_at,
            "fingerprint": self.fingerprint,
            "features": [
                {"name": f, "factor": spec(f).factor, "monotone_risk": spec(f).risk}
                for f in self.features
            ],
            "categories": self.categories,
            "calibration": {
                "method": "isotonic" if self.isotonic is not None else "platt",
                "a": self.calibration[0],
                "b": self.calibration[1],
                **(
                    {"x": self.isotonic[0].tolist(), "y": self.isotonic[1].tolist()}
                    if self.isotonic is not None
                    else {}
                ),
            },
            "scale": self.scale.__dict__,
            "tree_factor": self.tree_factor.tolist(),
            "factor_means": self.factor_means.tolist(),
            "bias": self.bias,
            "metrics": self.metrics,
            "params": self.params,
            "files": {name: (directory / name).stat().st_size for name in files},
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=2, default=float))

    @classmethod
    def load(cls, directory: Path) -> CreditModel:
        """The model saved in ``directory``; ModelNotFound when it is missing or incomplete."""
        directory = Path(directory)
        problem = _problem(directory)
        if problem is not None:
            raise ModelNotFound(f"no usable model at {directory} ({problem}); train one first")
        try:
            meta = json.loads((directory / "model.json").read_text())
            booster = xgb.Booster()
            booster.load_model(directory / "booster.json")
            labels_path = directory / "training_labels.parquet"
            labels = (
                pd.read_parquet(labels_path).set_index("user_id")["defaulted"]
                if labels_path.exists()
                else None
            )
            return cls(
                booster=booster,
                features=[f["name"] for f in meta["features"]],
                categories=meta["categories"],
                calibration=(meta["calibration"]["a"], meta["calibration"]["b"]),
                scale=ScoreScale(**meta["scale"]),
                tree_factor=np.asarray(meta["tree_factor"], dtype=int),
                factor_means=np.asarray(meta["factor_means"], dtype=float),
                bias=float(meta["bias"]),
                model_id=meta["model_id"],
                fingerprint=meta["fingerprint"],
                metrics=meta["metrics"],
                params=meta["params"],
                created_at=meta["created_at"],
                training_labels=labels,
                isotonic=(
                    (np.asarray(meta["calibration"]["x"]), np.asarray(meta["calibration"]["y"]))
                    if meta["calibration"]["method"] == "isotonic"
                    else None
                ),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:  # XGBoost/Arrow errors too
            raise ModelNotFound(
                f"the model at {directory} is corrupt ({type(exc).__name__}: {exc}); "
                "train again or load another model"
            ) from exc


@dataclass(frozen=True)
class ModelEntry:
    """A complete saved model, as listed by :func:`list_models`."""

    model_id: str
    created_at: str
    directory: Path
    latest: bool  # what models_dir/LATEST points at


def list_models(models_dir: Path) -> list[ModelEntry]:
    """Every complete model in ``models_dir``, oldest first (by ``created_at``).

    Temporary (``.tmp-*``) and incomplete directories are left out.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    pointed = read_pointer(models_dir / LATEST)
    found = []
    for directory in models_dir.iterdir():
        if directory.name.startswith(".") or _problem(directory) is not None:
            continue
        meta = json.loads((directory / "model.json").read_text())
        created = str(meta.get("created_at", ""))
        mtime = (directory / "model.json").stat().st_mtime
        found.append((_timestamp(created), mtime, directory.name, created, directory))
    found.sort(key=lambda row: row[:3])
    return [
        ModelEntry(name, created, directory, name == pointed)
        for _, _, name, created, directory in found
    ]


def latest_model(models_dir: Path) -> CreditModel:
    """The model ``models_dir/LATEST`` points at.

    A models directory from before the pointer existed falls back to the
    newest complete model by its ``created_at``.
    """
    models_dir = Path(models_dir)
    pointed = read_pointer(models_dir / LATEST)
    if pointed is not None:
        if Path(pointed).name != pointed or pointed.startswith("."):
            raise ModelNotFound(f"{models_dir / LATEST} names {pointed!r}, not a model id")
        return CreditModel.load(models_dir / pointed)
    entries = list_models(models_dir)
    if not entries:
        raise ModelNotFound(f"no model in {models_dir}; run `creditgraph train` first")
    return CreditModel.load(entries[-1].directory)


def _problem(directory: Path) -> str | None:
    """Why ``directory`` is not a complete saved model, or None when it is one."""
    if directory.name.startswith(TMP_PREFIX):
        return "a temporary directory of an unfinished save"
    meta_path = directory / "model.json"
    if not meta_path.is_file():
        return "model.json missing"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return f"model.json unreadable: {exc}"
    if not isinstance(meta, dict):
        return "model.json is not a model description"
    files = meta.get("files")
    if isinstance(files, dict):
        for name, size in files.items():
            path = directory / name
            if not path.is_file() or path.stat().st_size != size:
                return f"{name} missing or not the {size:,} bytes saved"
        return None
    # Saved before model.json listed its files: the booster must at least parse.
    booster = directory / "booster.json"
    try:
        json.loads(booster.read_bytes())
    except (OSError, ValueError):
        return "booster.json missing or truncated"
    return None


def _discard(directory: Path) -> None:
    """Move an incomplete directory out of readers' sight, then delete it."""
    aside = temporary_sibling(directory)
    os.rename(directory, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _sweep_stale(models_dir: Path) -> None:
    """Delete ``.tmp-*`` leftovers of killed saves (old enough not to be a running save's)."""
    if not models_dir.is_dir():
        return
    cutoff = time.time() - STALE_SECONDS
    for child in models_dir.glob(f"{TMP_PREFIX}*"):
        try:
            if child.lstat().st_mtime >= cutoff:
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def _timestamp(created_at: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(created_at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def train_model(
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    train_index: pd.Index,
    valid_index: pd.Index,
    scale: ScoreScale,
    seed: int = 42,
    params: dict[str, Any] | None = None,
    calibration: str = "platt",
    fit: Fit | None = None,
) -> CreditModel:
    """Fit on ``train_index``; early-stop and Platt-calibrate on ``valid_index``.

    ``fit`` boosts the trees (default :func:`fit_here`, in this process; a cluster
    passes ``xgboost.dask``'s); everything else (factors, calibration) is the same.

    Every column must be declared in :mod:`scoring.dictionary`: features are
    used, auxiliary columns left out, any other column raises ``UnknownFeature``
    (:func:`~scoring.dictionary.model_features`); monotone directions come from
    there, and interactions are kept within factors.
    """
    if calibration not in CALIBRATIONS:  # checked before training, not after it
        raise ConfigError(f"calibration must be 'platt' or 'isotonic', not {calibration!r}")
    names = model_features(features.columns)
    y = labels.reindex(features.index).astype(float)
    _check_outcomes(y.loc[train_index], y.loc[valid_index])
    categories = {k: v for k, v in categories_of(features[names]).items()}
    design = design_matrix(features, names, categories)
    groups = [[i for i, f in enumerate(names) if spec(f).factor == k] for k in FACTORS]
    config = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    config["monotone_constraints"] = (
        "(" + ",".join(str(0 if f in categories else spec(f).risk) for f in names) + ")"
    )
    config["interaction_constraints"] = json.dumps([g for g in groups if g])
    train_rows = (design.loc[train_index], y.loc[train_index].to_numpy())
    valid_rows = (design.loc[valid_index], y.loc[valid_index].to_numpy())
    booster = (fit or fit_here)(config, train_rows, valid_rows, MAX_ROUNDS, EARLY_STOPPING)
    tree_factor = _tree_factors(booster, names)
    fingerprint = _fingerprint(design.loc[train_index], y.loc[train_index])
    model = CreditModel(
        booster=booster,
        features=names,
        categories=categories,
        calibration=(1.0, 0.0),
        scale=scale,
        tree_factor=tree_factor,
        factor_means=np.zeros(len(FACTORS)),
        bias=0.0,
        model_id="",
        fingerprint=fingerprint,
        params={k: v for k, v in config.items()},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        training_labels=labels.loc[train_index].astype(int),
    )
    train_frame = features.loc[train_index]
    margins = model.factor_margins(train_frame)
    full = booster.predict(dmatrix(design.loc[train_index]), output_margin=True)
    model.bias = float(np.mean(full - margins.sum(axis=1)))
    model.factor_means = margins.mean(axis=0)
    valid_margin = model.margin(features.loc[valid_index])
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(
        valid_margin.reshape(-1, 1), y.loc[valid_index].to_numpy()
    )
    model.calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    if calibration == "isotonic":
        model.isotonic = _fit_isotonic(valid_margin, y.loc[valid_index].to_numpy())
    # The scale and calibration change every score, so they are part of what a model is: a
    # [scale] change must train a new model, not find the old one's directory and keep it.
    identity = [config, scale.__dict__, calibration]
    model.model_id = (
        "cg-"
        + hashlib.sha256(
            (fingerprint + json.dumps(identity, sort_keys=True, default=str)).encode()
        ).hexdigest()[:12]
    )
    model.metrics = {
        "valid": summary(y.loc[valid_index].to_numpy(), model.predict_pd(features.loc[valid_index]))
    }
    base = model._pd_from_margin(np.array([model.bias + model.factor_means.sum()]))
    base_points = float(_points(base, scale)[0])
    if not scale.min_score <= base_points <= scale.max_score:
        warnings.warn(
            f"base points {base_points:,.0f} fall outside the score range "
            f"{scale.min_score:,.0f}–{scale.max_score:,.0f}: the calibration is extreme "
            "(too little or too unbalanced data?) and factor points will be rescaled heavily",
            TrainingWarning,
            stacklevel=2,
        )
    return model


Rows = tuple[pd.DataFrame, np.ndarray]  # a design matrix and its 0/1 labels
# (params, training rows, validation rows, most rounds, patience) -> booster cut at its best round
Fit = Callable[[dict[str, Any], Rows, Rows, int, int], xgb.Booster]


def fit_here(params: dict[str, Any], train: Rows, valid: Rows, rounds: int,
             patience: int) -> xgb.Booster:  # fmt: skip
    """Boost in this process, early-stopping on the validation rows."""
    return boost(params, dmatrix(*train), rounds, valid=dmatrix(*valid), patience=patience).booster


def _check_outcomes(train: pd.Series, valid: pd.Series) -> None:
    """Refuse splits with too few defaults or non-defaults to fit and calibrate on."""
    counts = {
        name: (int((y == 1).sum()), int((y == 0).sum()), minimum)
        for name, y, minimum in (
            ("training", train, MIN_TRAIN_OUTCOMES),
            ("validation", valid, MIN_VALID_OUTCOMES),
        )
    }
    if all(min(bad, good) >= minimum for bad, good, minimum in counts.values()):
        return
    found = ", ".join(
        f"{name} {bad:,} defaults and {good:,} non-defaults"
        for name, (bad, good, _) in counts.items()
    )
    raise TrainingError(
        f"too few outcomes to train a trustworthy model: {found}; need at least "
        f"{MIN_TRAIN_OUTCOMES} of each in training and {MIN_VALID_OUTCOMES} of each in "
        "validation (more labelled users, or more defaults among them)"
    )


def _points(pd_: np.ndarray, scale: ScoreScale) -> np.ndarray:
    """Unclipped score of a PD."""
    p = np.clip(pd_, 1e-12, 1 - 1e-12)
    return scoring_scale.score_from_log_odds(np.log(p / (1 - p)), scale)


def _fit_isotonic(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic PD as a function of the margin; warns where it is likely to overfit."""
    from sklearn.isotonic import IsotonicRegression

    if len(y) < 1000:
        warnings.warn(
            f"isotonic calibration on {len(y)} rows (< 1000) tends to overfit; prefer platt",
            stacklevel=3,
        )
    fitted = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(margin, y)
    return np.asarray(fitted.X_thresholds_), np.asarray(fitted.y_thresholds_)


def _factor_boosters(
    booster: xgb.Booster, tree_factor: np.ndarray
) -> tuple[list[xgb.Booster | None], float]:
    """One sub-model per factor holding only that factor's trees, and the base margin.

    Cut from the model's JSON; with one factor per tree, a sub-model's margin
    minus the base margin is exactly that factor's share of the full margin.
    """
    cached = getattr(booster, "_creditgraph_factor_boosters", None)
    if cached is not None:
        return cached
    raw = json.loads(booster.save_raw("json"))

    def keep(mask: np.ndarray) -> xgb.Booster:
        model = json.loads(json.dumps(raw))
        trees = model["learner"]["gradient_booster"]["model"]
        kept = [tree for tree, k in zip(trees["trees"], mask, strict=True) if k]
        for i, tree in enumerate(kept):
            tree["id"] = i
        trees.update(trees=kept, tree_info=[0] * len(kept),
                     iteration_indptr=list(range(len(kept) + 1)))  # fmt: skip
        trees["gbtree_model_param"]["num_trees"] = str(len(kept))
        part = xgb.Booster()
        part.load_model(bytearray(json.dumps(model).encode()))
        return part

    # Every sub-model starts from XGBoost's base score; as a margin (binary:logistic) that is
    # its logit. Subtracting it leaves the sum of the factor's own tree leaves.
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    base_probability = float(str(config["base_score"]).strip("[]"))
    base = float(np.log(base_probability / (1 - base_probability)))
    parts = [keep(tree_factor == k) if (tree_factor == k).any() else None
             for k in range(len(FACTORS))]  # fmt: skip
    booster._creditgraph_factor_boosters = (parts, base)  # type: ignore[attr-defined]
    return parts, base


def _tree_factors(booster: xgb.Booster, names: list[str]) -> np.ndarray:
    """The factor of each tree; raises if a tree mixes factors (constraints violated)."""
    nodes = booster.trees_to_dataframe()
    splits = nodes[nodes["Feature"] != "Leaf"]
    factor_index = {f: FACTORS.index(spec(f).factor) for f in names}
    n_trees = int(nodes["Tree"].max()) + 1
    out = np.full(n_trees, -1, dtype=int)
    per_tree = splits.assign(k=splits["Feature"].map(factor_index)).groupby("Tree")["k"]
    lo, hi = per_tree.min(), per_tree.max()
    mixed = lo.index[lo != hi]
    if len(mixed):
        raise AssertionError(f"trees {list(mixed)[:5]} mix factors despite constraints")
    out[lo.index.to_numpy()] = lo.to_numpy()
    return out


def _fingerprint(design: pd.DataFrame, labels: pd.Series) -> str:
    hashed = pd.util.hash_pandas_object(design, index=True).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update(pd.util.hash_pandas_object(labels, index=True).to_numpy().tobytes())
    return digest.hexdigest()
