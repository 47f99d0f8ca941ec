"""The ``creditgraph`` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer import _click as click  # the click typer ships and types against
from typer.core import TyperGroup

from creditgraph.errors import CreditGraphError, InvalidArgument
from creditgraph.graph.schema import NODE_TYPES, REL_TYPES
from creditgraph.scoring.dictionary import FACTOR_TITLES, FACTORS
from creditgraph.settings import Settings, load_settings

if TYPE_CHECKING:  # the pipeline (sklearn, igraph, xgboost) loads only in commands using it
    from distributed import Client

    from creditgraph import catalog, pipeline
    from creditgraph.graph.store import GraphStore
    from creditgraph.scoring.scale import ScoreScale

console = Console()


class _OneLineErrors(TyperGroup):
    """The one error handler: any CreditGraphError becomes one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CreditGraphError as exc:
            raise _fail(exc) from exc


app = typer.Typer(
    cls=_OneLineErrors,
    help="Five-factor credit scores (350–950) from a social and commercial graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where the store, history and models live")
]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="embedded (default), memory, neo4j or a bolt:// URI")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="random seed")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="run on Dask: 'local' (a cluster on this machine) or tcp://host:8786 "
    "(default: CREDITGRAPH_DASK_SCHEDULER; none: in this process)")]  # fmt: skip


def _settings(
    data_dir: Path | None = None, store: str | None = None, seed: int | None = None
) -> Settings:
    return load_settings(data_dir=data_dir, store=store, seed=seed)


