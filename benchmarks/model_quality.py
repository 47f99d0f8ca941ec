"""Model quality on the synthetic world: thin-file graph lift, its ceiling, exact-factor cost.

    python benchmarks/model_quality.py [--users 100000] [--worlds 3] [--seed 42]
                                       [--split random|time]

Builds ``--worlds`` worlds (seeds ``seed``, ``seed + 1``, ...) and prints for each
the held-out ROC-AUC (all users and thin-file users) of the default model; of a
second run that also knows friends' previous (own-file) scores from the first;
of the default model plus oracle graph features read from the world's hidden
``truth``; and without the interpersonal-relationships factor. Then the
ROC-AUC of an unconstrained model (interactions across factors allowed) against
the factor-constrained default, and calibration (ECE).

Two oracles bound what any graph feature could add:

- *community*: the true latent credit of the user's community (leave-one-out
  mean) and of their friends, and the community's repayment norm;
- *+ merchants*: also the true tiers of the merchants the user pays, split into
  merchants owned outside the user's community (chosen by credit tier) and
  inside it.

The summary gives mean ± std over the worlds of the thin-file lift, of both
ceilings, the lift as a share of the full ceiling, and the ratio to the +0.05
target. At 100k users a world's thin-file test set holds ~8,000 users and the
lift varies between worlds by ±0.001 (random split) to ±0.004 (time split); at
20k users (~1,600 thin-file test users, ~170 defaults) by ±0.018, too much for
one world to decide the target. ``--split time`` tests on the later observation
cohort, so label-aware features only see the earlier cohort's defaults, as in
production.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xgboost as xgb
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import labelled_world, world_arguments  # noqa: E402

from creditgraph.graph.network import GraphData
from creditgraph.scoring.design import categories_of, design_matrix, dmatrix
from creditgraph.scoring.dictionary import FEATURES, FeatureSpec, declared, model_features, spec
from creditgraph.scoring.features.friends import friend_features
from creditgraph.scoring.metrics import expected_calibration_error
from creditgraph.scoring.model import DEFAULT_PARAMS, EARLY_STOPPING, MAX_ROUNDS, train_model

TARGET_THIN_FILE_LIFT = 0.05
COMMUNITY = ("oracle_community_latent", "oracle_friends_latent", "oracle_community_norm")
MERCHANTS = ("oracle_outside_merchant_tier", "oracle_inside_merchant_tier")
PREVIOUS = ("friends_prev_score_mean", "friends_prev_score_min")
# The oracle columns, declared for the models of this benchmark only (never a model input
# elsewhere: see scoring.dictionary.declared).
ORACLE_SPECS = tuple(FeatureSpec(name, "relationships", -1, "oracle")
                     for name in COMMUNITY + MERCHANTS)  # fmt: skip
DEFAULT = "all five factors (default)"
SECOND = "second run (friends' prev scores)"
ORACLE_COMMUNITY = "+ oracle community"
ORACLE_ALL = "+ oracle community + merchants"
WITHOUT = "without relationships factor"
UNCONSTRAINED = "unconstrained interactions"


def main() -> None:
    args = world_arguments(__doc__.splitlines()[0])
    worlds = []
    for seed in range(args.seed, args.seed + args.worlds):
        print(f"world of {args.users:,} users, seed {seed}, {args.split} split", flush=True)
        results = measure_world(args.users, seed, args.split)
        for name, values in results.items():
            print(f"  {name:<34} " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
        worlds.append(_summary_row(results))
        print("  " + "  ".join(f"{k} {v:+.4f}" for k, v in worlds[-1].items()), flush=True)
    table = pd.DataFrame(worlds)
    print(f"\nover {len(table)} worlds of {args.users:,} users, {args.split} split (mean ± std):")
    for column in table.columns:
        spread = f" ± {table[column].std(ddof=1):.4f}" if len(table) > 1 else ""
        print(f"  {column:<34} {table[column].mean():+.4f}{spread}")
    lift = table["thin-file lift"].mean()
    target = TARGET_THIN_FILE_LIFT
    print(f"  thin-file lift / target {target:+.2f}: {lift / target:.2f}")
    print(f"  thin-file lift / full ceiling: {lift / table['ceiling, + merchants'].mean():.2f}")
    print(json.dumps({"users": args.users, "split": args.split,
                      "seeds": list(range(args.seed, args.seed + args.worlds)),
                      "worlds": worlds}))  # fmt: skip


def _summary_row(results: dict[str, dict[str, float]]) -> dict[str, float]:
    thin = {name: values["roc_auc_thin_file"] for name, values in results.items()}
    return {
        "thin-file lift": thin[DEFAULT] - thin[WITHOUT],
        "ceiling, community": thin[ORACLE_COMMUNITY] - thin[WITHOUT],
        "ceiling, + merchants": thin[ORACLE_ALL] - thin[WITHOUT],
        "second run − first (thin-file)": thin[SECOND] - thin[DEFAULT],
        "all-users lift": results[DEFAULT]["roc_auc"] - results[WITHOUT]["roc_auc"],
        "cost of exact factors": results[UNCONSTRAINED]["roc_auc"] - results[DEFAULT]["roc_auc"],
        "ECE": results[DEFAULT]["ece"],
    }


def measure_world(users: int, seed: int, kind: str = "random") -> dict[str, dict[str, float]]:
    """Held-out ROC-AUC of each variant on one world (and ECE of the default)."""
    world = labelled_world(users, seed, kind)
    settings, features, labels, truth = world.settings, world.features, world.labels, world.truth
    raw, data, split = world.raw, world.data, world.split
    test = features.loc[split.test]
    y = labels.loc[split.test].to_numpy()
    thin = test["thin_file"].to_numpy() == 1
    results: dict[str, dict[str, float]] = {}

    def fit(frame: pd.DataFrame):  # noqa: ANN202
        return train_model(frame, labels, train_index=split.train, valid_index=split.valid,
                           scale=settings.scale, seed=seed)  # fmt: skip

    def record(name: str, p: np.ndarray) -> None:
        results[name] = {
            "roc_auc": float(roc_auc_score(y, p)),
            "roc_auc_thin_file": float(roc_auc_score(y[thin], p[thin])),
        }

    model = fit(features)
    pd_test = model.predict_pd(test)
    record(DEFAULT, pd_test)
    results[DEFAULT]["ece"] = expected_calibration_error(y, pd_test)
    # A second run, as a batch rescoring would: friends' own-file scores from the first model.
    previous = friend_features(data.graph, raw.reindex(data.graph.ids), model.score(features))
    rescored = features.assign(**{c: previous[c].reindex(features.index) for c in PREVIOUS})
    record(SECOND, fit(rescored).predict_pd(rescored.loc[split.test]))
    oracle = _oracle_features(truth.set_index("user_id"), data).reindex(features.index)
    with declared(*ORACLE_SPECS):
        for name, columns in ((ORACLE_COMMUNITY, COMMUNITY),
                              (ORACLE_ALL, COMMUNITY + MERCHANTS)):  # fmt: skip
            frame = features.assign(**oracle[list(columns)])
            record(name, fit(frame).predict_pd(frame.loc[split.test]))
    no_graph = features[[c for c in features.columns
                         if c not in FEATURES or spec(c).factor != "relationships"]]  # fmt: skip
    record(WITHOUT, fit(no_graph).predict_pd(no_graph.loc[split.test]))
    record(UNCONSTRAINED, _unconstrained(features, labels, split, seed))
    return results


def _oracle_features(truth: pd.DataFrame, data: GraphData) -> pd.DataFrame:
    """What a perfect graph feature could know, from the world's hidden ``truth``: the
    latent credit of a user's true community (leave-one-out mean) and of their friends,
    the community's repayment norm, and the mean true tier of the merchants they pay,
    owned outside / inside their community.

    A ceiling for the graph lift, never a model input outside this benchmark.
    """
    graph = data.graph
    truth = truth.reindex(graph.ids)
    latent = truth["latent_credit"].to_numpy(dtype=float)
    community = truth["community"].to_numpy(dtype=np.int64)
    total, size = np.bincount(community, latent), np.bincount(community).astype(float)
    owned = data.owns.tocoo()
    if not (np.bincount(owned.col, minlength=data.owns.shape[1]) == 1).all():
        raise ValueError("the merchant oracle needs exactly one owner per merchant")
    owner_of = np.empty(data.owns.shape[1], dtype=np.int64)
    owner_of[owned.col] = owned.row
    merchant_tier = truth["owned_merchant_tier"].to_numpy(dtype=float)[owner_of]
    paid = data.pays.tocoo()
    outside = community[paid.row] != community[owner_of[paid.col]]
    columns = {
        COMMUNITY[0]: (total[community] - latent) / np.maximum(size[community] - 1, 1),
        COMMUNITY[1]: graph.neighbour_mean(latent),
        COMMUNITY[2]: truth["default_norm"].to_numpy(dtype=float),
    }
    for name, chosen in zip(MERCHANTS, (outside, ~outside), strict=True):
        pick = sp.csr_matrix((chosen.astype(float), (paid.row, paid.col)), shape=data.pays.shape)
        count = pick.sum(axis=1).A1
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[name] = np.where(count > 0, (pick @ merchant_tier) / count, np.nan)
    return graph.frame(columns)


def _unconstrained(features, labels, split, seed: int) -> np.ndarray:  # noqa: ANN001
    """The same model without interaction constraints (factors then are not exact)."""
    names = model_features(features.columns)
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
