"""Model quality on the synthetic world: graph lift for thin-file users, cost of exact factors.

    python benchmarks/model_quality.py [--users 20000] [--seed 42]

Prints held-out ROC-AUC (all users and thin-file users) of the default model,
of a second run that also knows friends' previous (own-file) scores from the
first, with oracle graph features (the true latent credit of the user's
community and friends: the ceiling of any graph lift), and without the
interpersonal-relationships factor; the ROC-AUC of an unconstrained model
(interactions across factors allowed) against the factor-constrained default;
and calibration (ECE) of the default model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from creditgraph import pipeline
from creditgraph.settings import load_settings
from graph.features import GraphData
from graph.features.friends import friend_features
from scoring.design import categories_of, design_matrix, dmatrix
from scoring.dictionary import FEATURES, FeatureSpec, spec
from scoring.metrics import expected_calibration_error
from scoring.model import DEFAULT_PARAMS, EARLY_STOPPING, MAX_ROUNDS, train_model

ORACLE = ("oracle_community_latent", "oracle_friends_latent")
PREVIOUS = ("friends_prev_score_mean", "friends_prev_score_min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="creditgraph-quality-"))
    settings = load_settings(data_dir=data_dir, store="embedded", seed=args.seed)
    pipeline.generate(settings, data_dir / "world", args.users)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, data_dir / "world")
        raw = pipeline.build_features(settings, store)
        labels = pipeline.read_labels(settings).reindex(raw.index)
        split = pipeline.split_for(settings, labels)
        data = GraphData.export(store)
        features = pipeline.with_exposure(settings, data, raw, labels, split.train)
    test = features.loc[split.test]
    y = labels.loc[split.test].to_numpy()
    thin = test["thin_file"].to_numpy() == 1
    results: dict[str, dict[str, float]] = {}

    def fit(frame):
        return train_model(frame, labels, train_index=split.train, valid_index=split.valid,
                           scale=settings.scale, seed=args.seed)  # fmt: skip

    def record(name: str, p: np.ndarray) -> None:
        results[name] = {
            "roc_auc": float(roc_auc_score(y, p)),
            "roc_auc_thin_file": float(roc_auc_score(y[thin], p[thin])),
        }

    model = fit(features)
    record("all five factors (default)", model.predict_pd(test))
    results["all five factors (default)"]["ece"] = expected_calibration_error(
        y, model.predict_pd(test)
    )
    # A second run, as a batch rescoring would: friends' own-file scores from the first model.
    previous = friend_features(data.graph, raw.reindex(data.graph.ids), model.score(features))
    rescored = features.assign(**{c: previous[c].reindex(features.index) for c in PREVIOUS})
    record("second run (friends' prev scores)",
           fit(rescored).predict_pd(rescored.loc[split.test]))  # fmt: skip
    oracle = _oracle_graph_features(data_dir / "world", data.graph).reindex(features.index)
    with_oracle = features.assign(**oracle)
    record("+ oracle (true latents)", fit(with_oracle).predict_pd(with_oracle.loc[split.test]))
    no_graph = features[[c for c in features.columns
                         if c not in FEATURES or spec(c).factor != "relationships"]]  # fmt: skip
    record("without relationships factor", fit(no_graph).predict_pd(no_graph.loc[split.test]))
    record("unconstrained interactions", _unconstrained(features, labels, split, args.seed))
    shutil.rmtree(data_dir, ignore_errors=True)

    for name, values in results.items():
        print(f"{name:<32} " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    default = results["all five factors (default)"]
    without = results["without relationships factor"]
    print(
        f"graph lift, thin-file users: "
        f"{default['roc_auc_thin_file'] - without['roc_auc_thin_file']:+.4f}"
        f"  (all users {default['roc_auc'] - without['roc_auc']:+.4f})"
    )
    oracle_lift = (results["+ oracle (true latents)"]["roc_auc_thin_file"]
                   - without["roc_auc_thin_file"])  # fmt: skip
    print(f"ceiling, thin-file lift with the true latents (oracle): {oracle_lift:+.4f}")
    print(
        f"cost of exact factors (unconstrained − constrained ROC-AUC): "
        f"{results['unconstrained interactions']['roc_auc'] - default['roc_auc']:+.4f}"
    )
    print(json.dumps(results))


def _oracle_graph_features(world: Path, graph) -> pd.DataFrame:  # noqa: ANN001
    """What a perfect graph feature could know: the hidden latent credit of a user's true
    community (leave-one-out mean) and of their friends, from the world's ``truth`` table.

    A ceiling for the graph lift, never a model input outside this benchmark.
    """
    truth = pd.read_csv(world / "truth.csv", dtype={"user_id": str}).set_index("user_id")
    truth = truth.reindex(graph.ids)
    latent = truth["latent_credit"].to_numpy(dtype=float)
    community = truth["community"].to_numpy(dtype=np.int64)
    total, size = np.bincount(community, latent), np.bincount(community).astype(float)
    for name in ORACLE:
        FEATURES.setdefault(name, FeatureSpec(name, "relationships", -1, "oracle"))
    return graph.frame({
        ORACLE[0]: (total[community] - latent) / np.maximum(size[community] - 1, 1),
        ORACLE[1]: graph.neighbour_mean(latent),
    })  # fmt: skip


def _unconstrained(features, labels, split, seed: int) -> np.ndarray:
    """The same model without interaction constraints (factors then are not exact)."""
    names = [c for c in features.columns if c in FEATURES]
    categories = categories_of(features[names])
    design = design_matrix(features, names, categories)
    params = {**DEFAULT_PARAMS, "seed": seed, "monotone_constraints": "(" + ",".join(
        str(0 if f in categories else spec(f).risk) for f in names) + ")"}  # fmt: skip
    y = labels.astype(float)
    train = dmatrix(design.loc[split.train], y.loc[split.train].to_numpy())
    valid = dmatrix(design.loc[split.valid], y.loc[split.valid].to_numpy())
    booster = xgb.train(params, train, MAX_ROUNDS, evals=[(valid, "valid")],
                        early_stopping_rounds=EARLY_STOPPING, verbose_eval=False)  # fmt: skip
    booster = booster[: booster.best_iteration + 1]
    return booster.predict(dmatrix(design.loc[split.test]))


if __name__ == "__main__":
    main()
