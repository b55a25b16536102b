"""The report's figures, drawn with matplotlib's object API (no pyplot: no global state, no GUI
backend, the Agg canvas): ``exposure.png`` (searched: the most exposed training images per γ) and
``psnr.png`` (every certificate with PSNR values: how close the outputs come to the training images,
beside how close the decoder's own reconstructions come, with each γ marked).

Guarantees: a chart only plots values the certificate holds (an unknown upper end is drawn
hatched up to 1, never as a number); infinite PSNR (an output identical to a training image) is
counted in the last bin and the legend says so; nothing is written when there is nothing to plot.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .report_format import gname
from .report_search import CHART_ROWS, exposure_arrays, exposure_ranking

PSNR_PNG = "psnr.png"


def write_exposure_chart(cert: Certificate, path: Path) -> None:
    """``exposure.png``: per γ, the most exposed training images as horizontal bars — dark to the
    proven lower end, light to the upper end, hatched to 1 where the upper end is unknown."""
    from matplotlib.figure import Figure            # no pyplot: no global state, no GUI backend

    exp = exposure_arrays(cert)
    if exp is None:
        return
    gammas = cert.gammas
    s, g = exp["lo"].shape
    n = min(CHART_ROWS, s)
    fig = Figure(figsize=(3.6 * g + 0.8, 0.26 * n + 1.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, g, squeeze=False)[0]
    for j, ax in enumerate(axes):
        order = exposure_ranking(exp["lo"], exp["hi"], j)[:n]
        lo = np.nan_to_num(exp["lo"][order, j])
        hi = exp["hi"][order, j]
        unknown = np.isnan(hi)
        y = np.arange(n)
        known = np.concatenate([lo, hi[~unknown]])
        top = float(known.max()) if known.size else 0.0
        right = min(1.0, top * 1.15) if top > 0 else 1.0   # unknown upper ends run off the right edge
        ax.barh(y, lo, color="#b3261e", height=0.7, label="proven (lower end)")
        ax.barh(y, np.where(unknown, 0.0, hi - lo), left=lo, color="#f2b8b5", height=0.7,
                label="certified interval (to the upper end)")
        if unknown.any():
            ax.barh(y[unknown], (1.0 - lo)[unknown], left=lo[unknown], color="none", edgecolor="#888888",
                    hatch="//", height=0.7, label="upper end unknown (up to 1)")
        ax.set_yticks(y, [f"#{int(t)}" for t in order], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0.0, right)
        ax.set_title(f"γ = {gname(gammas[j])} dB", fontsize=10)
        ax.set_xlabel("exposure: P[one generated image is within γ dB]", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        if j == 0:
            ax.set_ylabel("training image", fontsize=8)
    handles: dict[str, Any] = {}
    for ax in axes:                                   # one legend for all panels, below them
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"The {n} most exposed of {s} training images, per γ", fontsize=10)
    fig.savefig(path, format="png")


def write_psnr_histogram(path: Path, series: list[tuple[str, np.ndarray, np.ndarray | None]],
                         gammas: list[float], title: str, median: float | None = None) -> dict[str, Any] | None:
    """``psnr.png``: one step histogram per series (label, PSNR values, optional weights), each
    normalised to a share of its own total so that populations of any size compare; dashed lines
    at every γ and, when known, a dotted line at the decoder's median reconstruction PSNR.
    Returns what was drawn (``series``: label and number of values; ``infinite``: how many were ∞)
    or None, writing nothing, when no series has a finite value."""
    from matplotlib.figure import Figure

    clean = []
    for label, v, w in series:
        v = np.asarray(v, np.float64).reshape(-1)
        keep = ~np.isnan(v)
        ww = None if w is None else np.asarray(w, np.float64).reshape(-1)[keep]
        if keep.any():
            clean.append((label, v[keep], ww))
    finite_all = np.concatenate([v[np.isfinite(v)] for _, v, _ in clean]) if clean else np.zeros(0)
    if not finite_all.size:
        return None
    lo = math.floor(min(float(finite_all.min()), min(gammas, default=math.inf)) - 1)
    hi = math.ceil(max(float(finite_all.max()), max(gammas, default=-math.inf)) + 1)
    bins = np.linspace(lo, hi + 1, min(60, max(10, hi + 1 - lo)) + 1)
    fig = Figure(figsize=(7.2, 4.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    drawn, infinite = [], 0
    for i, (label, v, w) in enumerate(clean):
        n_inf = int(np.isinf(v).sum())
        infinite += n_inf
        vals = np.clip(v, bins[0], bins[-1] - 1e-9)            # ∞ (identical) → the last bin
        weights = np.ones_like(vals) if w is None else w
        total = float(weights.sum())
        if total <= 0:
            continue
        h, _ = np.histogram(vals, bins=bins, weights=weights / total)
        ax.stairs(h, bins, label=label + (f" ({n_inf} identical, ∞, in the last bin)" if n_inf else ""),
                  linewidth=1.6, fill=(i == 0), alpha=0.35 if i == 0 else 1.0, color=f"C{i}")
        drawn.append({"label": label, "values": int(len(v)), "infinite": n_inf})
    for j, g in enumerate(gammas):
        ax.axvline(g, color="#b3261e", linestyle="--", linewidth=1.2, label="γ thresholds" if j == 0 else None)
    if median is not None and math.isfinite(median):
        ax.axvline(median, color="#555555", linestyle=":", linewidth=1.4,
                   label=f"median reconstruction PSNR {median:.1f} dB")
    ax.set_xlabel("PSNR to the training image, dB (right of a γ line: a near-copy at that γ)", fontsize=9)
    ax.set_ylabel("share of each series", fontsize=9)
    ax.tick_params(labelsize=8)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, format="png")
    return {"series": drawn, "infinite": infinite, "gammas": [float(g) for g in gammas]}
