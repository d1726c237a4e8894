"""k-nearest-neighbour estimators: entropy, KL divergence and mutual information.

- Entropy: Kozachenko & Leonenko (1987), in the form of Kraskov, Stögbauer & Grassberger
  (2004, eq. 20) with Euclidean distances: H = ψ(n) − ψ(k) + log V_d + (d/n) Σ log ε_i, where
  ε_i is the distance from x_i to its k-th neighbour and V_d the volume of the unit d-ball.
- KL divergence: Wang, Kulkarni & Verdú (2009, eq. 5), valid for n ≠ m:
  D(p‖q) = (d/n) Σ log(ν_k(i)/ρ_k(i)) + log(m/(n − 1)), ρ_k(i) the k-th neighbour distance of
  x_i among the other p-samples, ν_k(i) among the q-samples.
- Mutual information: Kraskov, Stögbauer & Grassberger (2004), estimator 1 (eq. 8) with the
  max-norm: I = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩.
- Mutual information with class labels: Ross (2014, PLoS ONE 9(2):e87357), the KSG idea for a
  continuous X and a discrete Y: I = ψ(N) + ⟨ψ(k)⟩ − ⟨ψ(N_y)⟩ − ⟨ψ(m)⟩, with d_i the max-norm
  distance from x_i to its k-th neighbour of the same class, N_y the size of that class and m_i
  the number of all other points within d_i. Its biases largely cancel, unlike
  H(X) − Σ p(y) H(X|y) from separate kNN entropies.

Neighbour search lives in `neighbors`: exact in float64, by a sort (d = 1), a KD-tree (low d,
CPU) or blocked brute force (high d, or a GPU), so exact duplicates give exactly zero.

Duplicates: when a point has k or more exact duplicates its k-th distance is zero and the log
is −∞. Then seeded Gaussian jitter of standard deviation ``JITTER`` × (the data's RMS feature
scale) is added to every point and the distances recomputed; the Estimate carries a warning,
because the value then reflects the jitter scale (the data have a discrete part whose
differential entropy is −∞).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators.neighbors import count_within, knn_distances, ksg_search

__all__ = ["DEFAULT_K", "JITTER", "knn_distances", "knn_entropy", "knn_kl", "ksg_ceiling", "ksg_label_mi", "ksg_mi"]

JITTER = 1e-10
DEFAULT_K = 3


def ksg_ceiling(n: int, k: int = DEFAULT_K) -> float:
    """ψ(n) − ψ(k): the KSG estimate when X and Y determine each other (ties broken), its largest value."""
    digamma = torch.special.digamma
    return float(digamma(torch.tensor(float(n), dtype=torch.float64)) - digamma(torch.tensor(float(k), dtype=torch.float64)))


def _check_k(k: int, n: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InfoprobeError(f"Expected a positive integer k, got {k!r}; pass e.g. k=3")
    if n < k + 1:
        raise InfoprobeError(f"Expected at least k+1 = {k + 1} samples in {what}, got {n}; pass more samples or lower k")


def _jitter(samples: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Copies of ``samples`` plus seeded N(0, (JITTER·scale)²) noise, one common scale."""
    variances = torch.cat([s.to(torch.float64).var(0).nan_to_num(0.0) for s in samples])
    rms = float(variances.mean().sqrt())
    scale = rms if rms > 0 else 1.0
    generator = torch.Generator().manual_seed(seed)
    out = []
    for s in samples:
        noise = torch.randn(s.shape, generator=generator, dtype=torch.float64).to(s.device)
        out.append(s.to(torch.float64) + JITTER * scale * noise)
    return out