@contextmanager
def _steps(total: int) -> Iterator[pipeline.Step]:
    """A progress bar advanced once per pipeline step."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=total)
        seen = 0

        def step(message: str) -> None:
            nonlocal seen
            if seen:
                progress.advance(task)
            seen += 1
            progress.update(task, description=message)

        yield step
        progress.update(task, completed=total, description="done")


@contextmanager
def _open_store(settings: Settings) -> Iterator[GraphStore]:
    """The configured store, held with the data directory's writer lock until the command ends.

    Says what opening it mended after a killed command, and who it waits for.
    """
    from creditgraph import pipeline

    def note(message: str) -> None:
        console.print(f"[yellow]{escape(message)}[/]")

    with settings.paths.writing(waiting=note):
        store = pipeline.open_configured_store(settings, lambda m: note(f"recovered: {m}"))
        with store:
            yield store


@contextmanager
def _cluster(settings: Settings, address: str | None) -> Iterator[Client | None]:
    """A Dask client when ``--cluster`` (or the setting) names one; None otherwise."""
    address = address or settings.dask_scheduler
    if address is None:
        yield None
        return
    from creditgraph.cluster import connect

    with connect(address) as cluster:
        where = cluster.dashboard or "no dashboard"
        console.print(f"Dask: {cluster.workers} workers; dashboard {escape(where)}",
                      soft_wrap=True)  # fmt: skip
        yield cluster.client


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(str(exc))}")  # user text is never markup
    return typer.Exit(code=2)


@app.command()
def demo(
    data_dir: DataDir = None,
    users: Annotated[int | None, typer.Option(help="users to generate")] = None,
    seed: SeedOpt = None,
    store: StoreOpt = None,
) -> None:
    """The main job: generate a world, ingest, compute features, train, score, write back."""
    from creditgraph import pipeline

    settings = _settings(data_dir, store, seed)
    if users:
        settings = load_settings(
            data_dir=settings.data_dir, store=settings.store, seed=settings.seed, demo_users=users
        )
    _reset(settings)
    with _steps(6) as step:
        result = pipeline.run_demo(settings, step)
    _print_load(result.load)
    _print_metrics(result.train.test_metrics, result.train.model.model_id)
    _print_histogram(result.scores["score"], result.train.model.scale)
    _print_factors(result.scores)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"[dim]stages: {timing}; total {sum(result.timings.values()):.1f}s[/]")
    console.print(
        f"Scores written to the store and {settings.paths.scores}/. "
        f"Try: {_invoked()} explain {result.scores.index[0]}"
    )


def _invoked() -> str:
    """How the user ran this command (e.g. ``.venv/bin/creditgraph``), for hints they can paste."""
    import sys

    return sys.argv[0] if sys.argv and sys.argv[0].endswith("creditgraph") else "creditgraph"


def _reset(settings: Settings) -> None:
    """The demo starts from an empty data directory so it always tells the same story.

    Only a directory the demo made itself (it holds a marker file) is ever emptied.
    """
    import shutil

    directory, marker = settings.data_dir, settings.paths.demo_marker
    if directory.exists() and any(directory.iterdir()):
        if not marker.exists():
            raise InvalidArgument(
                f"{directory} holds data the demo did not make; "
                "pass --data-dir to run the demo elsewhere"
            )
        if settings.store in ("embedded", "memory"):
            shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `creditgraph demo`; safe to delete\n")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="directory to write")],
    users: Annotated[int, typer.Option(help="number of users")] = 20_000,
    seed: SeedOpt = None,
) -> None:
    """Write a synthetic world (CSV files) with planted risk, communities and fraud rings."""
    from creditgraph import pipeline

    counts = pipeline.generate(_settings(seed=seed), out, users)
    table = Table("file", "rows", title=f"synthetic world in {out}")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="directory of input files")],
    data_dir: DataDir = None,
    store: StoreOpt = None,
) -> None:
    """Validate and load a directory of files; rejected rows go to rejects/<file>.csv."""
    from creditgraph import pipeline

    settings = _settings(data_dir, store)
    # One step to validate, one per node label and relationship type, one for history.
    steps = 2 + len(NODE_TYPES) + len(REL_TYPES)
    with _open_store(settings) as graph_store, _steps(steps) as step:
        report = pipeline.ingest(settings, graph_store, source, step)
    _print_load(report)
    if not report.ok:
        console.print(
            f"[bold red]{report.rows_rejected} rows rejected[/]; "
            f"see {settings.paths.rejects}/ (row, field, value, reason)"
        )
        raise typer.Exit(code=1)


@app.command()
def features(
    data_dir: DataDir = None, store: StoreOpt = None,
    in_database: Annotated[bool, typer.Option(
        "--in-database", help="Neo4j + GDS: run graph algorithms in the database")] = False,
    cluster: ClusterOpt = None,
) -> None:  # fmt: skip
    """Compute tabular and graph features for every user."""
    from creditgraph import pipeline

    settings = _settings(data_dir, store)
    with (
        _cluster(settings, cluster) as client,
        _open_store(settings) as graph_store,
        console.status("features"),
    ):
        frame = pipeline.build_features(settings, graph_store, in_database=in_database,
                                        client=client)  # fmt: skip
    console.print(f"{len(frame):,} users × {frame.shape[1]} features → {settings.paths.features}")


@app.command()
def train(
    data_dir: DataDir = None, store: StoreOpt = None, seed: SeedOpt = None,
    split: Annotated[str | None, typer.Option(help="random or time (out-of-time)")] = None,
    calibration: Annotated[str | None, typer.Option(help="platt or isotonic")] = None,
    cluster: ClusterOpt = None,
) -> None:  # fmt: skip
    """Train, calibrate and save a model; print held-out metrics."""
    from creditgraph import pipeline

    settings = load_settings(data_dir=data_dir, store=store, seed=seed, split=split,
                             calibration=calibration)  # fmt: skip
    with (
        _cluster(settings, cluster) as client,
        _open_store(settings) as graph_store,
        console.status("training"),
    ):
        result = pipeline.train(settings, graph_store, client=client)
    _print_metrics(result.test_metrics, result.model.model_id)
    console.print(f"model saved in {result.model_dir}")


@app.command()
def score(
    data_dir: DataDir = None,
    store: StoreOpt = None,
    model: Annotated[str | None, typer.Option(help="model id (default: latest)")] = None,
    cluster: ClusterOpt = None,
) -> None:
    """Score every user with a saved model and write the scores back."""
    from creditgraph import pipeline

    settings = _settings(data_dir, store)
    with (
        _cluster(settings, cluster) as client,
        _open_store(settings) as graph_store,
        console.status("scoring"),
    ):
        result = pipeline.score(settings, graph_store, model_id=model, client=client)
    scores, shift = result.scores, result.shift
    _print_histogram(scores["score"], result.model.scale)
    _print_factors(scores)
    console.print(f"{len(scores):,} scores written to the store and {result.directory}")
    if shift is not None:
        console.print(
            f"against the previous version: PSI {shift['psi']:.3f}, mean change "
            f"{shift['mean_change']:+.1f} points, {shift['share_moved_50_plus']:.1%} moved ≥ 50"
        )
    _print_retention(result.retention)
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if result.warnings:
        raise typer.Exit(code=1)


@app.command()
def rescore(
    data_dir: DataDir = None,
    store: StoreOpt = None,
    model: Annotated[str | None, typer.Option(help="model id (default: latest)")] = None,
    chunk_size: Annotated[int, typer.Option(help="users scored per chunk")] = 100_000,
    max_psi: Annotated[float, typer.Option(help="warn (exit 1) above this PSI")] = 0.25,
    cluster: ClusterOpt = None,
) -> None:
    """The nightly job: features, scores, factors, reasons, write-back and publish, resumable.

    Exit code 0: published; 1: published with warnings (drift above --max-psi);
    2: failed (the previous run stays current; run it again to resume).
    """
    from rich.progress import TimeRemainingColumn

    from creditgraph import pipeline

    settings = _settings(data_dir, store)
    columns = (TextColumn("{task.description:<9}"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
    with (
        _cluster(settings, cluster) as client,
        _open_store(settings) as graph_store,
        Progress(*columns, console=console) as bars,
    ):
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        result = pipeline.rescore(settings, graph_store, model_id=model, chunk_size=chunk_size,
                                  max_psi=max_psi, progress=progress, client=client)  # fmt: skip
    m = result.manifest
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in m["stage_seconds"].items())
    console.print(f"run {result.run_id}: {m['users']:,} users, model {m['model_id']}, "
                  f"load {m['load_id']}", soft_wrap=True)  # fmt: skip
    console.print(f"[dim]stages: {stages}; peak memory {m['peak_memory_mib']:,.0f} MiB; "
                  f"{m['chunks_resumed']} of {m['chunks']} chunks resumed[/]")  # fmt: skip
    shift = m.get("shift")
    if shift:
        console.print(f"against the previous run: PSI {shift['psi']:.3f}, mean change "
                      f"{shift['mean_change']:+.1f} points, "
                      f"{shift['users_band_changed']:,.0f} users changed band")  # fmt: skip
    _print_retention(result.retention)
    console.print(f"manifest: {result.directory / 'manifest.json'}", soft_wrap=True)
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if result.warnings:
        raise typer.Exit(code=1)


def _print_retention(report: catalog.PruneReport | None) -> None:
    """One line per run whose data retention removed, and the space freed (for the log)."""
    if report is None:
        return
    for run_id, freed in report.removed.items():
        console.print(f"pruned run {run_id}: {_mib(freed)} freed", soft_wrap=True)
    console.print(f"retention (keep {report.keep}): {_runs(len(report.removed))} pruned, "
                  f"{_mib(report.freed_bytes)} freed; {_runs(len(report.kept))} published keep "
                  "their scores and inputs; every manifest kept", soft_wrap=True)  # fmt: skip


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


runs_app = typer.Typer(help="Published scoring runs: list them, prune old ones (retention).",
                       no_args_is_help=True)  # fmt: skip
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(data_dir: DataDir = None) -> None:
    """Every scoring run, newest first: published time, model, users, PSI, size, status."""
    from creditgraph import catalog

    runs = catalog.list_runs(_settings(data_dir).paths.scores)
    table = Table("run", "published", "model", "users", "PSI", "size", "status",
                  title=f"{len(runs)} scoring runs")  # fmt: skip
    for run in runs:
        status = f"pruned {run.pruned_at}" if run.pruned_at else run.status
        table.add_row(run.run_id, run.published_at or "?", run.model_id or "?",
                      "?" if run.users is None else f"{run.users:,}",
                      "" if run.psi is None else f"{run.psi:.3f}", _mib(run.size_bytes),
                      status)  # fmt: skip
    console.print(table, soft_wrap=True)
    total = sum(run.size_bytes for run in runs)
    console.print(f"{_mib(total)} on disk", soft_wrap=True)


@runs_app.command("prune")
def runs_prune(
    keep: Annotated[int | None, typer.Option(
        help="published runs that keep their scores and inputs (at least 2; default: the "
        "keep_runs setting)")] = None,
    data_dir: DataDir = None, store: StoreOpt = None,
) -> None:  # fmt: skip
    """Remove the scores and inputs of published runs older than the newest --keep.

    Manifests stay (marked pruned); the current run and the one before it, a run being
    published or resumed, and runs never published are never touched.
    """
    from creditgraph import catalog

    settings = _settings(data_dir, store)
    keep = keep if keep is not None else settings.keep_runs
    if keep is None:
        raise InvalidArgument("give --keep N (runs to keep whole), or set keep_runs")
    with _open_store(settings) as graph_store:
        report = catalog.prune_runs(settings.paths, keep, store=graph_store)
    _print_retention(report)


@app.command()
def report(data_dir: DataDir = None,
           model: Annotated[str | None, typer.Option(help="model id (default: latest)")] = None,
           open_browser: Annotated[bool, typer.Option("--open", help="open in a browser")] = False,
           ) -> None:  # fmt: skip
    """Write the HTML model report (plots, calibration by band, PD per band)."""
    from creditgraph import pipeline

    settings = _settings(data_dir)
    with console.status("writing report"):
        credit_model = pipeline.load_model(settings, model)
        result = pipeline.report(settings, credit_model)
    _print_metrics(result.headline, credit_model.model_id)
    table = Table("band", "users", "observed", "expected", title="default rate per band")
    for band, row in result.bands.iterrows():
        table.add_row(
            str(band), f"{row['users']:,.0f}", f"{row['observed']:.2%}", f"{row['expected']:.2%}"
        )
    console.print(table)
    console.print(f"report: {result.path}")
    if open_browser:
        import webbrowser

        webbrowser.open(result.path.resolve().as_uri())


@app.command()
def explain(
    user_id: str,
    data_dir: DataDir = None,
    model: Annotated[str | None, typer.Option(help="model id (default: latest)")] = None,
) -> None:
    """A user's score, PD, five factors (exact) and reasons."""
    from creditgraph import pipeline

    settings = _settings(data_dir)
    result = pipeline.explain(
        settings, user_id, pipeline.load_model(settings, model) if model else None
    )
    console.print(
        f"[bold]{result.user_id}[/]: score [bold]{result.score:.0f}[/], "
        f"PD {result.pd:.2%} (model {result.model_id})"
    )
    table = Table("factor", "points", title=f"breakdown (base {result.base_points:.0f} points)")
    for name, points in result.factors.items():
        table.add_row(FACTOR_TITLES[name], f"{points:+.1f}")
    console.print(table)
    top = Table("feature", "factor", "value", "points", title="largest feature contributions")
    for row in result.top_features.head(8).itertuples():
        top.add_row(row.feature, row.factor, _fmt(row.value), f"{row.points:+.1f}")
    console.print(top)
    console.print("reasons: " + ("; ".join(result.reasons) or "none"))


