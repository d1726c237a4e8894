"""Figures of an :class:`~infoprobe.results.AnalysisResult`; they read it and never recompute.

- ``entropy.png``: entropy per layer along the pass, regions shaded (Callahan & Paskett 2021,
  Fig. 3): forward pass / encoder, bottleneck, inverse pass / decoder; one panel per estimator.
- ``relative_entropy.png``: KL(previous layer ‖ this layer) per layer (their Fig. 4).
- ``info_plane.png``: I(X; T) against I(T; Y) per layer (Shwartz-Ziv & Tishby 2017).
- ``umap.png``: the UMAP embedding of the bottleneck codes coloured by class.
- ``reconstructions.png``: example inputs above their reconstructions.
- :func:`plot_compare`: several runs overlaid, aligned at their bottleneck.

matplotlib is imported lazily with the non-interactive Agg backend. All values in nats.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from infoprobe.results import AnalysisResult

__all__ = [
    "FIGURES",
    "plot_all",
    "plot_compare",
    "plot_entropy",
    "plot_entropy_change",
    "plot_info_plane",
    "plot_reconstructions",
    "plot_relative_entropy",
    "plot_umap",
]

REGION_COLOURS = {"encoder": "#dbe9f6", "bottleneck": "#fde0c5", "decoder": "#dff1dc"}
DPI = 110


def _plt() -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # keep the backend of a user's running session
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _region_names(result: AnalysisResult) -> dict[str, str]:
    if result.model.get("invertible"):
        return {"encoder": "forward pass", "bottleneck": "bottleneck", "decoder": "inverse pass"}
    return {"encoder": "encoder", "bottleneck": "bottleneck", "decoder": "decoder"}


def _shade_regions(ax: Any, result: AnalysisResult, *, legend: bool) -> None:
    names = _region_names(result)
    regions = [row.region for row in result.layers]
    start = 0
    seen: set[str] = set()
    for i in range(1, len(regions) + 1):
        if i == len(regions) or regions[i] != regions[start]:
            region = regions[start]
            ax.axvspan(start - 0.5, i - 0.5, color=REGION_COLOURS.get(region, "#eeeeee"), zorder=0,
                       label=names.get(region, region) if legend and region not in seen else None)
            seen.add(region)
            start = i


MAX_TICKS = 60  # beyond this many layers only every k-th is labelled (PIE records ~360)
MAX_WIDTH = 24.0  # inches


def _layer_axis(ax: Any, result: AnalysisResult) -> None:
    labels = [row.label for row in result.layers]
    step = max(1, math.ceil(len(labels) / MAX_TICKS))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks], rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(labels) - 0.5)


def _series(result: AnalysisResult, group: str, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values, interval bounds and an "ok" mask per layer; missing / non-finite values are NaN."""
    vals, lo, hi, ok = [], [], [], []
    for est in result.series(group, method):
        value = np.nan if est is None or not math.isfinite(est.value) else est.value
        vals.append(value)
        c = None if est is None else est.ci
        lo.append(np.nan if c is None else c[0])
        hi.append(np.nan if c is None else c[1])
        ok.append(bool(est is not None and est.ok))
    return np.array(vals, float), np.array(lo, float), np.array(hi, float), np.array(ok, bool)


def _title(result: AnalysisResult) -> str:
    model = result.model.get("name") or result.model.get("class", "model")
    data = result.dataset.get("name") or "data"
    return f"{model} on {data} ({result.dataset.get('split') or ''}, n={result.dataset.get('n_samples')})"


