"""Gaussian (parametric) entropy, KL divergence and mutual information.

The data are summarised by their mean and covariance and the closed forms of the multivariate
normal are used (Cover & Thomas 2006, ch. 8): H = d/2·log(2πe) + 1/2·log det Σ nats.
log det Σ is bias-corrected for a finite sample following Ahmed & Gokhale (1989) / Misra,
Singh & Demchuk (2005): with S the unbiased sample covariance, (n−1)S is Wishart, so
E[log det S] = log det Σ + Σ_{i=1..d} ψ((n−i)/2) − d·log((n−1)/2).
Optional Ledoit–Wolf (2004) shrinkage of the covariance (then no bias correction is applied).

Moments are accumulated with the pairwise update of Chan, Golub & LeVeque (1979) in float64;
`moments_update` is the functional core shared with the streaming `RunningMoments`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators.estimate import EstimationError

__all__ = [
    "Moments",
    "covariance",
    "gaussian_entropy",
    "gaussian_entropy_from_moments",
    "gaussian_kl",
    "gaussian_mi",
    "moments_update",
]


class Moments(NamedTuple):
    """Running sample count, mean and co-moment matrix M2 = Σ (x − mean)(x − mean)ᵀ (float64)."""

    n: int
    mean: torch.Tensor
    m2: torch.Tensor


def moments_update(state: Moments | None, batch: torch.Tensor) -> Moments:
    """Merge the moments of ``batch`` (n, d) into ``state`` (None = empty), in float64."""
    batch = batch.to(torch.float64)
    nb = batch.shape[0]
    mean_b = batch.mean(0)
    centred = batch - mean_b
    m2_b = centred.T @ centred
    if state is None or state.n == 0:
        return Moments(nb, mean_b, m2_b)
    if state.mean.shape != mean_b.shape:
        raise InfoprobeError(
            f"Expected batches with {state.mean.shape[0]} features, got {mean_b.shape[0]}; "
            "feed batches of one layer only"
        )
    n = state.n + nb
    delta = mean_b - state.mean
    mean = state.mean + delta * (nb / n)
    m2 = state.m2 + m2_b + torch.outer(delta, delta) * (state.n * nb / n)
    return Moments(n, mean, m2)


def _ledoit_wolf(x: torch.Tensor) -> torch.Tensor:
    """Ledoit–Wolf (2004) shrunk covariance (1/n normalisation, as in scikit-learn)."""
    n, d = x.shape
    centred = x - x.mean(0)
    s = centred.T @ centred / n
    mu = torch.trace(s) / d
    target = s - mu * torch.eye(d, dtype=s.dtype, device=s.device)
    delta2 = (target**2).sum() / d
    sq = centred**2
    beta2 = ((sq.T @ sq).sum() / n - (s**2).sum()) / (d * n)
    shrink = torch.clamp(torch.minimum(beta2, delta2) / delta2, 0.0, 1.0) if float(delta2) > 0 else 1.0
    return (1 - shrink) * s + shrink * mu * torch.eye(d, dtype=s.dtype, device=s.device)


def covariance(moments: Moments) -> torch.Tensor:
    """Unbiased sample covariance (n − 1 denominator)."""
    return moments.m2 / (moments.n - 1)


def _logdet(cov: torch.Tensor, what: str) -> float:
    sign, logdet = torch.linalg.slogdet(cov)
    if float(sign) <= 0 or not math.isfinite(float(logdet)):
        raise EstimationError(
            f"Expected a positive-definite covariance for {what}, got a singular one "
            "(constant or collinear features, or n <= d); pass shrinkage='ledoit-wolf' or remove constant features"
        )
    return float(logdet)


def _bias(n: int, d: int) -> float:
    """E[log det S] − log det Σ for the unbiased sample covariance S of n Gaussian samples."""
    i = torch.arange(1, d + 1, dtype=torch.float64)
    return float(torch.special.digamma((n - i) / 2).sum()) - d * math.log((n - 1) / 2)


def gaussian_entropy_from_moments(moments: Moments, *, bias_correction: bool = True) -> tuple[float, list[str]]:
    """Entropy (nats) of the Gaussian with the accumulated covariance."""
    n, d = moments.n, moments.mean.shape[0]
    if n <= d:
        raise EstimationError(
            f"Expected more samples than features for a Gaussian fit, got n={n}, d={d}; "
            "pass more samples or shrinkage='ledoit-wolf'"
        )
    logdet = _logdet(covariance(moments), "x")
    if bias_correction:
        logdet -= _bias(n, d)
    warnings = []
    if n < 10 * d:
        warnings.append(f"only {n} samples for {d} dimensions; the covariance estimate is poor")
    return 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * logdet, warnings


def gaussian_entropy(
    x: torch.Tensor, *, bias_correction: bool = True, shrinkage: str | None = None
) -> tuple[float, list[str]]:
    """Entropy (nats) of a Gaussian fitted to ``x``; ``shrinkage="ledoit-wolf"`` for d close to n."""
    if shrinkage is None:
        return gaussian_entropy_from_moments(moments_update(None, x), bias_correction=bias_correction)
    if shrinkage != "ledoit-wolf":
        raise InfoprobeError(f"Expected shrinkage None or 'ledoit-wolf', got {shrinkage!r}")
    d = x.shape[1]
    logdet = _logdet(_ledoit_wolf(x.to(torch.float64)), "x")
    return 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * logdet, []


CONDITION_WARNING = 1e8


def gaussian_kl(p: torch.Tensor, q: torch.Tensor, *, shrinkage: str | None = None) -> tuple[float, list[str]]:
    """KL(N_p ‖ N_q) in nats between the Gaussians fitted to ``p`` and ``q`` (closed form)."""
    if shrinkage not in (None, "ledoit-wolf"):
        raise InfoprobeError(f"Expected shrinkage None or 'ledoit-wolf', got {shrinkage!r}")
    fits = []
    for sample in (p, q):
        sample = sample.to(torch.float64)
        if shrinkage is None:
            if sample.shape[0] <= sample.shape[1]:
                raise EstimationError(
                    f"Expected more samples than features for a Gaussian fit, got {tuple(sample.shape)}; "
                    "pass more samples or shrinkage='ledoit-wolf'"
                )
            m = moments_update(None, sample)
            fits.append((m.mean, covariance(m)))
        else:
            fits.append((sample.mean(0), _ledoit_wolf(sample)))
    (mu_p, cov_p), (mu_q, cov_q) = fits
    d = mu_p.shape[0]
    chol_q, info = torch.linalg.cholesky_ex(cov_q)
    if int(info) != 0:
        raise EstimationError(
            f"Expected a positive-definite covariance of q for the Gaussian KL, got a singular one "
            f"({d} features, {q.shape[0]} samples); pass shrinkage='ledoit-wolf' or drop constant features"
        )
    warnings = []
    eigenvalues = torch.linalg.eigvalsh(cov_q)
    condition = float(eigenvalues[-1] / eigenvalues[0])
    if condition > CONDITION_WARNING:
        warnings.append(
            f"the covariance of q is ill-conditioned (condition number {condition:.2g}): q is close to a "
            "lower-dimensional subspace, the true KL is very large or infinite and the value mostly "
            "reflects the regularisation"
        )
    trace = float(torch.cholesky_solve(cov_p, chol_q).diagonal().sum())
    diff = (mu_q - mu_p)[:, None]
    maha = float((diff * torch.cholesky_solve(diff, chol_q)).sum())
    value = 0.5 * (trace + maha - d + _logdet(cov_q, "q") - _logdet(cov_p, "p"))
    return value, warnings


def gaussian_mi(x: torch.Tensor, y: torch.Tensor, *, bias_correction: bool = True) -> tuple[float, list[str]]:
    """I(X;Y) = H(X) + H(Y) − H(X,Y) in nats for the jointly Gaussian fit (each H bias-corrected)."""
    hx, wx = gaussian_entropy(x, bias_correction=bias_correction)
    hy, _ = gaussian_entropy(y, bias_correction=bias_correction)
    hxy, _ = gaussian_entropy(torch.cat([x.to(torch.float64), y.to(torch.float64)], 1), bias_correction=bias_correction)
    return hx + hy - hxy, wx
