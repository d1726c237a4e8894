"""Binned joint-pattern entropy and mutual information, as in information-plane studies
(Shwartz-Ziv & Tishby 2017; Saxe et al. 2018).

Every unit is discretised on the same uniform bins (``bins`` over the layer's min..max by
default), each sample becomes one pattern of bin indices, and the plug-in Shannon entropy of
the pattern frequencies is returned in nats. With n samples it cannot exceed log n, which it
reaches as soon as all patterns differ (typical for wide layers).
"""

from __future__ import annotations

import torch

from infoprobe.estimators.histogram import bin_edges

__all__ = ["binned_entropy", "binned_mi", "patterns"]


def patterns(x: torch.Tensor, *, bins: int = 30, range: tuple[float, float] | None = None) -> torch.Tensor:
    """Bin index of every unit (n, d) on uniform edges shared by all units (numpy's rule)."""
    edges = bin_edges(x, bins=bins, range=range)
    values = x.to(edges.dtype)
    index = torch.bucketize(values, edges, right=True) - 1
    return index.clamp_(0, edges.numel() - 2)


def _plugin_entropy(codes: torch.Tensor) -> float:
    counts = torch.unique(codes, dim=0, return_counts=True)[1].to(torch.float64)
    p = counts / counts.sum()
    return float(-(p * torch.log(p)).sum())


def binned_entropy(
    x: torch.Tensor, *, bins: int = 30, range: tuple[float, float] | None = None
) -> tuple[float, list[str]]:
    """Plug-in entropy (nats) of the joint bin patterns of the samples ``x``."""
    value = _plugin_entropy(patterns(x, bins=bins, range=range))
    return value, []


def binned_mi(
    x: torch.Tensor, y: torch.Tensor, *, bins: int = 30, range: tuple[float, float] | None = None
) -> tuple[float, list[str]]:
    """Plug-in I(X;Y) = H(X) + H(Y) − H(X,Y) (nats) of binned patterns.

    Integer labels ``y`` (1-D int64) are used as they are; continuous ``y`` is binned on its
    own range with the same number of bins.
    """
    cx = patterns(x, bins=bins, range=range)
    cy = y[:, None] if (y.dtype == torch.int64 and y.ndim == 1) else patterns(y, bins=bins)
    hx, hy = _plugin_entropy(cx), _plugin_entropy(cy)
    hxy = _plugin_entropy(torch.cat([cx, cy], 1))
    return hx + hy - hxy, []
