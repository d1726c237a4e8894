"""Numerical rank of a sample, and the degeneracy and sample-size notes built on it.

A sample whose centred rows span fewer than d dimensions lies on a lower-dimensional affine
subspace: its differential entropy is −∞, whatever finite number a formula returns. The
numerical rank uses the rule of ``numpy.linalg.matrix_rank`` (Press et al., Numerical Recipes,
§2.6): singular values σ_i of the centred data count when σ_i > σ_max · max(n, d) · eps, with
eps the machine epsilon of the data's own dtype (float32 activations carry float32 round-off,
so a float32 layer is judged with 2⁻²³, a float64 one with 2⁻⁵²).

A sample of n rows spans at most n − 1 dimensions after centring: when the measured rank is
n − 1 < d the sample cannot show whether the distribution is degenerate, and the estimate is
flagged "biased" (n is far too small for d) rather than "degenerate".
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import torch

from infoprobe.estimators.estimate import Flag, Notes, Rank

__all__ = ["divergence_rank_notes", "numerical_rank", "rank_notes", "rank_tolerance", "sample_size_flag"]


def rank_tolerance(n: int, d: int, dtype: torch.dtype) -> float:
    """Relative singular-value threshold max(n, d) · eps(dtype) (times σ_max gives the cut-off)."""
    eps = torch.finfo(dtype if dtype.is_floating_point else torch.float64).eps
    return max(n, d) * eps


#: Ranks of recent CPU samples, keyed by their content: an analysis asks for the rank of one
#: layer's sample several times (its entropy, and as p and q of two KLs), each time from a new
#: array, and the SVD (77 ms for 1000 × 784) costs ~25× hashing the bytes. A content key cannot
#: go stale; the cache holds keys and integers only.
_RANKS: OrderedDict[tuple[Any, ...], int] = OrderedDict()
_RANKS_MAX = 64
_HASH_MIN_BYTES = 1 << 16  # below this the SVD is cheaper than the bookkeeping


def _content_key(x: torch.Tensor) -> tuple[Any, ...] | None:
    if x.device.type != "cpu" or x.numel() * x.element_size() < _HASH_MIN_BYTES:
        return None
    data = x.detach().contiguous().view(torch.uint8).reshape(-1).numpy()
    return (tuple(x.shape), str(x.dtype), hashlib.blake2b(data.tobytes(), digest_size=16).digest())


def numerical_rank(x: Any) -> int:
    """Numerical rank of the centred samples ``x`` (n, d): #σ_i > σ_max · max(n, d) · eps(x.dtype).

    ``x`` is an array or tensor (n samples, features; more dimensions are flattened per sample).
    Centring makes the rank that of the affine hull of the rows, so a constant offset does not
    count and a constant sample has rank 0. The SVD is done in float64 whatever the input dtype;
    the tolerance uses the input's epsilon (see the module docstring).
    """
    x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    key = _content_key(x)
    if key is not None and key in _RANKS:
        _RANKS.move_to_end(key)
        return _RANKS[key]
    n, d = x.shape
    centred = x.to(torch.float64) - x.to(torch.float64).mean(0)
    sigma = torch.linalg.svdvals(centred)
    rank = 0 if sigma.numel() == 0 or float(sigma[0]) == 0.0 else int((sigma > sigma[0] * rank_tolerance(n, d, x.dtype)).sum())
    if key is not None:
        _RANKS[key] = rank
        if len(_RANKS) > _RANKS_MAX:
            _RANKS.popitem(last=False)
    return rank


def rank_notes(x: torch.Tensor) -> tuple[bool, Notes]:
    """(degenerate, notes) for an entropy of ``x``: a `Rank` note, and a `Flag` when r < d.

    ``degenerate`` is True when the rank r is below min(n − 1, d): the data provably lie on an
    r-dimensional affine subspace, the differential entropy is −∞ (Flag "degenerate"). When
    r = n − 1 < d the sample is too small to tell (Flag "biased").
    """
    n, d = x.shape
    r = numerical_rank(x)
    notes: Notes = [Rank(r)]
    if r >= d:
        return False, notes
    if r < min(n - 1, d):
        notes.append(Flag("degenerate", f"rank {r} < d = {d}: the data lie on an affine subspace of "
                                        f"dimension {r}, so the differential entropy is −∞"))
        return True, notes
    notes.append(Flag("biased", f"n = {n} samples span at most n − 1 = {n - 1} < d = {d} dimensions: "
                                "the sample cannot show whether the data are full rank"))
    return False, notes


def divergence_rank_notes(p: torch.Tensor, q: torch.Tensor) -> tuple[bool, Notes]:
    """(degenerate, notes) for a KL between samples: rank-deficient p or q makes KL(p ‖ q) +∞.

    Distributions on different lower-dimensional subspaces, or one on a subspace and one with
    a density, have an infinite divergence; on one common subspace the d-dimensional formulas
    do not apply either, hence "degenerate" with value +∞ in both cases.
    """
    notes: Notes = []
    degenerate = False
    for name, sample in (("p", p), ("q", q)):
        is_degenerate, sample_notes = rank_notes(sample)
        for note in sample_notes:
            if isinstance(note, Rank):
                if name == "p":
                    notes.append(note)
            elif not isinstance(note, Flag):
                notes.append(note)
            elif is_degenerate:
                notes.append(Flag("degenerate", f"{name}: {note.reason}; KL(p ‖ q) is then +∞ (or, when p and q "
                                                "share the subspace, needs estimating within it)"))
            else:
                notes.append(Flag(note.status, f"{name}: {note.reason}"))
        degenerate = degenerate or is_degenerate
    return degenerate, notes


def sample_size_flag(n: int, d: int, *, minimum: float, rule: str, what: str) -> list[Flag]:
    """[Flag("biased", ...)] when ``n`` < ``minimum`` (the estimator's rule, e.g. "10·d"), else []."""
    if n < minimum:
        shown = f"{minimum:.0f}" if minimum < 1e7 else f"{minimum:.2g}"
        return [Flag("biased", f"n = {n} < {rule} = {shown} for d = {d}: {what}")]
    return []
