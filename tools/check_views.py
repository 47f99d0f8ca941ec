"""Render the notebooks' views in headless Chromium and write the README's pictures.

    python tools/check_views.py [--data-dir DIR] [--out docs/notebooks] [--chromium chromium]

Without ``--data-dir`` it builds :func:`creditgraph.explore.example_world` (2,000
users scored twice, ~30 s) in a temporary directory. It then

1. exports the friend-cluster view of the top candidate ring to one HTML page,
   loads it in headless Chromium (Debian's ``chromium``) and fails unless the
   page mounted the graph (a ``<canvas>`` in the view's container), embeds
   exactly the cluster's nodes and relationships, and the screenshot shows the
   users' band colours;
2. writes ``<out>/friend_clusters_interactive.png`` (that screenshot) and one
   static picture per notebook, drawn by the same helpers the notebooks call.

Exit status 1 with the reason when the view did not render. ``make check-views``
runs it; ``make test`` does not (Chromium is not needed to run the tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from creditgraph import explore, queries  # noqa: E402
from creditgraph.graph import views  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def chromium(binary: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local page; the view needs no network (scripts are inlined)."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1200,700", "--virtual-time-budget=15000", *args,
               page.resolve().as_uri()]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def band_pixels(screenshot: Path) -> int:
    """Pixels in the screenshot within a small distance of any score band's colour."""
    image = mpimg.imread(screenshot)[..., :3]
    found = np.zeros(image.shape[:2], dtype=bool)
    for _, _, colour in explore.BANDS:
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        found |= np.abs(image - rgb).max(axis=2) < 0.04
    return int(found.sum())


def check_interactive(ws: explore.Workspace, binary: str, out: Path, work: Path) -> list[str]:
    """Export, load and screenshot the friend-cluster view; returns the failures."""
    rings = queries.run(ws.store, "fraud_rings", recent_days=400, min_size=3, limit=1)
    centre = rings.iloc[0]["members"][0] if len(rings) else ws.store.node_ids("User")[0]
    graph = views.subgraph(ws.store, list(views.friend_cluster(ws.store, centre)))
    page = explore.save_html(explore.interactive(graph, centre=centre), work / "cluster.html")
    screenshot = out / "friend_clusters_interactive.png"
    shot = chromium(binary, page, f"--screenshot={screenshot}")
    dom = chromium(binary, page, "--dump-dom")
    failures = []
    if dom.returncode != 0 or not screenshot.exists():
        return [f"chromium failed: {dom.stderr.strip()[-500:] or shot.stderr.strip()[-500:]}"]
    data = explore.view_data(dom.stdout)
    if len(data["nodes"]) != graph.number_of_nodes():
        failures.append(f"page embeds {len(data['nodes'])} nodes, the cluster has "
                        f"{graph.number_of_nodes()}")  # fmt: skip
    if len(data["relationships"]) != graph.number_of_edges():
        failures.append(f"page embeds {len(data['relationships'])} relationships, the cluster "
                        f"has {graph.number_of_edges()}")  # fmt: skip
    body = dom.stdout[dom.stdout.index("<body") :]
    if "<canvas" not in body:
        failures.append("the graph did not mount: no <canvas> in the page after loading")
    coloured = band_pixels(screenshot)
    if coloured < 20 * sum(1 for _, k in graph.nodes(data="kind") if k == views.USER):
        failures.append(f"the screenshot shows {coloured} band-coloured pixels: nodes not drawn")
    print(f"{page.name}: {len(data['nodes'])} nodes, {len(data['relationships'])} relationships, "
          f"{coloured} band-coloured pixels; screenshot {screenshot}")  # fmt: skip
    return failures


def static_pictures(ws: explore.Workspace, out: Path) -> None:
    """One picture per notebook, as the notebook draws it."""
    rings = queries.run(ws.store, "fraud_rings", recent_days=400, min_size=3, limit=1)
    centre = rings.iloc[0]["members"][0]
    cluster = views.subgraph(ws.store, list(views.friend_cluster(ws.store, centre)))
    explore.save_png(cluster, out / "friend_clusters.png", centre=centre)
    members = explore.rank_rings(ws, recent_days=400).iloc[0]["members"]
    explore.save_png(views.subgraph(ws.store, members), out / "fraud_rings.png", centre=members[0])
    table = explore.community_table(ws.settings, min_size=10)
    community = explore.community_members(ws.settings, int(table.index[0]))
    graph = views.subgraph(ws.store, community)
    explore.save_png(graph, out / "community_risk.png", centre=community[0])
    before, after = explore.runs(ws.settings)
    drops = queries.run(ws.store, "score_drops", limit=1)
    if before is None or drops.empty:
        print("one scoring run only: no score_drops picture")
        return
    user = drops.iloc[0]["user_id"]
    change = explore.neighbourhood_change(ws, before, after, user)
    position = explore.layout(change.after)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    explore.plot_graph(change.before, centre=user, ax=left, position=position,
                       title=f"{user}, previous run")  # fmt: skip
    explore.plot_graph(change.after, centre=user, ax=right, position=position,
                       title=f"{user}, this run")  # fmt: skip
    fig.savefig(out / "score_drops.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, help="a scored data directory (default: build one)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebooks")
    parser.add_argument("--chromium", default="chromium")
    args = parser.parse_args(argv)
    binary = shutil.which(args.chromium)
    if binary is None:
        print(f"{args.chromium} not found: apt-get install chromium (Debian's package)")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="creditgraph-views-") as tmp:
        work = Path(tmp)
        if args.data_dir is None:
            print("building a 2,000-user example world scored twice …")
            data_dir = explore.example_world(work / "world").settings.data_dir
        else:
            data_dir = args.data_dir
        os.environ["CREDITGRAPH_DATA_DIR"] = str(data_dir)
        with explore.open_workspace() as ws:
            failures = check_interactive(ws, binary, args.out, work)
            static_pictures(ws, args.out)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
