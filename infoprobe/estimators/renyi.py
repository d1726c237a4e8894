"""Matrix-based α-order Rényi entropy (Giraldo, Rao & Príncipe 2014), as used for autoencoders
by Yu & Príncipe (2019, "Understanding autoencoders with information theoretic concepts").

A = K / tr(K) for the Gaussian Gram matrix K_ij = exp(−‖x_i − x_j‖²/(2σ²)) of the
standardised samples, with σ = γ·n^(−1/(4+d)) (Silverman's rule with a factor γ), and
S_α(A) = log(Σ_i λ_i(A)^α) / (1 − α) nats (α = 1 gives −Σ λ log λ). Joint entropy uses the
Hadamard product A_x ∘ A_y renormalised by its trace. S_α ≤ log n.

Speed: Gram entries below ``FLUSH`` (= float64 eps², far below eigvalsh's own error) are set to
zero so that no subnormal numbers reach LAPACK (they once made one eigendecomposition 25×
slower), and rows with no off-diagonal entry left are 1×1 blocks whose eigenvalue is their
diagonal entry; only the remaining coupled block goes to ``torch.linalg.eigvalsh`` (float64).
Both steps leave the eigenvalues unchanged up to rounding.
"""

from __future__ import annotations

import math

import torch

from infoprobe.errors import InfoprobeError

__all__ = ["FLUSH", "gram_matrix", "renyi_entropy", "renyi_from_gram", "renyi_mi"]

FLUSH = torch.finfo(torch.float64).eps ** 2


def gram_matrix(x: torch.Tensor, *, gamma: float = 1.0, standardize: bool = True) -> torch.Tensor:
    """Gaussian Gram matrix (float64, n×n) with σ = γ·n^(−1/(4+d)); tiny entries flushed to 0."""
    if not gamma > 0:
        raise InfoprobeError(f"Expected a positive kernel-width factor gamma, got {gamma!r}; pass e.g. gamma=1.0")
    x = x.to(torch.float64)
    n, d = x.shape
    x = x - x.mean(0)
    if standardize:
        std = x.std(0)
        x = x / torch.where(std > 0, std, torch.ones_like(std))
    sigma = gamma * n ** (-1.0 / (4 + d))
    sq = (x * x).sum(1)
    k = torch.addmm(sq[None, :], x, x.T, alpha=-2.0).add_(sq[:, None]).clamp_(min=0)
    k.fill_diagonal_(0.0).div_(2 * sigma**2)
    # exp(−e) < FLUSH  ⇔  e > −log FLUSH: clamp before exp so that no subnormal is ever formed
    cutoff = -math.log(FLUSH)
    flushed = k > cutoff
    return k.clamp_(max=cutoff).neg_().exp_().masked_fill_(flushed, 0.0)


def _eigenvalues(a: torch.Tensor) -> torch.Tensor:
    coupled = (a != 0).sum(1) > 1  # the diagonal is never zero
    isolated = a.diagonal()[~coupled]
    if int(coupled.sum()) == 0:
        return isolated
    block = a[coupled][:, coupled]
    return torch.cat([isolated, torch.linalg.eigvalsh(block)])


def renyi_from_gram(k: torch.Tensor, *, alpha: float = 1.01) -> float:
    """S_α (nats) of the trace-normalised Gram matrix ``k``."""
    if not alpha > 0:
        raise InfoprobeError(f"Expected a positive Rényi order alpha, got {alpha!r}; pass e.g. alpha=1.01")
    a = k / torch.trace(k)
    lam = _eigenvalues(a).clamp(min=0)
    lam = lam[lam > 0]
    if alpha == 1:
        return float(-(lam * torch.log(lam)).sum())
    return float(torch.log((lam**alpha).sum())) / (1 - alpha)


def renyi_entropy(
    x: torch.Tensor, *, alpha: float = 1.01, gamma: float = 1.0, standardize: bool = True
) -> tuple[float, list[str]]:
    """Matrix-based Rényi entropy S_α (nats) of the samples ``x``."""
    value = renyi_from_gram(gram_matrix(x, gamma=gamma, standardize=standardize), alpha=alpha)
    return value, []


def renyi_mi(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float = 1.01,
    gamma: float = 1.0,
    standardize: bool = True,
) -> tuple[float, list[str]]:
    """I_α(X;Y) = S_α(A_x) + S_α(A_y) − S_α(A_x∘A_y) in nats.

    Integer labels ``y`` (1-D int64) use the delta kernel K_ij = [y_i = y_j].
    """
    kx = gram_matrix(x, gamma=gamma, standardize=standardize)
    if y.dtype == torch.int64 and y.ndim == 1:
        ky = (y[:, None] == y[None, :]).to(torch.float64)
    else:
        ky = gram_matrix(y, gamma=gamma, standardize=standardize)
    sx = renyi_from_gram(kx, alpha=alpha)
    sy = renyi_from_gram(ky, alpha=alpha)
    sxy = renyi_from_gram(kx * ky, alpha=alpha)
    return sx + sy - sxy, []
