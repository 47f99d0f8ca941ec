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
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

from creditgraph.errors import ModelNotFound
from creditgraph.settings import ScoreScale
from scoring import scale as scoring_scale
from scoring.design import categories_of, design_matrix, dmatrix
from scoring.dictionary import FACTORS, FEATURES, spec
from scoring.metrics import summary

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
        contribs = self.booster.predict(
            dmatrix(design), pred_contribs=True, approx_contribs=not exact
        )[:, :-1]
        points = -scoring_scale.factor(self.scale) * self.calibration[0] * contribs
        return pd.DataFrame(points, index=frame.index, columns=self.features)

    def reasons(self, frame: pd.DataFrame, top: int = 4, *, exact: bool = False) -> pd.Series:
        """Up to ``top`` plain-words reasons per row: the features that lowered the score most."""
        points = self.feature_points(frame, exact=exact)
        values = points.to_numpy()
        order = np.argsort(values, axis=1, kind="stable")[:, :top]
        words = np.array([spec(f).words for f in self.features], dtype=object)
        chosen = np.take_along_axis(values, order, axis=1)
        names = np.where(chosen < -0.5, words[order], "")
        return pd.Series(["; ".join(r for r in row if r) for row in names], index=frame.index)

    # -- persistence ------------------------------------------------------
    def save(self, models_dir: Path) -> Path:
        """Write ``models_dir/<model_id>/`` (booster + metadata) and return it."""
        directory = models_dir / self.model_id
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / "booster.json")
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
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=2, default=float))
        if self.training_labels is not None:
            frame = self.training_labels.rename("defaulted").rename_axis("user_id").reset_index()
            frame.to_parquet(directory / "training_labels.parquet", index=False)
        return directory

    @classmethod
    def load(cls, directory: Path) -> CreditModel:
        meta_path = directory / "model.json"
        if not meta_path.exists():
            raise ModelNotFound(f"no model at {directory} (model.json missing); train one first")
        meta = json.loads(meta_path.read_text())
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


def latest_model(models_dir: Path) -> CreditModel:
    """The most recently created model in ``models_dir``."""
    candidates = sorted(models_dir.glob("*/model.json"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ModelNotFound(f"no model in {models_dir}; run `creditgraph train` first")
    return CreditModel.load(candidates[-1].parent)


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
) -> CreditModel:
    """Fit on ``train_index``; early-stop and Platt-calibrate on ``valid_index``.

    Only features declared in :mod:`scoring.dictionary` are used; monotone
    directions come from there, and interactions are kept within factors.
    """
    names = [c for c in features.columns if c in FEATURES]
    categories = {k: v for k, v in categories_of(features[names]).items()}
    design = design_matrix(features, names, categories)
    y = labels.reindex(features.index).astype(float)
    groups = [[i for i, f in enumerate(names) if spec(f).factor == k] for k in FACTORS]
    config = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    config["monotone_constraints"] = (
        "(" + ",".join(str(0 if f in categories else spec(f).risk) for f in names) + ")"
    )
    config["interaction_constraints"] = json.dumps([g for g in groups if g])
    train = dmatrix(design.loc[train_index], y.loc[train_index].to_numpy())
    valid = dmatrix(design.loc[valid_index], y.loc[valid_index].to_numpy())
    booster = xgb.train(
        config, train, num_boost_round=MAX_ROUNDS, evals=[(valid, "valid")],
        early_stopping_rounds=EARLY_STOPPING, verbose_eval=False,
    )  # fmt: skip
    booster = booster[: booster.best_iteration + 1]
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
    elif calibration != "platt":
        raise ValueError(f"calibration must be 'platt' or 'isotonic', not {calibration!r}")
    model.model_id = (
        "cg-"
        + hashlib.sha256(
            (fingerprint + json.dumps(config, sort_keys=True, default=str)).encode()
        ).hexdigest()[:12]
    )
    model.metrics = {
        "valid": summary(y.loc[valid_index].to_numpy(), model.predict_pd(features.loc[valid_index]))
    }
    return model


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
