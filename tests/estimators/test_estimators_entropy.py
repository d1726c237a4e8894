"""Entropy estimators against closed forms, exact plug-in values and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

import infoprobe
from infoprobe.estimators import Estimate, entropy


def gaussian_truth(cov: torch.Tensor) -> float:
    d = cov.shape[0]
    return 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * float(torch.logdet(cov))


def correlated_gaussian(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d) + 2 * torch.eye(d, dtype=torch.float64)
    cov = a @ a.T
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ a.T + 3.0
    return x, cov


@pytest.mark.parametrize("d", [1, 5, 10])
def test_gaussian_entropy_knn_and_gaussian(d: int) -> None:
    # n = 10,000; issue tolerances: kNN within 2 %, Gaussian fit within 0.5 %
    # (statistical s.d. of the Gaussian fit is about sqrt(d/(2n)) nats, i.e. < 0.2 % here).
    x, cov = correlated_gaussian(10_000, d, seed=d)
    truth = gaussian_truth(cov)
    knn = entropy(x, method="knn", k=3)
    fit = entropy(x, method="gaussian")
    assert abs(knn.value - truth) <= 0.02 * abs(truth)
    assert abs(fit.value - truth) <= 0.005 * abs(truth)
    assert knn.n == 10_000 and knn.d == d and knn.units == "nats"


def test_uniform_box_knn() -> None:
    # uniform on [−1,1]×[0,0.5]: H = log(area) = 0 nats. The kNN estimator is biased upwards at
    # the box boundary (about +0.015 nats at n = 10,000 in 2-D, +0.09 in 3-D at n = 5,000),
    # hence tolerance 0.03 nats here.
    g = torch.Generator().manual_seed(3)
    low = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    width = torch.tensor([2.0, 0.5], dtype=torch.float64)
    x = low + width * torch.rand(10_000, 2, generator=g, dtype=torch.float64)
    assert abs(entropy(x).value - math.log(1.0)) < 0.03


@pytest.mark.parametrize("method", ["knn", "gaussian"])
def test_scaling_shifts_entropy_by_d_log_a(method: str) -> None:
    x, _ = correlated_gaussian(2000, 4, seed=7)
    a = 3.7
    h, h_scaled = entropy(x, method=method).value, entropy(a * x, method=method).value
    assert h_scaled - h == pytest.approx(4 * math.log(a), abs=1e-9)


def test_bits_are_nats_over_ln2() -> None:
    x, _ = correlated_gaussian(1000, 3, seed=2)
    nats, bits = entropy(x, ci=0.9, n_boot=10), entropy(x, base=2, ci=0.9, n_boot=10)
    assert bits.value == pytest.approx(nats.value / math.log(2), rel=1e-12)
    assert bits.ci == pytest.approx((nats.ci[0] / math.log(2), nats.ci[1] / math.log(2)), rel=1e-12)
    assert bits.units == "bits"


def test_histogram_on_discrete_data_is_exact_plugin() -> None:
    rng = np.random.default_rng(0)
    values = rng.choice(5, size=(400, 3), p=[0.1, 0.2, 0.3, 0.25, 0.15])
    counts = np.bincount(values.ravel(), minlength=5)
    p = counts / counts.sum()
    exact = -np.sum(p * np.log(p))
    est = entropy(values, method="histogram", bins=5)
    assert est.value == pytest.approx(exact, abs=1e-12)
    mm = entropy(values, method="histogram", bins=5, correction="miller-madow")
    assert mm.value == pytest.approx(exact + 4 / (2 * values.size), abs=1e-12)
    smoothed = entropy(values, method="histogram", bins=5, smoothing=2.0)
    assert smoothed.value == pytest.approx(scipy.stats.entropy(counts + 2.0), abs=1e-12)


def test_histogram_matches_numpy_binning_float32() -> None:
    x = torch.randn(3000, 7, generator=torch.Generator().manual_seed(5)).float()
    counts, _ = np.histogram(x.numpy().ravel(), bins=37)
    assert entropy(x, method="histogram", bins=37).value == pytest.approx(scipy.stats.entropy(counts), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_binning_matches_numpy_on_edges_and_outside(dtype: torch.dtype) -> None:
    # the bucketize path (CUDA) and numpy's binning (CPU) count alike: 8-bit values that fall on
    # edges, the last edge counted in the last bin, values outside the range dropped
    from infoprobe.estimators.histogram import _bucketize_counts, histogram_counts

    values = torch.cat([torch.arange(256, dtype=torch.float64) / 255, torch.tensor([-0.1, 1.0, 1.5])]).to(dtype)
    for bins, (lo, hi) in ((100, (0.0, 1.0)), (256, (0.0, 1.0)), (7, (0.2, 0.6))):
        edges = torch.from_numpy(np.histogram_bin_edges(np.array([lo, hi], dtype=values.numpy().dtype), bins=bins))
        expected = np.histogram(values.numpy().astype(edges.numpy().dtype), bins=edges.numpy())[0]
        assert np.array_equal(_bucketize_counts(values.to(edges.dtype), edges).numpy(), expected)
        assert np.array_equal(histogram_counts(values, edges).numpy(), expected)


def test_binned_on_discrete_patterns_is_exact_plugin() -> None:
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 3, size=(500, 2))
    _, counts = np.unique(rows, axis=0, return_counts=True)
    exact = scipy.stats.entropy(counts)
    assert entropy(rows, method="binned", bins=3).value == pytest.approx(exact, abs=1e-12)


def callahan_entropy_transcription(a: np.ndarray) -> float:
    counts, _ = np.histogram(a.flatten(), bins=100)
    return float(scipy.stats.entropy(counts + 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_callahan2021_entropy_preset(dtype: type) -> None:
    rng = np.random.default_rng(11)
    layers = [rng.standard_normal((64, 8, 4, 4)), rng.exponential(size=(64, 20)), rng.random((10, 784)) ** 3]
    for layer in layers:
        layer = layer.astype(dtype)
        est = infoprobe.entropy(layer, preset="callahan2021")
        assert est.value == pytest.approx(callahan_entropy_transcription(layer), abs=1e-12)
        assert est.method == "histogram[callahan2021]"
        assert infoprobe.entropy(torch.from_numpy(layer), preset="callahan2021").value == est.value


def test_kde_matches_direct_formula() -> None:
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    var = 0.5
    d2 = torch.cdist(x, x) ** 2
    term = -torch.log(torch.exp(-d2 / (2 * var)).mean(1)).mean()
    direct = 2 * math.log(2 * math.pi * math.e * var) + float(term)
    assert entropy(x, method="kde", noise_var=var).value == pytest.approx(direct, abs=1e-10)


def test_renyi_limits_and_direct_formula() -> None:
    n = 50
    far = torch.arange(n, dtype=torch.float64)[:, None] * 1e3 * torch.ones(1, 2, dtype=torch.float64)
    far[:, 1] = torch.randn(n, dtype=torch.float64)  # distinct, well separated after standardising
    far[:, 0] *= 100
    spread = entropy(far, method="renyi", gamma=1e-3)
    assert spread.value == pytest.approx(math.log(n), abs=1e-9)
    assert spread.status == "at_ceiling" and spread.ceiling == pytest.approx(math.log(n))
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    z = (x - x.mean(0)) / x.std(0)
    sigma = 2.0 * 200 ** (-1 / 7)
    a = torch.exp(-torch.cdist(z, z) ** 2 / (2 * sigma**2)) / 200
    lam = torch.linalg.eigvalsh(a).clamp(min=0)
    direct = float(torch.log((lam[lam > 0] ** 1.5).sum())) / (1 - 1.5)
    assert entropy(x, method="renyi", alpha=1.5, gamma=2.0).value == pytest.approx(direct, abs=1e-9)


def test_renyi_high_dimension_flushes_without_changing_value() -> None:
    x = torch.randn(300, 784, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x[1] = x[0] + 1e-3  # one coupled pair, everything else isolated
    est = entropy(x, method="renyi")
    assert math.isfinite(est.value) and est.value <= math.log(300) + 1e-12


def test_knn_duplicates_are_degenerate() -> None:
    # 100 copies of one point: a discrete part, whose differential entropy is −∞
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x[:100] = x[0]
    est = entropy(x, k=3)
    assert est.value == -math.inf and est.status == "degenerate" and "exact duplicates" in est.reason
    assert est.text() == "−∞ [D]"


def test_knn_kl_duplicates_are_flagged_and_ksg_breaks_ties() -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(300, 2, generator=g, dtype=torch.float64)
    y = torch.randn(300, 3, generator=g, dtype=torch.float64)
    x[:50], y[:50] = x[0], y[0]
    # atoms in p that q's sample lacks: KL(p ‖ q) = +∞
    kl = infoprobe.kl_divergence(x, torch.randn(200, 2, generator=g, dtype=torch.float64), k=3)
    assert kl.value == math.inf and kl.status == "degenerate" and "exact duplicates" in kl.reason
    # atoms in both: the kNN divergence does not apply
    both = infoprobe.kl_divergence(x, x[:200].clone(), k=3)
    assert math.isnan(both.value) and both.status == "invalid" and "discrete parts" in both.reason
    # KSG breaks the ties with seeded noise: finite, reproducible, within [0, ψ(n) − ψ(k)]
    mi = infoprobe.mutual_information(x, y, k=3)
    assert 0 <= mi.value <= mi.ceiling and mi.value == infoprobe.mutual_information(x, y, k=3).value


def test_knn_high_dimension_small_n_is_biased() -> None:
    x = torch.randn(200, 50, generator=torch.Generator().manual_seed(1))
    est = entropy(x)
    assert est.status == "biased" and "n = 200 < " in est.reason and math.isfinite(est.value)


def test_no_interval_around_an_estimate_flagged_biased_or_degenerate() -> None:
    # the spread of resamples of a number known to be off would read as a precision it lacks
    x = torch.randn(200, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    biased = entropy(x, ci=0.95, n_boot=10)
    assert biased.status == "biased" and biased.ci is None and biased.level is None
    degenerate = entropy(torch.cat([x[:, :3], x[:, :3]], 1), ci=0.95, n_boot=10)
    assert degenerate.status == "degenerate" and degenerate.ci is None
    ok = entropy(x[:, :2], ci=0.95, n_boot=10)
    assert ok.status == "ok" and ok.ci is not None and ok.ci[0] < ok.value < ok.ci[1]


def test_negative_estimate_of_a_nonnegative_quantity_keeps_its_interval() -> None:
    # the interval is what tells "consistent with 0" (biased, read as ≈ 0) from "invalid"
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((300, 1)), rng.standard_normal((300, 1))
    est = infoprobe.mutual_information(x, y, ci=0.95, n_boot=10)
    assert est.value < 0, est  # KSG of independent samples: -0.086 here
    assert est.ci is not None and est.status in ("biased", "invalid")


def test_estimate_behaves_like_a_number() -> None:
    est = entropy(np.random.default_rng(0).standard_normal((300, 2)), method="gaussian")
    assert isinstance(est, Estimate)
    assert float(est) == est.value and f"{est:.3f}" == f"{est.value:.3f}"
    with pytest.raises(AttributeError, match="cannot assign"):
        est.value = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("method", ["knn", "gaussian", "histogram", "binned", "kde", "renyi"])
def test_confidence_interval_brackets_value(method: str) -> None:
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    est = entropy(x, method=method, ci=0.95, n_boot=20, seed=3)
    assert est.ci is not None and est.ci[0] <= est.ci[1]
    assert est.ci[0] - 0.5 < est.value < est.ci[1] + 0.5
    assert entropy(x, method=method, ci=0.95, n_boot=20, seed=3).ci == est.ci


def test_available_lists_every_method_with_reference() -> None:
    table = infoprobe.estimators.available()
    assert {"histogram", "binned", "gaussian", "knn", "kde", "renyi", "ksg"} <= set(table)
    assert set(infoprobe.estimators.available("kl_divergence")) == {"histogram", "knn", "gaussian"}
    for methods in table.values():
        for m in methods:
            assert m.reference and m.description and m.quantity in ("entropy", "kl_divergence", "mutual_information")


def test_gaussian_bias_correction_is_unbiased_at_small_n() -> None:
    # n = 12, d = 4, 1,000 replicates: the plain plug-in is about 0.5 nats low; the corrected
    # mean must be within 0.05 nats (about 3 standard errors) of the truth.
    from infoprobe.estimators.gaussian import gaussian_entropy

    g = torch.Generator().manual_seed(0)
    truth = 0.5 * 4 * math.log(2 * math.pi * math.e)
    samples = [torch.randn(12, 4, generator=g, dtype=torch.float64) for _ in range(1000)]
    corrected = np.mean([gaussian_entropy(s)[0] for s in samples])
    plain = np.mean([gaussian_entropy(s, bias_correction=False)[0] for s in samples])
    assert abs(corrected - truth) < 0.05
    assert plain < truth - 0.3