def _dedup(
    samples: list[torch.Tensor],
    compute: Callable[..., torch.Tensor],
    seed: int,
    what: str,
    check: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> tuple[torch.Tensor, list[str]]:
    """Run ``compute(*samples)``; if ``check`` of it has zero distances, rerun on jittered samples."""
    distances = compute(*samples)
    zeros = int((check(distances) == 0).sum())
    if zeros == 0:
        return distances, []
    distances = compute(*_jitter(samples, seed))
    message = (
        f"{zeros} points have k or more exact duplicates in {what} (zero kNN distance); added seeded "
        f"Gaussian jitter of {JITTER:g} x the data scale, so the value reflects the jitter: "
        "the data are partly discrete and their differential entropy is -inf"
    )
    return distances, [message]


def _dimension_warning(n: int, d: int) -> list[str]:
    if n < 100 * d:
        return [f"only {n} samples for {d} dimensions: kNN estimates are strongly biased when n is small for d"]
    return []


def knn_entropy(x: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, list[str]]:
    """Kozachenko–Leonenko differential entropy (nats), Euclidean k-th neighbour distances."""
    n, d = x.shape
    _check_k(k, n, "x")
    eps, warnings = _dedup([x], lambda a: knn_distances(a, a, k, exclude_self=True), seed, "x")
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    value = (
        float(torch.special.digamma(torch.tensor(float(n), dtype=torch.float64)))
        - float(torch.special.digamma(torch.tensor(float(k), dtype=torch.float64)))
        + log_unit_ball
        + d * float(torch.log(eps).mean())
    )
    return value, warnings + _dimension_warning(n, d)


def knn_kl(p: torch.Tensor, q: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, list[str]]:
    """Wang–Kulkarni–Verdú kNN estimate of KL(p ‖ q) in nats; n ≠ m allowed."""
    n, d = p.shape
    m = q.shape[0]
    _check_k(k, n, "p")
    if m < k:
        raise InfoprobeError(f"Expected at least k = {k} samples in q, got {m}; pass more samples or lower k")

    def both(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([knn_distances(a, a, k, exclude_self=True), knn_distances(a, b, k, exclude_self=False)])

    distances, warnings = _dedup([p, q], both, seed, "p or q")
    rho, nu = distances[0], distances[1]
    value = d * float((torch.log(nu) - torch.log(rho)).mean()) + math.log(m / (n - 1))
    return value, warnings + _dimension_warning(min(n, m), d)


def _ksg_counts(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """(3, n): joint k-th neighbour max-norm distance ε, n_x and n_y (strictly inside ε)."""
    counts = ksg_search(x, y, k)
    own = (counts[0] > 0).to(torch.float64)  # a point is strictly inside its own ε when ε > 0
    return torch.stack([counts[0], counts[1] - own, counts[2] - own])


def ksg_mi(x: torch.Tensor, y: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, list[str]]:
    """Kraskov–Stögbauer–Grassberger mutual information I(X;Y) (estimator 1, max-norm), nats."""
    n = x.shape[0]
    _check_k(k, n, "x")
    counts, warnings = _dedup([x, y], lambda a, b: _ksg_counts(a, b, k), seed, "(x, y)", check=lambda t: t[0])
    digamma = torch.special.digamma
    value = (
        float(digamma(torch.tensor(float(k), dtype=torch.float64)))
        + float(digamma(torch.tensor(float(n), dtype=torch.float64)))
        - float((digamma(counts[1] + 1) + digamma(counts[2] + 1)).mean())
    )
    return value, warnings + _dimension_warning(n, x.shape[1] + y.shape[1])


def _ross_terms(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(3, n') rows d_i, k_i and m_i for the points whose class has at least 2 members."""
    x = x.to(torch.float64)
    keep = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    radius = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    k_used = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        if members.numel() < 2:
            continue  # a lone sample has no same-class neighbour (as in Ross 2014)
        k_c = min(k, members.numel() - 1)
        xc = x[members]
        radius[members] = knn_distances(xc, xc, k_c, exclude_self=True, metric="chebyshev")
        keep[members] = True
        k_used[members] = float(k_c)
    index = torch.nonzero(keep).flatten()
    if index.numel() == 0:
        raise InfoprobeError(
            f"Expected at least one class with 2 or more samples for I(X; labels), got "
            f"{x.shape[0]} samples in {int(torch.unique(labels).numel())} classes; pass more samples per class"
        )
    xs, rs = x[index], radius[index]
    # all points within d_i, the point itself excluded
    counts = count_within(xs, rs, strict=False) - 1
    return torch.stack([rs, k_used[index], counts.to(torch.float64)])


def ksg_label_mi(x: torch.Tensor, labels: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, list[str]]:
    """I(X;Y) between continuous ``x`` and integer class ``labels`` (Ross 2014), in nats."""
    n = x.shape[0]
    _check_k(k, n, "x")
    terms, warnings = _dedup([x], lambda a: _ross_terms(a, labels, k), seed, "x (per class)",
                             check=lambda t: t[0])
    n_kept = terms.shape[1]
    class_sizes = torch.unique(labels, return_counts=True)[1]
    class_sizes = class_sizes[class_sizes > 1].to(torch.float64)
    digamma = torch.special.digamma
    # ⟨ψ(N_y)⟩ over points = Σ_y (N_y / n') ψ(N_y)
    mean_psi_class = float((class_sizes * digamma(class_sizes)).sum() / n_kept)
    value = (
        float(digamma(torch.tensor(float(n_kept), dtype=torch.float64)))
        + float(digamma(terms[1]).mean())
        - mean_psi_class
        - float(digamma(terms[2]).mean())
    )
    if n_kept < n:
        warnings = [*warnings, f"{n - n_kept} samples of classes with a single member were left out"]
    return value, warnings
