"""noisy_channel_mi and histogram_kl_terms against closed forms and scipy; interval coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.special import logsumexp

from infoprobe.errors import InfoprobeError
from infoprobe.estimators import entropy, histogram_kl_terms, kl_divergence, noisy_channel_mi


def test_noisy_channel_matches_the_limit_of_the_bound_for_a_gaussian_layer() -> None:
    # T ~ N(0, I_d), σ² = 1: as n → ∞ the pairwise bound tends to
    # ½·log det(I + Σ/σ²) + ½·tr(Σ(Σ + σ²I)⁻¹) (Gaussian integrals), above the exact
    # I(T; T + ε) = ½·log det(I + Σ/σ²). Measured within 0.02 nats at n = 2,000; tolerance 0.05.
    rng = np.random.default_rng(0)
    d, n = 5, 2000
    t = rng.standard_normal((n, d))
    radius = math.sqrt(((t - t.mean(0)) ** 2).sum(1).mean())
    scale = 1.0 / radius  # σ = scale·r = 1
    est = noisy_channel_mi(t, scale=scale)
    exact = 0.5 * d * math.log(2.0)
    limit = exact + 0.5 * d * 0.5
    assert est.value == pytest.approx(limit, abs=0.05)
    assert est.value > exact and est.status == "ok" and est.ceiling == pytest.approx(math.log(n))


@pytest.mark.parametrize("scale", [0.1, 0.3, 1.0])
def test_noisy_channel_is_an_upper_bound_of_the_exact_1d_value(scale: float) -> None:
    # X uniform on n inputs, T = t(X) in 1-D: I(X; T + ε) = h(mixture of n Gaussians) − h(ε),
    # by quadrature. The pairwise bound is above it (by 0.25–0.47 nats here).
    rng = np.random.default_rng(1)
    n = 300
    t = rng.standard_normal(n)
    sigma = scale * math.sqrt(((t - t.mean()) ** 2).mean())
    grid = np.linspace(t.min() - 10 * sigma, t.max() + 10 * sigma, 20_001)
    log_p = logsumexp(-((grid[:, None] - t[None, :]) ** 2) / (2 * sigma**2), axis=1) - math.log(n)
    log_p -= 0.5 * math.log(2 * math.pi * sigma**2)
    exact = -np.trapezoid(np.exp(log_p) * log_p, grid) - 0.5 * math.log(2 * math.pi * math.e * sigma**2)
    est = noisy_channel_mi(t[:, None], scale=scale)
    assert exact < est.value < exact + 0.5


def test_noisy_channel_separated_clusters_constant_layer_and_scale_invariance() -> None:
    rng = np.random.default_rng(2)
    centres = np.repeat(np.arange(4) * 100.0, 50)[:, None] * np.ones((1, 3))
    t = centres + 1e-3 * rng.standard_normal((200, 3))
    assert noisy_channel_mi(t, scale=0.1).value == pytest.approx(math.log(4), abs=1e-6)  # tight here
    assert noisy_channel_mi(7.0 * t, scale=0.1).value == pytest.approx(noisy_channel_mi(t, scale=0.1).value, abs=1e-9)
    constant = noisy_channel_mi(np.ones((50, 3)))
    assert constant.value == 0.0 and constant.status == "ok"
    tiny = noisy_channel_mi(rng.standard_normal((100, 20)), scale=1e-3)  # every input resolved
    assert tiny.status == "at_ceiling" and tiny.value == pytest.approx(math.log(100), abs=1e-6)
    with pytest.raises(InfoprobeError, match="positive noise scale, got 0"):
        noisy_channel_mi(t, scale=0)


def test_noisy_channel_subsamples_from_one_distance_matrix_equal_one_call_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from infoprobe.estimators import kde, registry

    rng = np.random.default_rng(4)
    t = torch.from_numpy(np.vstack([rng.standard_normal((200, 6)) * [1, 2, 3, 1, 1, 5], np.ones((40, 6))]))
    g = torch.Generator().manual_seed(1)
    subsets = [torch.randperm(240, generator=g)[:120] for _ in range(12)] + [torch.arange(200, 240)]
    for scale in (0.1, 0.3, 1.0):
        fast = kde.relative_noise_terms(t, subsets, scale=scale)
        slow = [registry._noisy_channel(t[s], scale=scale)[0] for s in subsets]
        np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)
    assert fast[-1] == 0.0  # a constant subset: T + ε is independent of X
    # the public estimate's interval is the same whichever way the resamples are computed
    products = []
    addmm = torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: products.append(1) or addmm(*a, **k))
    monkeypatch.setattr(kde, "SUBSET_MIN_D", 1)
    with_matrix = noisy_channel_mi(t, scale=0.3, ci=0.95, n_boot=20)
    assert len(products) == 2  # the estimate, then one matrix for all 20 half-samples
    monkeypatch.setattr(kde, "SUBSET_MATRIX_MAX", 0)
    one_by_one = noisy_channel_mi(t, scale=0.3, ci=0.95, n_boot=20)
    assert len(products) == 2 + 21
    assert with_matrix.value == one_by_one.value
    np.testing.assert_allclose(with_matrix.ci, one_by_one.ci, rtol=1e-9)


@pytest.mark.parametrize("edges", ["separate", "shared"])
def test_histogram_kl_terms_sum_to_the_kl_and_match_scipy(edges: str) -> None:
    rng = np.random.default_rng(3)
    p = rng.standard_normal((64, 4, 7, 7)).astype(np.float32)
    q = (1.5 * rng.standard_normal((64, 196)) + 0.3).astype(np.float32)
    anatomy = histogram_kl_terms(p, q, bins=50, edges=edges, smoothing=1.0)
    assert anatomy.terms.shape == (50,) and anatomy.p_edges.shape == (51,)
    kl = kl_divergence(p, q, method="histogram", bins=50, edges=edges, smoothing=1.0)
    assert anatomy.value == pytest.approx(kl.value, abs=1e-12)
    if edges == "separate":
        pc, _ = np.histogram(p.ravel(), bins=50)
        qc, _ = np.histogram(q.ravel(), bins=50)
    else:
        lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
        pc, _ = np.histogram(p.ravel(), bins=50, range=(lo, hi))
        qc, _ = np.histogram(q.ravel(), bins=50, range=(lo, hi))
    assert anatomy.value == pytest.approx(scipy.stats.entropy(pc + 1.0, qc + 1.0), abs=1e-10)
    assert torch.allclose(anatomy.p_probabilities, torch.from_numpy((pc + 1.0) / (pc + 1.0).sum()))
    assert torch.equal(anatomy.p_edges, anatomy.q_edges) == (edges == "shared")


def test_histogram_kl_terms_without_smoothing_are_infinite_where_q_is_empty() -> None:
    anatomy = histogram_kl_terms(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 0.0, 3.0, 3.0]),
                                 bins=3, edges="shared", smoothing=0.0)
    assert math.isinf(anatomy.terms[1]) and anatomy.value == math.inf
    with pytest.raises(InfoprobeError, match="edges='shared' or 'separate', got 'own'"):
        histogram_kl_terms(np.zeros(3), np.ones(3), edges="own")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gaussian", "knn"])
def test_interval_coverage_on_a_small_cell(method: str) -> None:
    # d = 2, n = 500, 40 data sets, nominal 95 %: the interval must contain the closed-form
    # entropy in >= 33 of 40 (P(fewer) < 1.5 % if the true coverage is 95 %).
    truth = math.log(2 * math.pi * math.e)
    covered = 0
    for seed in range(40):
        x = np.random.default_rng(seed).standard_normal((500, 2))
        est = entropy(x, method=method, ci=0.95, n_boot=30, seed=seed)
        assert est.status == "ok"
        covered += est.ci[0] <= truth <= est.ci[1]
    assert covered >= 33
