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

Ties and duplicates. The KSG and Ross estimators count neighbours strictly inside a max-norm
radius, which breaks down when distances tie (8-bit images: a few dozen distinct max-norm
distances among 1,000 points). They therefore always add seeded Gaussian noise of s.d.
``TIE_NOISE`` (1e-10) × the data's RMS feature s.d. before the neighbour search (`break_ties`),
as Kraskov et al. (2004) and scikit-learn do; the value moves by far less than its standard
error on continuous data. The Euclidean entropy and divergence estimators add no noise: k or
more exact duplicates of a point mean the data have a discrete part, whose differential
entropy is −∞; the estimate says so (status "degenerate") instead of reporting a value that
would only reflect an arbitrary jitter scale.

Rank. Entropy and divergence estimates first measure the data's numerical rank
(`rank.numerical_rank`): a rank-deficient sample has differential entropy −∞.

Sample size. An entropy from n < max(100·d, 4·2^d) samples and a divergence or MI from
n < max(100·d, 50·2^d) (d: the joint dimension; for KL n is the smaller sample) are flagged
"biased" (`entropy_min_samples`, `joint_min_samples`). Calibrated with
``benchmarks/interval_coverage.py`` on Gaussians: at d = 10 the kNN entropy interval from n = 2,000
covered 87 %, the kNN KL and KSG ones far less, and at n = 5,000 the kNN KL (10-d) was still
off by 0.06–0.4 nats and KSG (5 + 5 dims) by 10–30 %, many standard errors; at d = 2 every
interval covered >= 90 % from n = 500. The exponential form is the conservative reading of
kNN's curse of dimensionality; d between 2 and 10 was not measured.
"""

from __future__ import annotations

import math

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators.estimate import EstimationError, Flag, Notes
from infoprobe.estimators.neighbors import count_within, knn_distances, ksg_search
from infoprobe.estimators.rank import divergence_rank_notes, rank_notes, sample_size_flag

__all__ = [
    "DEFAULT_K",
    "TIE_NOISE",
    "break_ties",
    "entropy_min_samples",
    "joint_min_samples",
    "knn_distances",
    "knn_entropy",
    "knn_kl",
    "ksg_ceiling",
    "ksg_label_mi",
    "ksg_mi",
]
#: tie-breaking noise s.d., relative to the data's RMS feature s.d. (`break_ties`)
TIE_NOISE = 1e-10
DEFAULT_K = 3


def ksg_ceiling(n: int, k: int = DEFAULT_K) -> float:
    """ψ(n) − ψ(k): the KSG estimate when X and Y determine each other (ties broken), its largest value."""
    digamma = torch.special.digamma
    return float(digamma(torch.tensor(float(n), dtype=torch.float64)) - digamma(torch.tensor(float(k), dtype=torch.float64)))


def _check_k(k: int, n: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InfoprobeError(f"Expected a positive integer k, got {k!r}; pass e.g. k=3")
    if n < k + 1:
        raise EstimationError(f"Expected at least k+1 = {k + 1} samples in {what}, got {n}; pass more samples or lower k")


def break_ties(x: torch.Tensor, *, seed: int, stream: int = 0) -> torch.Tensor:
    """``x`` in float64 plus seeded Gaussian noise of s.d. ``TIE_NOISE`` × s, s = x's RMS feature s.d.

    As Kraskov et al. (2004, sec. II) and scikit-learn's ``mutual_info_*`` do, every point is
    moved by a tiny random amount so that no two max-norm distances are equal: quantised data
    (8-bit images) otherwise tie massively and the strict / non-strict counts of the KSG
    estimators break down (I(X;X) above its ceiling, negative I(X;labels)). s is
    sqrt(mean_j Var(x_j)), one scale for all features (1 for constant data), so the noise is
    relative to the data and does not depend on the basis. ``stream`` separates the noise of
    several arrays drawn with one seed.
    """
    x = x.to(torch.float64)
    scale = float(x.var(0, unbiased=False).mean().sqrt()) if x.shape[0] > 1 else 0.0
    scale = scale if scale > 0 else 1.0
    generator = torch.Generator().manual_seed(seed * 1_000_003 + stream)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device)
    return x + TIE_NOISE * scale * noise


def entropy_min_samples(d: int) -> float:
    """Samples below which a kNN entropy is flagged "biased": max(100·d, 4·2^d)."""
    return max(100.0 * d, 4.0 * 2.0 ** min(d, 1000))  # 2^1000 already exceeds any n


def joint_min_samples(d: int) -> float:
    """Samples below which a kNN divergence or KSG/Ross MI is flagged "biased": max(100·d, 50·2^d)."""
    return max(100.0 * d, 50.0 * 2.0 ** min(d, 1000))


def _entropy_flag(n: int, d: int) -> list[Flag]:
    return sample_size_flag(n, d, minimum=entropy_min_samples(d), rule="max(100·d, 4·2^d)",
                            what="the kNN entropy is biased by more than its interval allows")


def _joint_flag(n: int, d: int) -> list[Flag]:
    return sample_size_flag(n, d, minimum=joint_min_samples(d), rule="max(100·d, 50·2^d)",
                            what="kNN divergence and mutual-information estimates are biased at this "
                                 "sample size and dimension")


def _digamma(value: float) -> float:
    return float(torch.special.digamma(torch.tensor(float(value), dtype=torch.float64)))


def knn_entropy(x: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, Notes]:
    """Kozachenko–Leonenko differential entropy (nats), Euclidean k-th neighbour distances.

    −∞ ("degenerate") when the data are rank-deficient (see `rank.rank_notes`) or when some
    point has k or more exact duplicates (a discrete part: the differential entropy is −∞).
    ``seed`` is unused (kept so that all kNN methods take the same options).
    """
    n, d = x.shape
    _check_k(k, n, "x")
    degenerate, notes = rank_notes(x)
    if degenerate:
        return -math.inf, notes
    eps = knn_distances(x, x, k, exclude_self=True)
    zeros = int((eps == 0).sum())
    if zeros:
        return -math.inf, [*notes, Flag("degenerate", _duplicates(zeros, "x"))]
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    value = _digamma(n) - _digamma(k) + log_unit_ball + d * float(torch.log(eps).mean())
    return value, [*notes, *_entropy_flag(n, d)]


def _duplicates(zeros: int, what: str) -> str:
    return (f"{zeros} points of {what} have k or more exact duplicates (zero k-th neighbour distance): "
            "the data have a discrete part, whose differential entropy is −∞")


def knn_kl(p: torch.Tensor, q: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, Notes]:
    """Wang–Kulkarni–Verdú kNN estimate of KL(p ‖ q) in nats; n ≠ m allowed.

    +∞ ("degenerate") when p or q is rank-deficient or when points of p have k or more exact
    duplicates in p but not in q (p has atoms the q sample lacks); NaN ("invalid") when the
    q sample has k or more exact copies of a point of p (both have a discrete part: the
    estimator, made for densities, does not apply). ``seed`` is unused.
    """
    n, d = p.shape
    m = q.shape[0]
    _check_k(k, n, "p")
    if m < k:
        raise EstimationError(f"Expected at least k = {k} samples in q, got {m}; pass more samples or lower k")
    degenerate, notes = divergence_rank_notes(p, q)
    if degenerate:
        return math.inf, notes
    rho = knn_distances(p, p, k, exclude_self=True)
    nu = knn_distances(p, q, k, exclude_self=False)
    if bool((nu == 0).any()):
        return math.nan, [*notes, Flag("invalid", f"{int((nu == 0).sum())} points of p have k or more exact "
                                                  "copies in q: p and q have discrete parts, which the kNN "
                                                  "divergence (made for densities) cannot compare")]
    if bool((rho == 0).any()):
        return math.inf, [*notes, Flag("degenerate", _duplicates(int((rho == 0).sum()), "p")
                                       + " and q's sample has no such atoms, so KL(p ‖ q) is +∞")]
    value = d * float((torch.log(nu) - torch.log(rho)).mean()) + math.log(m / (n - 1))
    return value, [*notes, *_joint_flag(min(n, m), d)]


def _ksg_counts(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """(3, n): joint k-th neighbour max-norm distance ε, n_x and n_y (strictly inside ε)."""
    counts = ksg_search(x, y, k)
    own = (counts[0] > 0).to(torch.float64)  # a point is strictly inside its own ε when ε > 0
    return torch.stack([counts[0], counts[1] - own, counts[2] - own])


def ksg_mi(x: torch.Tensor, y: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, Notes]:
    """Kraskov–Stögbauer–Grassberger mutual information I(X;Y) (estimator 1, max-norm), nats.

    Ties are always broken first with `break_ties` (seeded by ``seed``), so the value cannot
    exceed its ceiling ψ(n) − ψ(k) (`ksg_ceiling`).
    """
    n = x.shape[0]
    _check_k(k, n, "x")
    counts = _ksg_counts(break_ties(x, seed=seed, stream=0), break_ties(y, seed=seed, stream=1), k)
    digamma = torch.special.digamma
    value = _digamma(k) + _digamma(n) - float((digamma(counts[1] + 1) + digamma(counts[2] + 1)).mean())
    return value, [*_joint_flag(n, x.shape[1] + y.shape[1])]


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


def ksg_label_mi(x: torch.Tensor, labels: torch.Tensor, *, k: int = DEFAULT_K, seed: int = 0) -> tuple[float, Notes]:
    """I(X;Y) between continuous ``x`` and integer class ``labels`` (Ross 2014), in nats.

    Ties in ``x`` are always broken first with `break_ties` (seeded by ``seed``), as
    scikit-learn's ``mutual_info_classif`` does.
    """
    n = x.shape[0]
    _check_k(k, n, "x")
    if int(torch.unique(labels, return_counts=True)[1].max()) < 2:
        raise EstimationError(
            f"Expected at least one class with 2 or more samples for I(X; labels), got {n} samples in "
            f"{int(torch.unique(labels).numel())} classes; pass more samples per class"
        )
    terms = _ross_terms(break_ties(x, seed=seed), labels, k)
    n_kept = terms.shape[1]
    class_sizes = torch.unique(labels, return_counts=True)[1]
    class_sizes = class_sizes[class_sizes > 1].to(torch.float64)
    digamma = torch.special.digamma
    # ⟨ψ(N_y)⟩ over points = Σ_y (N_y / n') ψ(N_y)
    mean_psi_class = float((class_sizes * digamma(class_sizes)).sum() / n_kept)
    value = _digamma(n_kept) + float(digamma(terms[1]).mean()) - mean_psi_class - float(digamma(terms[2]).mean())
    notes: Notes = [*_joint_flag(n, x.shape[1])]
    if n_kept < n:
        notes.append(f"{n - n_kept} samples of classes with a single member were left out")
    return value, notes
