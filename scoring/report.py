"""The model report: headline metrics, calibration by band, and plots, as one HTML page.

``write_report`` renders PNGs with matplotlib (Agg backend, no screen needed)
and an ``index.html`` that opens in any browser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from creditgraph.scoring import metrics  # noqa: E402
from creditgraph.scoring.dictionary import FACTOR_TITLES, FACTORS  # noqa: E402
from creditgraph.scoring.model import CreditModel  # noqa: E402
from creditgraph.scoring.scale import ScoreScale, pd_per_band  # noqa: E402


@dataclass(frozen=True)
class Report:
    path: Path
    headline: dict[str, float]
    bands: pd.DataFrame
    stability: pd.DataFrame  # PSI of the score and the most shifted features
    adverse_impact: pd.DataFrame  # approval rate and ratio per group at the cut-off


def write_report(
    model: CreditModel,
    scored: pd.DataFrame,
    labels: pd.Series,
    out_dir: Path,
    *,
    title: str = "held-out test split",
    reference: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    groups: pd.Series | None = None,
    cutoff: float = 600.0,
) -> Report:
    """Write ``out_dir/index.html`` and its PNGs for scored rows with known ``labels``.

    ``reference`` is (scores, inputs) of another population (the training rows)
    for stability (PSI); ``groups`` labels each scored row for the adverse-impact
    ratio of approving scores ≥ ``cutoff``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    y = labels.reindex(scored.index).to_numpy(dtype=int)
    p, score = scored["pd"].to_numpy(), scored["score"].to_numpy()
    headline = metrics.summary(y, p)
    headline["hosmer_lemeshow_p"] = metrics.hosmer_lemeshow(y, p)[1]
    scale = model.scale
    # Bands of the model's own scale; its top score falls in the top band, as published.
    bands = metrics.band_table(y, p, score, top=scale.max_score)
    published = pd_per_band(scale)
    plots = {
        "score_distribution.png": _score_distribution(score, y, scale),
        "roc.png": _roc(y, p, headline["roc_auc"]),
        "calibration.png": _calibration(bands),
        "factor_importance.png": _factor_importance(scored),
        "pd_per_band.png": _pd_per_band(published),
    }
    for name, figure in plots.items():
        figure.savefig(out_dir / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
    stability = _stability(scored, reference)
    impact = pd.DataFrame(columns=["approval_rate", "impact_ratio"])
    if groups is not None:
        approved = (score >= cutoff).astype(float)
        group = groups.reindex(scored.index)
        impact = pd.DataFrame({
            "approval_rate": pd.Series(approved, index=scored.index).groupby(group).mean(),
            "impact_ratio": metrics.adverse_impact_ratio(approved, group),
        }).rename_axis(f"group (approve ≥ {cutoff:.0f})")  # fmt: skip
    page = _html(model, title, headline, bands, published, list(plots), stability, impact)
    (out_dir / "index.html").write_text(page, encoding="utf-8")
    return Report(out_dir / "index.html", headline, bands, stability, impact)


def _stability(
    scored: pd.DataFrame, reference: tuple[pd.DataFrame, pd.DataFrame] | None
) -> pd.DataFrame:
    """PSI of the score and of the five most shifted features against the reference."""
    if reference is None:
        return pd.DataFrame(columns=["psi"])
    ref_scores, ref_inputs = reference
    rows = {"score": metrics.psi(ref_scores["score"].to_numpy(), scored["score"].to_numpy())}
    inputs = scored.attrs.get("inputs")
    if inputs is not None:
        shifted = metrics.feature_psi(ref_inputs, inputs).sort_values(ascending=False).head(5)
        rows.update({f"feature: {name}": value for name, value in shifted.items()})
    return pd.DataFrame({"psi": rows}).rename_axis("population stability (vs training)")


def _score_distribution(score: np.ndarray, y: np.ndarray, scale: ScoreScale) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = np.arange(scale.min_score, scale.max_score + 25, 25).tolist()
    ax.hist(score[y == 0], bins=bins, alpha=0.7, label="repaid", color="#3b7dd8")
    ax.hist(score[y == 1], bins=bins, alpha=0.8, label="defaulted", color="#d8453b")
    ax.set(xlabel="score", ylabel="users", title="Score distribution by outcome")
    ax.legend()
    return figure


def _roc(y: np.ndarray, p: np.ndarray, auc: float) -> plt.Figure:
    fpr, tpr, _ = roc_curve(y, p)
    figure, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot(fpr, tpr, color="#3b7dd8", label=f"ROC-AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return figure


def _calibration(bands: pd.DataFrame) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(len(bands))
    ax.bar(x - 0.2, bands["observed"], width=0.4, label="observed", color="#d8453b")
    ax.bar(x + 0.2, bands["expected"], width=0.4, label="expected (mean PD)", color="#3b7dd8")
    ax.set_xticks(x, bands.index, rotation=45, ha="right")
    ax.set(ylabel="default rate", title="Calibration by score band")
    ax.legend()
    return figure


def _factor_importance(scored: pd.DataFrame) -> plt.Figure:
    mean_abs = [scored[f"f_{f}"].abs().mean() for f in FACTORS]
    figure, ax = plt.subplots(figsize=(6.4, 3.0))
    ax.barh([FACTOR_TITLES[f] for f in FACTORS], mean_abs, color="#5a9e6f")
    ax.invert_yaxis()
    ax.set(xlabel="mean |points|", title="Factor importance")
    return figure


def _pd_per_band(published: pd.DataFrame) -> plt.Figure:
    figure, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.semilogy(published["band"], published["pd_at_low"], marker="o", color="#8a5ad8")
    ax.set_xticks(range(len(published)), published["band"], rotation=45, ha="right")
    ax.set(ylabel="PD at band floor (log)", title="What a score means: PD per 50-point band")
    return figure


def _table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame])
    rows = []
    for index, row in frame.iterrows():
        cells = "".join(f"<td>{format(v, formats.get(c, ''))}</td>" for c, v in row.items())
        rows.append(f"<tr><th>{html.escape(str(index))}</th>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _html(model: CreditModel, title: str, headline: dict[str, float], bands: pd.DataFrame,
          published: pd.DataFrame, images: list[str], stability: pd.DataFrame,
          impact: pd.DataFrame) -> str:  # fmt: skip
    keys = ["roc_auc", "gini", "ks", "pr_auc", "brier", "ece", "hosmer_lemeshow_p",
            "default_rate", "mean_pd", "n"]  # fmt: skip
    values = [f"{headline[k]:,.0f}" if k == "n" else f"{headline[k]:.4f}" for k in keys]
    head = pd.DataFrame({"value": values}, index=pd.Index(keys, name="metric"))
    figures = "".join(f'<figure><img src="{name}" alt="{name}"></figure>' for name in images)
    scale = model.scale
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>creditgraph model {model.model_id}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:4px 10px;
text-align:right}}figure{{display:inline-block;margin:0.5rem}}img{{max-width:520px}}</style>
</head><body>
<h1>Model {html.escape(model.model_id)}</h1>
<p>Created {html.escape(model.created_at)} · {len(model.features)} features ·
training data fingerprint <code>{model.fingerprint[:16]}</code> · evaluated on {title}.</p>
<p>Scale: score = offset + factor·ln(good:bad odds); {scale.base_score:.0f} points at good:bad
{scale.base_odds:g}:1, {scale.points_to_double_odds:g} points to double the odds, clipped to
{scale.min_score:.0f}–{scale.max_score:.0f}.</p>
<h2>Headline</h2>{_table(head, {})}
<h2>Plots</h2>{figures}
<h2>Expected vs observed default rate per band</h2>
{_table(bands, {"users": ".0f", "observed": ".2%", "expected": ".2%"})}
<h2>Stability</h2>
<p>PSI below 0.1: stable; 0.1–0.25: some shift; above 0.25: a real shift.</p>
{_table(stability, {"psi": ".4f"})}
<h2>Adverse impact by age group</h2>
<p>Approval rate of each group over the most approved group's; below 0.8 fails the
four-fifths rule and needs review.</p>
{_table(impact, {"approval_rate": ".1%", "impact_ratio": ".3f"})}
<h2>Published meaning of the scale</h2>
{_table(published.set_index("band"), {"pd_at_low": ".3%", "pd_at_high": ".3%"})}
</body></html>"""