def _per_layer(result: AnalysisResult, path: str | os.PathLike[str], quantity: str, ylabel: str, what: str) -> Path:
    plt = _plt()
    methods = result.methods(quantity)
    n = max(1, len(methods))
    width = min(MAX_WIDTH, max(7.0, 0.35 * len(result.layers) + 2))
    fig, axes = plt.subplots(n, 1, figsize=(width, 2.6 * n + 1.2), sharex=True, squeeze=False)
    x = np.arange(len(result.layers))
    for k, ax in enumerate(axes[:, 0]):
        _shade_regions(ax, result, legend=k == 0)
        if not methods:
            ax.text(0.5, 0.5, f"no {what} estimates", transform=ax.transAxes, ha="center")
            continue
        method = methods[k]
        vals, lo, hi, ok = _series(result, quantity, method)
        shown = np.where(ok, vals, np.nan)
        ax.plot(x, shown, "o-", color="#1f4e79", ms=4 if len(x) <= MAX_TICKS else 1.5, lw=1.5, label=method)
        if np.isfinite(lo[ok]).any():
            ax.fill_between(x, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color="#1f4e79",
                            alpha=0.2, lw=0, label=f"{result.settings.get('ci', 0.95):.0%} interval")
        flagged = ~ok & np.isfinite(vals)
        if flagged.any():  # a value that is not "ok" is never drawn as a plain point
            ax.plot(x[flagged], vals[flagged], "x", color="#c00000", ms=7,
                    label="not ok (status in the report)")
        ax.set_ylabel(f"{ylabel}\n[{method}] (nats)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    _layer_axis(axes[-1, 0], result)
    axes[0, 0].set_title(f"{what.capitalize()} per layer — {_title(result)}", fontsize=10)
    return _save(fig, path)


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_entropy(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """Entropy of each layer along the pass, regions shaded (Callahan & Paskett 2021, Fig. 3)."""
    return _per_layer(result, path, "entropy", "entropy", "entropy")


def plot_relative_entropy(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """KL(previous layer ‖ layer) along the pass (Callahan & Paskett 2021, Fig. 4)."""
    return _per_layer(result, path, "relative_entropy", "KL(prev ‖ layer)", "relative entropy")


def plot_entropy_change(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """The exact entropy change E[log |det J|] across each invertible block (change of variables)."""
    return _per_layer(result, path, "entropy_change", "Δh across the block", "exact entropy change")


def plot_info_plane(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """Each layer as a point (I(X; T), I(T; Y)), joined in pass order and coloured by region."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    mi_x, mi_y = result.methods("mi_input")[:1], result.methods("mi_label")[:1]
    pts = []
    for r in result.layers:
        ex = r.mi_input.get(mi_x[0]) if mi_x else None
        ey = r.mi_label.get(mi_y[0]) if mi_y else None
        if ex is not None and ey is not None and ex.ok and ey.ok:  # only readable numbers
            pts.append((r.index, r.region, ex.value, ey.value))
    if pts:
        xs = np.array([p[2] for p in pts], float)
        ys = np.array([p[3] for p in pts], float)
        ax.plot(xs, ys, "-", color="#888888", lw=1, zorder=1)
        names = _region_names(result)
        edge = {"encoder": "#1f4e79", "bottleneck": "#d46b08", "decoder": "#2e7d32"}
        for region in ("encoder", "bottleneck", "decoder"):
            sel = [i for i, p in enumerate(pts) if p[1] == region]
            if sel:
                ax.scatter(xs[sel], ys[sel], s=40, color=edge[region], label=names[region], zorder=2)
        if len(pts) <= MAX_TICKS:
            for (index, _, xv, yv) in pts:
                ax.annotate(str(index), (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no layer with both I(X; T) and I(T; Y) ok",
                transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel(f"I(X; T) [{mi_x[0] if mi_x else '-'}] (nats)")
    ax.set_ylabel(f"I(T; Y) [{mi_y[0] if mi_y else '-'}] (nats)")
    ax.set_title(f"Information plane — {_title(result)}", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_umap(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """The UMAP embedding of the bottleneck codes, coloured by class."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    emb = result.embedding
    if not emb or not emb.get("coords"):
        ax.text(0.5, 0.5, "no embedding (UMAP was off)", transform=ax.transAxes, ha="center")
    else:
        xy = np.asarray(emb["coords"], float)
        labels = emb.get("labels")
        if labels is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=3, color="#1f4e79")
        else:
            lab = np.asarray(labels)
            cmap = plt.get_cmap("tab10" if len(np.unique(lab)) <= 10 else "tab20")
            for i, c in enumerate(np.unique(lab)):
                sel = lab == c
                ax.scatter(xy[sel, 0], xy[sel, 1], s=3, color=cmap(i % cmap.N), label=str(c))
            ax.legend(markerscale=4, fontsize=7, loc="best", title="class", title_fontsize=7)
        ax.set_title(f"UMAP of {emb.get('layer', 'codes')} ({len(xy)} codes) — {_title(result)}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def _image(flat: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    a = np.asarray(flat, float).reshape(shape)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.transpose(a[:3], (1, 2, 0))
    elif a.ndim == 1:
        side = math.ceil(math.sqrt(a.size))
        a = np.pad(a, (0, side * side - a.size)).reshape(side, side)
    return np.clip(a, 0.0, 1.0)


def plot_reconstructions(result: AnalysisResult, path: str | os.PathLike[str]) -> Path:
    """Example inputs (top row) above their reconstructions (bottom row)."""
    plt = _plt()
    ex = result.examples or {}
    inputs, recs = ex.get("inputs") or [], ex.get("reconstructions") or []
    k = max(1, len(inputs))
    fig, axes = plt.subplots(2, k, figsize=(1.3 * k + 0.6, 3.0), squeeze=False)
    for j in range(k):
        for i, (row, name) in enumerate(((inputs, "input"), (recs, "reconstruction"))):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                img = _image(row[j], ex["shape"])
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    l1 = result.globals.l1
    fig.suptitle(f"Reconstructions — {_title(result)}" + (f", L1 {l1:.4f}" if l1 is not None else ""),
                 fontsize=9)
    return _save(fig, path)


FIGURES = {
    "entropy": plot_entropy,
    "relative_entropy": plot_relative_entropy,
    "entropy_change": plot_entropy_change,
    "info_plane": plot_info_plane,
    "umap": plot_umap,
    "reconstructions": plot_reconstructions,
}


def plot_all(result: AnalysisResult, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Every figure in ``folder`` as ``<name>.png``, where the result has data for it (UMAP with an
    embedding, the exact Δh for invertible blocks, reconstructions for an autoencoder)."""
    folder = Path(folder)
    out: dict[str, Path] = {}
    for name, plot in FIGURES.items():
        if ((name == "umap" and not result.embedding) or (name == "entropy_change" and not result.methods(name))
                or (name == "reconstructions" and not (result.examples or {}).get("reconstructions"))):
            continue
        out[name] = plot(result, folder / f"{name}.png")
    return out


def plot_compare(
    results: Sequence[AnalysisResult],
    names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    quantity: str = "entropy",
    method: str = "callahan2021",
) -> Path:
    """Overlay one per-layer series of several runs, x aligned at each run's bottleneck (0)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for result, name in zip(results, names, strict=True):
        vals, lo, hi, ok = _series(result, quantity, method)
        vals, lo, hi = (np.where(ok, a, np.nan) for a in (vals, lo, hi))
        b = result.bottleneck_index or 0
        x = np.arange(len(vals)) - b
        (line,) = ax.plot(x, vals, "o-", ms=3, lw=1.4, label=name)
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ax.axvline(0, color="#d46b08", lw=1, ls="--", label="bottleneck")
    ax.set_xlabel("layer position relative to the bottleneck")
    what = "entropy" if quantity == "entropy" else "KL(previous ‖ layer)"
    ax.set_ylabel(f"{what} [{method}] (nats)")
    ax.set_title(f"{what.capitalize()} along the pass", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