@app.command()
def evaluate(
    nodes: Annotated[Path, typer.Argument(help="node table (CSV): id, label, features")],
    edges: Annotated[Path | None, typer.Argument(help="edge list (CSV) with src,dst")] = None,
    id_col: Annotated[str, typer.Option("--id", help="id column")] = "user_id",
    label_col: Annotated[str, typer.Option("--label", help="0/1 label column (1 = bad)")] = "label",
    splits: Annotated[
        Path | None, typer.Option(help="CSV: id + split_0..k of train/valid/test")
    ] = None,
    folds: Annotated[int, typer.Option(help="number of splits")] = 5,
    train_frac: Annotated[
        float | None,
        typer.Option(help="training share of each random split (default: K-fold cross-validation)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    threads: Annotated[
        int, typer.Option(help="fits run side by side, one thread each (0: cores + 1)")
    ] = 0,
    max_rounds: Annotated[int, typer.Option(help="most boosting rounds per fit")] = 2000,
) -> None:
    """Train and test with and without graph features on any node table and edge list."""
    import json
    import time

    from creditgraph.scoring import evaluate as byog
    from creditgraph.scoring.splits import random_splits

    features, labels = byog.read_nodes(nodes, id_col, label_col)
    arrays = byog.read_edges(edges, features.index) if edges else None
    plan = (
        byog.read_splits(splits, id_col, features.index)
        if splits
        else random_splits(labels, folds, train_frac, seed)
    )
    if threads < 0 or max_rounds < 1:
        raise InvalidArgument(
            f"--threads must be at least 0 and --max-rounds at least 1, not {threads}, {max_rounds}"
        )
    start = time.perf_counter()

    def progress(line: str) -> None:  # plain lines: they show in a log as on a terminal
        console.print(f"[dim]{time.perf_counter() - start:6.1f}s[/] {escape(line)}",
                      highlight=False, soft_wrap=True)  # fmt: skip

    result = byog.evaluate(
        features, labels, arrays, plan, seed, threads=threads or None, progress=progress,
        budget=byog.SearchBudget(max_rounds=max_rounds),
    ).as_dict()  # fmt: skip
    table = Table("run", "ROC-AUC", "PR-AUC", title=f"{nodes.name}: {result['splits']} splits")
    for run in ("features_only", "with_graph"):
        if run in result:
            r = result[run]
            table.add_row(
                run,
                f"{r['roc_auc']['mean']:.4f} ± {r['roc_auc']['std']:.4f}",
                f"{r['pr_auc']['mean']:.4f} ± {r['pr_auc']['std']:.4f}",
            )
    if "lift" in result:
        table.add_row(
            "lift", f"{result['lift']['roc_auc']:+.4f}", f"{result['lift']['pr_auc']:+.4f}"
        )
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


export_app = typer.Typer(help="Export the graph for other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("neo4j-import")
def export_neo4j_import(
    out: Annotated[Path, typer.Argument(help="directory for the CSVs and import.sh")],
    data_dir: DataDir = None,
) -> None:
    """Write the ingested graph as neo4j-admin bulk-import CSVs and the exact import command."""
    from creditgraph import pipeline

    script = pipeline.export_neo4j_import(_settings(data_dir), out)
    console.print(f"wrote {out}/; run with the server stopped: sh {script}")


query_app = typer.Typer(help="The Cypher investigation library (read-only).", no_args_is_help=True)
app.add_typer(query_app, name="query")
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="name=value (or name:type=value)")
]
FormatOpt = Annotated[
    Literal["table", "csv", "json"], typer.Option("--format", help="output format")
]
LimitOpt = Annotated[int, typer.Option(help="most rows to return")]
TimeoutOpt = Annotated[float, typer.Option(help="seconds before the query is stopped")]


