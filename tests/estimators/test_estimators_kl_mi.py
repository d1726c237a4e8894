"""KL divergence and mutual information against closed forms, plug-in values and references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

import infoprobe
from infoprobe.estimators import kl_divergence, mutual_information


def gauss_kl(d: int, mu: float, var: float) -> float:
    """KL(N(0, I_d) ‖ N(mu·1, var·I_d))."""
    return 0.5 * (d / var + d * mu**2 / var - d + d * math.log(var))


def sample(n: int, d: int, seed: int, *, mu: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return mu + scale * torch.randn(n, d, generator=g, dtype=torch.float64)


def test_knn_kl_between_gaussians_unequal_sizes() -> None:
    # 1-D, n = 10,000 vs m = 6,000 (n ≠ m): tolerance 0.02 nats (s.d. about 0.01 here).
    p, q = sample(10_000, 1, 1), sample(6_000, 1, 2, mu=0.5, scale=1.2)
    truth = gauss_kl(1, 0.5, 1.44)
    assert abs(kl_divergence(p, q, k=3).value - truth) < 0.02
    # swapping the sizes must not bias it either (the log(m/(n−1)) term)
    p2, q2 = sample(4_000, 1, 3), sample(12_000, 1, 4, mu=0.5, scale=1.2)
    assert abs(kl_divergence(p2, q2, k=3).value - truth) < 0.03


def test_gaussian_kl_closed_form() -> None:
    # d = 5, n = m = 20,000: tolerance 3 % (fit noise).
    p, q = sample(20_000, 5, 5), sample(20_000, 5, 6, mu=0.5, scale=1.2)
    truth = gauss_kl(5, 0.5, 1.44)
    assert kl_divergence(p, q, method="gaussian").value == pytest.approx(truth, rel=0.03)


def test_knn_kl_matches_ckdtree_transcription() -> None:
    p, q = sample(700, 4, 7), sample(500, 4, 8, mu=0.3)
    k = 2
    rho = cKDTree(p.numpy()).query(p.numpy(), k=k + 1)[0][:, k]
    nu = cKDTree(q.numpy()).query(p.numpy(), k=k)[0][:, k - 1]
    ref = 4 * np.mean(np.log(nu / rho)) + math.log(500 / 699)
    assert kl_divergence(p, q, k=k).value == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("method", ["knn", "gaussian", "histogram"])
def test_kl_of_a_distribution_with_itself_is_near_zero(method: str) -> None:
    p, p2 = sample(3000, 2, 9), sample(3000, 2, 10)
    assert abs(kl_divergence(p, p2, method=method).value) < 0.03
    if method == "histogram":
        assert kl_divergence(p, p, method=method).value == pytest.approx(0.0, abs=1e-12)


def test_histogram_kl_exact_plugin_shared_and_separate_edges() -> None:
    rng = np.random.default_rng(2)
    p = rng.integers(0, 4, size=300).astype(float)
    q = rng.integers(0, 4, size=500).astype(float)
    pc, qc = np.bincount(p.astype(int), minlength=4), np.bincount(q.astype(int), minlength=4)
    assert kl_divergence(p, q, method="histogram", bins=4, smoothing=0.0).value == pytest.approx(
        scipy.stats.entropy(pc, qc), abs=1e-12
    )
    q_shifted = q + 10  # own-range bins line up with p's again; shared bins would not overlap
    assert kl_divergence(p, q_shifted, method="histogram", bins=4, edges="separate", smoothing=0.0).value == pytest.approx(
        scipy.stats.entropy(pc, qc), abs=1e-12
    )
    shared = kl_divergence(p, q_shifted, method="histogram", bins=4, smoothing=0.0)
    assert math.isinf(shared.value) and shared.warnings


def callahan_kl_transcription(a: np.ndarray, b: np.ndarray) -> float:
    pa, _ = np.histogram(a.flatten(), bins=100)
    pb, _ = np.histogram(b.flatten(), bins=100)
    return float(scipy.stats.entropy(pa + 1, pb + 1))


def test_callahan2021_kl_preset_uses_each_arrays_own_range() -> None:
    rng = np.random.default_rng(12)
    previous = rng.standard_normal((64, 4, 14, 14)).astype(np.float32)
    current = (3 * rng.random((64, 784)) + 5).astype(np.float32)
    est = infoprobe.kl_divergence(previous, current, preset="callahan2021")
    assert est.value == pytest.approx(callahan_kl_transcription(previous, current), abs=1e-12)
    # layers of different widths are fine for the pooled histogram
    narrow = rng.exponential(size=(64, 20))
    assert infoprobe.kl_divergence(current, narrow, preset="callahan2021").value == pytest.approx(
        callahan_kl_transcription(current, narrow), abs=1e-12
    )


def correlated(n: int, d: int, rho: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    x = sample(n, d, seed)
    y = rho * x + math.sqrt(1 - rho**2) * sample(n, d, seed + 100)
    return x, y, -0.5 * d * math.log(1 - rho**2)


def test_ksg_mi_correlated_gaussian_d1() -> None:
    # d = 1, ρ = 0.8, n = 5,000: KSG is nearly unbiased in 1-D; tolerance 3 %.
    x, y, truth = correlated(5000, 1, 0.8, seed=1)
    assert mutual_information(x, y).value == pytest.approx(truth, rel=0.03)


def test_ksg_mi_correlated_gaussian_d5() -> None:
    # d = 5 + 5, ρ = 0.5 per coordinate, n = 5,000: KSG underestimates in 10-D joint space
    # (Kraskov et al. 2004 report growing negative bias with dimension); measured ≈ −18 %,
    # tolerance −25 % / +5 %. The Gaussian fit is unbiased here; its s.d. is about 0.013 nats,
    # tolerance 0.04 nats.
    x, y, truth = correlated(5000, 5, 0.5, seed=2)
    ksg = mutual_information(x, y).value
    assert 0.75 * truth < ksg < 1.05 * truth
    assert mutual_information(x, y, method="gaussian").value == pytest.approx(truth, abs=0.04)


def test_ksg_matches_ckdtree_transcription() -> None:
    x, y, _ = correlated(600, 2, 0.6, seed=3)
    xn, yn, k = x.numpy(), y.numpy(), 4
    joint = np.hstack([xn, yn])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf)[0][:, k]
    r = np.nextafter(eps, 0)
    nx = cKDTree(xn).query_ball_point(xn, r, p=np.inf, return_length=True) - 1
    ny = cKDTree(yn).query_ball_point(yn, r, p=np.inf, return_length=True) - 1
    ref = digamma(k) + digamma(600) - np.mean(digamma(nx + 1) + digamma(ny + 1))
    assert mutual_information(x, y, k=k).value == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("method", ["ksg", "gaussian", "binned", "kde", "renyi"])
def test_mi_is_symmetric(method: str) -> None:
    x, y, _ = correlated(400, 2, 0.7, seed=4)
    assert mutual_information(x, y, method=method).value == pytest.approx(
        mutual_information(y, x, method=method).value, abs=1e-9
    )


def test_binned_mi_on_discrete_data_is_exact_plugin() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(1000, 1))
    y = (x + rng.integers(0, 2, size=(1000, 1))) % 4
    joint = np.histogram2d(x.ravel(), y.ravel(), bins=4)[0]
    pxy = joint / joint.sum()
    px, py = pxy.sum(1), pxy.sum(0)
    nz = pxy > 0
    exact = float(np.sum(pxy[nz] * np.log(pxy[nz] / np.outer(px, py)[nz])))
    assert mutual_information(x.astype(float), y.astype(float), method="binned", bins=4).value == pytest.approx(exact, abs=1e-12)
    # integer labels: the same number
    assert mutual_information(x.astype(float), y.ravel(), method="binned", bins=4).value == pytest.approx(exact, abs=1e-12)


def test_mi_with_labels_gaussian_mixture() -> None:
    # two classes, well separated (means ±5 in 1-D): I(X;Y) → H(Y) = log 2.
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=4000)
    x = rng.standard_normal((4000, 1)) + 10.0 * labels[:, None] - 5.0
    for method in ("ksg", "kde"):  # not "gaussian": a Gaussian fit to the bimodal H(X) is wrong
        est = mutual_information(x, labels, method=method)
        assert est.value == pytest.approx(math.log(2), abs=0.03), method
    independent = mutual_information(rng.standard_normal((4000, 2)), labels, method="ksg")
    assert abs(independent.value) < 0.02


def test_renyi_mi_with_labels_uses_delta_kernel() -> None:
    labels = np.repeat(np.arange(4), 25)
    x = labels[:, None] * 100.0 + np.random.default_rng(5).standard_normal((100, 1))
    # perfectly separated classes: A_x∘A_y = A_x, so I = S(A_y) = log 4
    assert mutual_information(x, labels, method="renyi", gamma=0.05).value == pytest.approx(math.log(4), abs=1e-6)


def test_mi_ci_pairs_samples() -> None:
    x, y, _ = correlated(500, 1, 0.9, seed=6)
    est = mutual_information(x, y, ci=0.9, n_boot=20)
    assert est.ci is not None and est.ci[0] < est.value < est.ci[1]
    assert est.ci[0] > 0.5  # pairs kept together: MI does not collapse to 0


def test_ledoit_wolf_shrinkage_matches_scikit_learn() -> None:
    from sklearn.covariance import ledoit_wolf

    x = sample(40, 30, 13) @ torch.diag(torch.linspace(0.5, 2.0, 30, dtype=torch.float64))
    shrunk, _ = ledoit_wolf(x.numpy())
    truth = 0.5 * 30 * math.log(2 * math.pi * math.e) + 0.5 * np.linalg.slogdet(shrunk)[1]
    est = infoprobe.entropy(x, method="gaussian", shrinkage="ledoit-wolf")
    assert est.value == pytest.approx(truth, abs=1e-9)
