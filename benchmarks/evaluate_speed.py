"""`creditgraph evaluate`: seconds and accuracy on real and generated graphs, against targets.

    python benchmarks/evaluate_speed.py [--skip-busy] [--cases amazon,graph12k,…]

Each case runs the CLI as a user would (a fresh process, the JSON written
aside) and prints its figure, the target and the ratio to it (≤ 1 meets a
"≤" target, ≥ 1 meets a "≥" one):

- ``amazon``: ``../shared/data/amazon_fraud``, ``--folds 5 --train-frac 0.4``
  (≤ 60 s; with-graph ROC-AUC ≥ 0.983 and never below features-only);
- ``graph12k``: a generated graph of 12,000 nodes and ~500,000 edges with 10
  given train/valid/test splits (≤ 45 s), and ``busy``: the same with two
  busy-looping processes on the machine (≤ 2× the quiet time);
- ``german``: German credit 5-fold, no edges (≤ 10 s, ROC-AUC ≥ 0.79);
- ``control``: the German similarity graph, a negative control (lift ≤ +0.005);
- ``tests``: ``tests/test_evaluate.py`` (≤ 15 s).

The generated graph stands in for a real 12k-node graph with given splits
(workers linked by shared tasks, 10 features, ~22% positives): nodes belong to
groups of different risk, link mostly within their group with a heavy-tailed
number of ties, and their features see their own risk only through noise, so
neighbours carry what the node's own row lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CLI = [sys.executable, "-m", "creditgraph.cli"]
CASES = ("amazon", "graph12k", "busy", "german", "control", "tests")


def generate_graph(out: Path, n: int = 12_000, edges: int = 500_000, splits: int = 10,
                   seed: int = 0) -> tuple[Path, Path, Path]:  # fmt: skip
    """Write ``nodes.csv``, ``edges.csv`` and ``splits.csv`` (50/25/25 train/valid/test)."""
    rng = np.random.default_rng(seed)
    groups = 150
    size = rng.zipf(1.6, groups * 4).astype(float)[:groups]
    group = rng.choice(groups, n, p=size / size.sum())
    group_risk = rng.normal(size=groups)[group]
    own_risk = rng.normal(size=n)
    activity = rng.lognormal(0.0, 0.9, n)
    logit = 0.7 * own_risk + 1.5 * group_risk + 0.4 * np.log(activity)
    label = (logit > np.quantile(logit, 0.78)).astype(int)
    features = {
        **{f"f{k}": own_risk + rng.normal(scale=s, size=n) for k, s in enumerate((1.7, 2.5, 3.0))},
        "f3": np.round(np.log(activity) + rng.normal(scale=1.0, size=n), 2),
        "f4": rng.poisson(5 * activity).astype(float),
        **{f"f{k}": rng.normal(size=n) for k in range(5, 9)},
        "f9": rng.integers(0, 2, n).astype(float),
    }
    # Ties: a heavy-tailed number of stubs per node; 80% within the node's group.
    stubs = rng.poisson(activity / activity.mean() * edges / n * 1.07)
    src = np.repeat(np.arange(n), stubs)
    order = np.argsort(group, kind="stable")
    start = np.searchsorted(group[order], group[src])
    within = order[start + rng.integers(0, np.bincount(group, minlength=groups)[group[src]])]
    dst = np.where(rng.random(len(src)) < 0.8, within, rng.integers(0, n, len(src)))
    ids = np.char.add("w", np.arange(n).astype(str))
    nodes = pd.DataFrame({"user_id": ids, **features, "label": label})
    keep = src != dst
    pairs = pd.DataFrame({"src": ids[src[keep]], "dst": ids[dst[keep]]})
    plan = {"user_id": ids}
    for k in range(splits):
        part = rng.permutation(n) % 4  # 0, 1: train; 2: valid; 3: test
        plan[f"split_{k}"] = np.array(["train", "train", "valid", "test"])[part]
    paths = out / "nodes.csv", out / "edges.csv", out / "splits.csv"
    nodes.to_csv(paths[0], index=False)
    pairs.to_csv(paths[1], index=False)
    pd.DataFrame(plan).to_csv(paths[2], index=False)
    return paths


def run_evaluate(args: list[str], json_out: Path) -> tuple[float, dict]:
    """Seconds of one ``creditgraph evaluate`` process, and its JSON.

    Prints the process's CPU seconds and the load average before it began too: on a
    shared machine wall time depends on the neighbours, CPU time much less.
    """
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*CLI, "evaluate", *args, "--json", str(json_out)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"  {json_out.stem}: {wall:.1f} s wall, {cpu:.1f} s CPU, load average {load:.1f} before")
    return wall, json.loads(json_out.read_text())


def busy_processes(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


class Table:
    def __init__(self) -> None:
        self.failed = 0
        print(f"{'figure':<52} {'measured':>10} {'target':>10} {'ratio':>7}")

    def row(self, name: str, value: float, target: float, at_most: bool, unit: str = "") -> None:
        ratio = value / target if target else float("nan")
        ok = value <= target if at_most else value >= target
        self.failed += not ok
        sign = "≤" if at_most else "≥"
        print(f"{name:<52} {value:>9.5g}{unit:1} {sign}{target:>8.5g}{unit:1} {ratio:>7.2f}"
              f"  {'ok' if ok else 'MISSED'}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--skip-busy", action="store_true", help="no busy-machine case")
    args = parser.parse_args()
    cases = set(args.cases.split(",")) - ({"busy"} if args.skip_busy else set())
    table = Table()
    with tempfile.TemporaryDirectory(prefix="creditgraph-evaluate-") as tmp:
        work = Path(tmp)
        if "amazon" in cases:
            data = SHARED / "amazon_fraud"
            seconds, result = run_evaluate([str(data / "users.csv"), str(data / "edges.csv"),
                                            "--folds", "5", "--train-frac", "0.4", "--seed", "0"],
                                           work / "amazon.json")  # fmt: skip
            graph, plain = (
                result["with_graph"]["roc_auc"]["mean"],
                result["features_only"]["roc_auc"]["mean"],
            )
            table.row("amazon: seconds", seconds, 60, True, "s")
            table.row("amazon: with-graph ROC-AUC", graph, 0.983, False)
            table.row("amazon: with-graph ÷ features-only ROC-AUC", graph / plain, 1.0, False)
        if cases & {"graph12k", "busy"}:
            nodes, edges, splits = generate_graph(work)
            call = [str(nodes), str(edges), "--splits", str(splits)]
            quiet, result = run_evaluate(call, work / "graph12k.json")
            plain, graph = (result[r]["roc_auc"]["mean"] for r in ("features_only", "with_graph"))
            print(f"  generated graph: ROC-AUC {plain:.4f} → {graph:.4f} with graph")
            table.row("12k nodes / 0.5M edges, 10 splits: seconds", quiet, 45, True, "s")
            if "busy" in cases:
                loops = busy_processes(2)
                try:
                    busy, _ = run_evaluate(call, work / "busy.json")
                finally:
                    for loop in loops:
                        loop.kill()
                        loop.wait()
                table.row("the same, two busy processes: × quiet time", busy / quiet, 2.0, True)
        if "german" in cases:
            data = SHARED / "german_credit" / "users.csv"
            seconds, result = run_evaluate([str(data), "--folds", "5"], work / "german.json")
            table.row("german credit 5-fold: seconds", seconds, 10, True, "s")
            table.row("german credit 5-fold: ROC-AUC", result["features_only"]["roc_auc"]["mean"],
                      0.79, False)  # fmt: skip
        if "control" in cases:
            data = SHARED / "german_similarity_graph"
            _, result = run_evaluate([str(data / "users.csv"), str(data / "edges.csv"),
                                      "--folds", "5"], work / "control.json")  # fmt: skip
            table.row("german similarity graph (control): lift", result["lift"]["roc_auc"],
                      0.005, True)  # fmt: skip
        if "tests" in cases:
            start = time.perf_counter()
            subprocess.run([str(ROOT / ".venv/bin/pytest"), "-q", "tests/test_evaluate.py"],
                           check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
            table.row("tests/test_evaluate.py: seconds", time.perf_counter() - start, 15, True, "s")
    sys.exit(1 if table.failed else 0)


if __name__ == "__main__":
    main()
