"""What public records add: held-out ROC-AUC with and without their features, same split.

    python benchmarks/public_records.py [--users 100000] [--worlds 3] [--seed 42]
                                        [--split random|time]

Builds ``--worlds`` synthetic worlds (seeds ``seed``, ``seed + 1``, ...), takes each
through the pipeline (embedded store, every feature family, the label-aware family
out of fold) and trains the default model twice on the same split: with every
feature, and without the public-record columns
(:data:`scoring.features.public_records.PUBLIC_RECORD_COLUMNS`). Prints the test
ROC-AUC of both for all users, thin-file users and users with a public record on
file, the lifts, and their mean ± std over the worlds. There is no target: the
figure is reported as measured (README, "Public records").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import labelled_world, world_arguments  # noqa: E402

from creditgraph.scoring.features.public_records import PUBLIC_RECORD_COLUMNS
from creditgraph.scoring.model import train_model

GROUPS = ("all", "thin_file", "with_record")


def measure_world(users: int, seed: int, split: str = "random") -> dict[str, float]:
    """Test ROC-AUC per group with and without public-record features, and the group sizes."""
    world = labelled_world(users, seed, split)
    settings, features, labels, chosen = world.settings, world.features, world.labels, world.split
    test = features.loc[chosen.test]
    y = labels.loc[chosen.test].to_numpy()
    masks = {
        "all": np.ones(len(test), dtype=bool),
        "thin_file": test["thin_file"].to_numpy() == 1,
        "with_record": test["months_since_public_record"].notna().to_numpy(),
    }
    without = features.drop(columns=list(PUBLIC_RECORD_COLUMNS))
    out: dict[str, float] = {f"n_{g}": float(m.sum()) for g, m in masks.items()}
    out["defaults_with_record"] = float(y[masks["with_record"]].sum())
    for name, frame in (("with", features), ("without", without)):
        model = train_model(frame, labels, train_index=chosen.train, valid_index=chosen.valid,
                            scale=settings.scale, seed=seed)  # fmt: skip
        p = model.predict_pd(frame.loc[chosen.test])
        for group, mask in masks.items():
            out[f"{name}_{group}"] = float(roc_auc_score(y[mask], p[mask]))
    for group in GROUPS:
        out[f"lift_{group}"] = out[f"with_{group}"] - out[f"without_{group}"]
    return out


def main() -> None:
    args = world_arguments(__doc__.splitlines()[0])
    rows = []
    for seed in range(args.seed, args.seed + args.worlds):
        print(f"world of {args.users:,} users, seed {seed}, {args.split} split", flush=True)
        row = measure_world(args.users, seed, args.split)
        for group in GROUPS:
            print(f"  {group:<12} n {row[f'n_{group}']:>7,.0f}  ROC-AUC with "
                  f"{row[f'with_{group}']:.4f}  without {row[f'without_{group}']:.4f}  "
                  f"lift {row[f'lift_{group}']:+.4f}", flush=True)  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows)
    print(f"\nover {len(table)} worlds of {args.users:,} users (mean ± std):")
    for group in GROUPS:
        lift = table[f"lift_{group}"]
        spread = f" ± {lift.std(ddof=1):.4f}" if len(table) > 1 else ""
        print(f"  lift {group:<12} {lift.mean():+.4f}{spread}")
    print(json.dumps({"users": args.users, "split": args.split,
                      "seeds": list(range(args.seed, args.seed + args.worlds)),
                      "worlds": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
