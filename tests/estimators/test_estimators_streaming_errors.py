"""Streaming accumulators (batch-streamed == all at once) and bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators import (
    EstimationError,
    RunningHistogram,
    RunningMoments,
    entropy,
    kl_divergence,
    mutual_information,
)
from infoprobe.estimators.knn import knn_distances


def test_running_histogram_equals_batch_histogram() -> None:
    x = torch.randn(1000, 3, 4, generator=torch.Generator().manual_seed(0))
    running = RunningHistogram(range=(float(x.min()), float(x.max())), bins=50)
    for batch in x.split(128):
        running.update(batch)
    streamed = running.compute()
    once = entropy(x, method="histogram", bins=50)
    assert streamed.value == pytest.approx(once.value, abs=1e-12)
    assert streamed.n == 1000 and streamed.d == 12 and running.outside == 0


def test_running_histogram_bits_and_outside_values() -> None:
    running = RunningHistogram(range=(0.0, 1.0), bins=4, base=2)
    running.update(np.array([[0.1], [0.3], [0.6], [0.9], [1.5]]))
    assert running.outside == 1
    assert running.compute().value == pytest.approx(2.0, abs=1e-12)  # 4 equally filled bins = 2 bits


def test_running_moments_equals_batch_gaussian() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 50.0
    running = RunningMoments()
    for batch in x.split(257):
        running.update(batch)
    assert running.compute().value == pytest.approx(entropy(x, method="gaussian").value, abs=1e-9)
    assert torch.allclose(running.covariance, torch.cov(x.T), atol=1e-9)
    assert torch.allclose(running.mean, x.mean(0), atol=1e-12)


def test_streaming_errors() -> None:
    with pytest.raises(InfoprobeError, match="before any update"):
        RunningMoments().compute()
    with pytest.raises(InfoprobeError, match="before any update"):
        RunningHistogram(range=(0, 1)).compute()
    running = RunningMoments()
    running.update(torch.randn(10, 3))
    with pytest.raises(InfoprobeError, match="Expected batches with 3 features, got 4"):
        running.update(torch.randn(10, 4))


def test_chunked_knn_equals_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    from infoprobe.estimators import _base

    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    full = knn_distances(x, x, 3, exclude_self=True)
    monkeypatch.setattr(_base, "CPU_CHUNK_BYTES", 4 * 300 * 7)  # 7 rows per block
    assert torch.equal(knn_distances(x, x, 3, exclude_self=True), full)
    monkeypatch.setattr(_base, "CPU_CHUNK_BYTES", 2**30)  # one block (capped by MAX_CHUNK_BYTES)
    assert torch.equal(knn_distances(x, x, 3, exclude_self=True), full)
    reference = torch.cdist(x, x).fill_diagonal_(float("inf")).topk(3, largest=False).values[:, -1]
    assert torch.allclose(full, reference, rtol=1e-12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_rejected(bad: float) -> None:
    x = np.random.default_rng(0).standard_normal((50, 2))
    x[3, 1] = bad
    with pytest.raises(InfoprobeError, match="Expected finite values in x, got 1 NaN/Inf"):
        entropy(x)


def test_too_few_samples_for_k() -> None:
    with pytest.raises(EstimationError, match=r"at least k\+1 = 6 samples in x, got 5"):
        entropy(np.random.default_rng(0).standard_normal((5, 2)), k=5)
    with pytest.raises(EstimationError, match="at least k = 4 samples in q, got 3"):
        kl_divergence(np.zeros((10, 1)) + np.arange(10)[:, None], np.arange(3.0)[:, None], k=4)


def test_mismatched_dimensions() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InfoprobeError, match="same number of features, got 3 and 4"):
        kl_divergence(rng.standard_normal((50, 3)), rng.standard_normal((50, 4)))
    with pytest.raises(InfoprobeError, match=r"paired samples .* got 50 and 40"):
        mutual_information(rng.standard_normal((50, 3)), rng.standard_normal((40, 3)))
    with pytest.raises(InfoprobeError, match="one label per sample"):
        mutual_information(rng.standard_normal((50, 3)), np.zeros(40, dtype=int))


@pytest.mark.parametrize("bins", [0, -3, 2.5])
def test_non_positive_bins(bins: object) -> None:
    with pytest.raises(InfoprobeError, match="positive integer number of bins"):
        entropy(np.random.default_rng(0).standard_normal((50, 2)), method="histogram", bins=bins)


def test_unknown_method_preset_option_and_base() -> None:
    x = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(InfoprobeError, match="Unknown entropy method 'magic'"):
        entropy(x, method="magic")
    with pytest.raises(InfoprobeError, match="Unknown preset 'tishby2017'"):
        entropy(x, preset="tishby2017")
    with pytest.raises(InfoprobeError, match=r"Unknown option\(s\) \['bins'\] for entropy method 'knn'"):
        entropy(x, bins=10)
    with pytest.raises(InfoprobeError, match="Preset 'callahan2021' fixes every option"):
        entropy(x, preset="callahan2021", bins=10)
    with pytest.raises(InfoprobeError, match="Preset 'callahan2021' uses method 'histogram', got method='kde'"):
        entropy(x, preset="callahan2021", method="kde")
    with pytest.raises(InfoprobeError, match="Expected base 'e' \\(nats\\) or 2 \\(bits\\), got 10"):
        entropy(x, base=10)
    with pytest.raises(InfoprobeError, match="Preset 'callahan2021' defines no mutual_information"):
        from infoprobe.estimators.presets import preset_options

        preset_options("callahan2021", "mutual_information")


def test_singular_covariance_and_bad_options() -> None:
    x = np.random.default_rng(0).standard_normal((50, 2))
    collinear = entropy(np.hstack([x, x[:, :1]]), method="gaussian")
    assert collinear.value == -np.inf and collinear.status == "degenerate" and collinear.rank == 2
    with pytest.raises(EstimationError, match="more samples than features"):
        entropy(x[:2], method="gaussian")
    with pytest.raises(InfoprobeError, match="positive noise_var"):
        entropy(x, method="kde", noise_var=0)
    with pytest.raises(InfoprobeError, match="confidence level 0 < ci < 1"):
        entropy(x, ci=95)
    with pytest.raises(InfoprobeError, match="class y=1 \\(2 samples\\)"):
        mutual_information(x, np.array([0] * 48 + [1] * 2), method="gaussian")
    with pytest.raises(InfoprobeError, match="numeric array or tensor for x, got dtype <U3"):
        entropy(np.array(["abc", "def"]))
    with pytest.raises(InfoprobeError, match="numpy array or torch tensor for x, got object"):
        entropy(object())


def test_knn_distances_exact_on_multiscale_data() -> None:
    # a tight cluster (scale 1e-6) next to a wide one (scale 1e3): float32 search alone would
    # mis-rank the tight cluster; the error bound must send those rows to the float64 path.
    from scipy.spatial import cKDTree

    g = torch.Generator().manual_seed(4)
    x = torch.cat([1e-6 * torch.randn(300, 3, generator=g, dtype=torch.float64),
                   1e3 * torch.randn(300, 3, generator=g, dtype=torch.float64)])
    reference = cKDTree(x.numpy()).query(x.numpy(), k=4)[0][:, 3]
    assert np.allclose(knn_distances(x, x, 3, exclude_self=True).numpy(), reference, rtol=1e-12, atol=0)
    y = x[:200] + 3e-7
    reference = cKDTree(x.numpy()).query(y.numpy(), k=2)[0][:, 1]
    assert np.allclose(knn_distances(y, x, 2, exclude_self=False).numpy(), reference, rtol=1e-12, atol=0)


def test_device_option_and_float32_tensors() -> None:
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(5))
    on_cpu = entropy(x, device="cpu")
    assert on_cpu.value == pytest.approx(entropy(x.double()).value, abs=1e-12)