@app.command()
def cypher(statement: str, data_dir: DataDir = None, store: StoreOpt = None,
           param: ParamOpt = None, fmt: FormatOpt = "table", limit: LimitOpt = 1000,
           timeout: TimeoutOpt = 60.0) -> None:  # fmt: skip
    """Run one ad-hoc read-only Cypher statement (writes are refused before they run)."""
    from creditgraph import queries
    from creditgraph.queries.runner import open_for_reading

    settings = _settings(data_dir, store)
    # Opened read-only: the embedded engine refuses writes too, behind the text check.
    with open_for_reading(settings.store, settings.paths.graph_versions()) as graph_store:
        frame = queries.run_cypher(graph_store, statement, queries.parse_params(param or []),
                                   limit=limit, timeout_s=timeout)  # fmt: skip
    _emit(frame, fmt)


@query_app.command("list")
def query_list() -> None:
    """Every investigation, with its parameters and a one-line description."""
    from creditgraph import queries

    _print_frame(queries.catalogue())


@query_app.command("show")
def query_show(name: str) -> None:
    """The text of an investigation (and its embedded-dialect variant)."""
    from creditgraph import queries

    console.print(queries.show(name), markup=False, highlight=False)


@query_app.command("run")
def query_run(name: str, data_dir: DataDir = None, store: StoreOpt = None,
              param: ParamOpt = None, fmt: FormatOpt = "table",
              limit: Annotated[int | None, typer.Option(
                  help="most rows; where the query declares `limit`, the same as --param "
                       "limit=N (default: its declared default), else 1000")] = None,
              timeout: TimeoutOpt = 60.0) -> None:  # fmt: skip
    """Run an investigation with typed parameters; the store is only read."""
    from creditgraph import queries
    from creditgraph.queries.runner import open_for_reading

    settings = _settings(data_dir, store)
    params = queries.parse_params(param or [], name)
    if limit is None and "limit" not in queries.describe(name).param_names:
        limit = 1000
    with open_for_reading(settings.store, settings.paths.graph_versions()) as graph_store:
        frame = queries.run(graph_store, name, params, limit=limit, timeout_s=timeout)
    _emit(frame, fmt)


def _emit(frame: pd.DataFrame, fmt: str) -> None:
    from creditgraph import queries

    if fmt == "table":
        _print_frame(frame)
    else:
        typer.echo(queries.format_result(frame, fmt))


# -- partner access ---------------------------------------------------------------
partner_app = typer.Typer(help="Partners who may look scores up (with a subject's grant).",
                          no_args_is_help=True)  # fmt: skip
subject_app = typer.Typer(help="Subjects: tokens to manage their own grants.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log of every lookup and grant.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(partner_app, name="partner")
app.add_typer(subject_app, name="subject")
app.add_typer(audit_app, name="audit")


def _access_db(data_dir: Path | None) -> Path:
    return _settings(data_dir).paths.access_db


@app.command()
def serve(data_dir: DataDir = None, store: StoreOpt = None,
          host: Annotated[str, typer.Option(help="address to bind (loopback)")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port")] = 8000) -> None:  # fmt: skip
    """Serve authorized score lookups over HTTP (OpenAPI docs at /docs)."""
    from creditgraph.access import ParquetScoreSource, ScoreSource
    from creditgraph.access.policy import load_policies
    from creditgraph.access.service import serve as run_server

    settings = _settings(data_dir, store)
    # The run scores/CURRENT names, on every store: a run is published whole there (on
    # Neo4j the graph takes it in batches). Loaded in the background: /healthz answers at once.
    source: ScoreSource = ParquetScoreSource(settings.paths.scores, lazy=True)
    scale = _served_scale(settings)
    policies = load_policies(settings.policies, scale=scale)  # a bad file stops here
    console.print(f"serving on http://{host}:{port} (docs at /docs)")
    console.print(f"partner policies: {policies.source}", soft_wrap=True)
    # Each answer is on its run's scale; the configured one only for a run that records none.
    run_server(_access_db(data_dir), source, host=host, port=port, policies=policies,
               scale=settings.scale)  # fmt: skip


def _served_scale(settings: Settings) -> ScoreScale:
    """The scale `serve` reads bands and cut-offs on: the published run's, else the
    configured one. Says which, and why when it is not the run's."""
    from creditgraph.access.scores import current_scale
    from creditgraph.catalog import current_scores_path

    scale, configured = current_scale(settings.paths.scores), settings.scale
    if scale is not None:
        other = "" if scale == configured else f", not on the configured {_described(configured)}"
        console.print(f"cut-offs read on the published run's scale {_described(scale)}{other}",
                      soft_wrap=True)  # fmt: skip
        return scale
    if current_scores_path(settings.paths.scores) is None:
        console.print(f"cut-offs read on the configured scale {_described(configured)} "
                      "(published run: none yet)", soft_wrap=True)  # fmt: skip
    else:
        console.print(f"[yellow]warning:[/] cut-offs read on the configured scale "
                      f"{_described(configured)} (published run: records no scale and its "
                      "model is not found; serve with the settings it was scored on)",
                      soft_wrap=True)  # fmt: skip
    return configured


def _described(scale: ScoreScale) -> str:
    anchors = (f"{scale.base_score:.0f} at good:bad {scale.base_odds:g}:1, "
               f"{scale.points_to_double_odds:g} points to double")  # fmt: skip
    return f"{scale.min_score:.0f}–{scale.max_score:.0f} ({anchors})"


@partner_app.command("add")
def partner_add(name: str, data_dir: DataDir = None) -> None:
    """Register a partner; prints its id and API key (shown once, stored hashed)."""
    from creditgraph.access import add_partner

    partner_id, key = add_partner(_access_db(data_dir), name)
    console.print(f"partner id: {partner_id}\nAPI key (shown once): {key}", soft_wrap=True)


@partner_app.command("revoke")
def partner_revoke(partner_id: str, data_dir: DataDir = None) -> None:
    """Revoke a partner's API key."""
    from creditgraph.access import revoke_partner

    revoke_partner(_access_db(data_dir), partner_id)
    console.print(f"revoked {partner_id}")


@partner_app.command("rotate-key")
def partner_rotate_key(partner_id: str, data_dir: DataDir = None) -> None:
    """Give a partner a new API key (shown once); the old one stops working at its next request."""
    from creditgraph.access import rotate_partner_key

    key = rotate_partner_key(_access_db(data_dir), partner_id)
    console.print(f"new API key (shown once): {key}", soft_wrap=True)


@partner_app.command("list")
def partner_list(data_dir: DataDir = None) -> None:
    """Registered partners."""
    from creditgraph.access import list_partners

    _print_frame(pd.DataFrame([p.__dict__ for p in list_partners(_access_db(data_dir))]))


@partner_app.command("policies")
def partner_policies(data_dir: DataDir = None) -> None:
    """What partners may ask per purpose: widest scope, longest grant, yes/no decision.

    Cut-offs are checked on the scale `serve` reads them on: the published run's, else the
    configured one (it says which)."""
    from creditgraph.access.policy import load_policies

    settings = _settings(data_dir)
    policies = load_policies(settings.policies, scale=_served_scale(settings))
    console.print(f"policies: {policies.source}", soft_wrap=True)
    rows = [{"purpose": row["purpose"] or "(unlisted)", "scope": row["scope"],
             "days": row["max_days"], "cut-off": row["threshold"],
             "decision": "/".join(row["decision"].values()) if row["decision"] else None,
             "reasons": "yes" if row["discloses_reasons"] else "no"}
            for row in policies.rows()]  # fmt: skip
    _print_frame(pd.DataFrame(rows))


@subject_app.command("token")
def subject_token(subject_id: str, data_dir: DataDir = None) -> None:
    """Issue a token a subject uses to grant, list and revoke access (shown once)."""
    from creditgraph.access import issue_subject_token

    token = issue_subject_token(_access_db(data_dir), subject_id)
    console.print(f"token (shown once): {token}", soft_wrap=True)


@subject_app.command("revoke-token")
def subject_revoke_token(
    token: Annotated[str | None, typer.Argument(
        help="the token (cgs_…) or its id, the part after cgs_", show_default=False)] = None,
    all_of: Annotated[str | None, typer.Option(
        "--all", metavar="SUBJECT_ID", help="revoke every live token of this subject instead")
    ] = None,
    data_dir: DataDir = None,
) -> None:  # fmt: skip
    """Revoke a subject's token (or all of them); it stops working at its next request."""
    from creditgraph.access import revoke_subject_token, revoke_subject_tokens

    if (token is None) == (all_of is None):
        raise InvalidArgument("give a token (or its id), or --all SUBJECT_ID")
    if all_of is not None:
        count = revoke_subject_tokens(_access_db(data_dir), all_of)
        console.print(f"revoked {count} live token{'s' * (count != 1)}")
    else:
        revoke_subject_token(_access_db(data_dir), token or "")
        console.print("token revoked")


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    expect_head: Annotated[str | None, typer.Option(
        "--expect-head", metavar="HASH",
        help="a head hash recorded earlier: fail unless that entry is still in the log")] = None,
) -> None:  # fmt: skip
    """Check the audit chain: any edit, deletion, reordering or cut (with an anchor) is reported.

    Record the printed head hash somewhere else now and then, and pass it back with
    --expect-head: a log cut after it, rewritten or wiped then fails.
    """
    from creditgraph.access import verify_audit

    report = verify_audit(_access_db(data_dir), expect_head=expect_head)
    if report.ok:
        console.print(f"audit log intact: {report.entries} entries", soft_wrap=True)
        if report.head_hash:
            console.print(f"head: entry {report.head_seq} {report.head_hash}", soft_wrap=True)
        if report.anchor_seq is not None:
            console.print(f"anchored head found at entry {report.anchor_seq}")
        return
    for problem in report.problems:
        console.print(f"[red]{problem}[/]", soft_wrap=True)
    raise typer.Exit(code=1)


@app.command("rotate-key")
def rotate_key(data_dir: DataDir = None) -> None:
    """Re-encrypt personal data from CREDITGRAPH_KEY to CREDITGRAPH_NEW_KEY (no data loss)."""
    from creditgraph.ingest.pii import load_key
    from creditgraph.ingest.pii import rotate_key as rotate

    settings = _settings(data_dir)
    result = rotate(settings.data_dir, load_key(), load_key("CREDITGRAPH_NEW_KEY"))
    console.print(str(result))
    console.print("now set CREDITGRAPH_KEY to the new key")


# -- printing -------------------------------------------------------------------
def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "—" if np.isnan(value) else f"{value:,.3g}"
    return str(value)


def _print_frame(frame: pd.DataFrame) -> None:
    table = Table(*[escape(str(c)) for c in frame.columns])
    for row in frame.itertuples(index=False):
        table.add_row(*[escape(_fmt(v)) for v in row])
    console.print(table)


def _print_load(report: pipeline.LoadReport) -> None:
    table = Table("file", "read", "loaded", "rejected", title="load report")
    for f in report.files:
        table.add_row(
            f.file,
            f"{f.rows_read:,}",
            f"{f.rows_loaded:,}",
            f"[red]{f.rows_rejected:,}[/]" if f.rows_rejected else "0",
        )
    console.print(table)
    if report.finished_load:
        console.print(f"completed the interrupted load {report.finished_load} first")
    removed = {rel: n for rel, n in report.edges_removed.items() if n}
    if removed:
        console.print("removed relationships corrected rows no longer make: "
                      + ", ".join(f"{rel} {n:,}" for rel, n in removed.items()))  # fmt: skip
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"[dim]load {report.load_id}[/]")


def _print_metrics(metrics: dict[str, float], model_id: str) -> None:
    table = Table("metric", "held-out test", title=f"model {model_id}")
    for key in (
        "roc_auc",
        "roc_auc_thin_file",
        "gini",
        "ks",
        "pr_auc",
        "brier",
        "ece",
        "default_rate",
        "mean_pd",
        "n",
    ):
        if key in metrics:
            value = metrics[key]
            table.add_row(key, f"{value:,}" if key == "n" else f"{value:.4f}")
    console.print(table)


def _print_histogram(scores: pd.Series, scale: ScoreScale, width: int = 40) -> None:
    """Users per 50-point band of the model's scale (its top score falls in the band below)."""
    edges = np.arange(50 * np.floor(scale.min_score / 50), scale.max_score + 50, 50)
    bands = pd.cut(scores.clip(upper=scale.max_score - 0.1), bins=edges, right=False)
    counts = bands.value_counts(sort=False)
    top = max(int(counts.max()), 1)
    table = Table("band", "users", "", title="score distribution", show_edge=False)
    for interval, count in counts.items():
        table.add_row(
            f"{int(interval.left)}–{int(interval.right) - 1}",
            f"{count:,}",
            "█" * round(width * count / top),
        )
    console.print(table)


def _print_factors(scores: pd.DataFrame) -> None:
    table = Table("factor", "mean points", "mean |points|", title="factor contributions")
    for name in FACTORS:
        column = scores[f"f_{name}"]
        table.add_row(FACTOR_TITLES[name], f"{column.mean():+.1f}", f"{column.abs().mean():.1f}")
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
