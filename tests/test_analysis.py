"""``infoprobe.analyze`` on tiny models: the paper's numbers equal the estimator preset on the
recorded arrays, regions follow ``bottleneck_modules``, identities cost no information,
NaN/Inf activations are reported, and runs are reproducible by seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from infoprobe.data import load_dataset
from models.base import Autoencoder

pytest.importorskip("infoprobe.recording", reason="the recorder is not merged yet")
pytest.importorskip("infoprobe.estimators", reason="the estimators are not merged yet")

from infoprobe import entropy, kl_divergence, record
from infoprobe.analysis import AnalysisResult, analyze

FAST = {"joint_samples": 60, "n_boot": 5, "umap": False, "progress": False}


class Tiny(Autoencoder):
    """64 → 12 → k → 12 → 64 with an identity after the first layer and a named bottleneck."""

    registry_name = "tiny-test"
    bottleneck_modules = ("code",)

    def __init__(self, k: int = 3) -> None:
        super().__init__({"k": k, "dataset": "digits"}, input_shape=(1, 8, 8))
        torch.manual_seed(0)
        self.enc1 = nn.Sequential(nn.Flatten(), nn.Linear(64, 12))
        self.same = nn.Identity()
        self.enc2 = nn.Sequential(nn.Tanh(), nn.Linear(12, k))
        self.code = nn.Identity()
        self.dec = nn.Sequential(nn.Linear(k, 12), nn.Tanh(), nn.Linear(12, 64), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(self.enc2(self.same(self.enc1(x))))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.dec(code).reshape(-1, 1, 8, 8)


class Poison(nn.Module):
    """Inf in unit 0 of every 7th sample, NaN in unit 1 of the next ones."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h.clone()
        h[::7, 0] = math.inf
        h[1::7, 1] = math.nan
        return h


class Exploding(nn.Module):
    """A model whose hidden layer holds Inf and NaN values (the output is cleaned)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 6)
        self.poison = Poison()
        self.out = nn.Linear(6, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.poison(self.lin(x.flatten(1)))
        return self.out(torch.nan_to_num(h, posinf=0.0)).reshape(-1, 1, 8, 8)


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits", split="test").subset(120, seed=0)


def test_callahan_numbers_equal_the_preset_on_recorded_arrays(digits) -> None:  # type: ignore[no-untyped-def]
    model = Tiny().eval()
    result = analyze(model, digits, estimators=["callahan2021"], **FAST)
    with torch.no_grad(), record(model) as rec:
        recon = model.reconstruct(digits.images)
    n = len(digits.images)
    arrays = {"input": digits.images.reshape(n, -1).double().numpy()}
    arrays |= {info.label: rec[info.label].reshape(n, -1).double().numpy() for info in rec.layers}
    arrays.setdefault("output", recon.reshape(n, -1).double().numpy())
    assert [row.label for row in result.layers if row.label != "output"] == [
        label for label in arrays if label != "output"
    ]
    prev = None
    for row in result.layers:
        a = arrays[row.label]
        assert row.entropy["callahan2021"].value == pytest.approx(float(entropy(a, preset="callahan2021")), abs=1e-12)
        if prev is not None:
            expected = float(kl_divergence(prev, a, preset="callahan2021"))
            assert row.relative_entropy["callahan2021"].value == pytest.approx(expected, abs=1e-12)
        prev = a
    io = float(kl_divergence(arrays["input"], recon.reshape(n, -1).double().numpy(), preset="callahan2021"))
    assert result.globals["kl_data_reconstruction"]["callahan2021"].value == pytest.approx(io, abs=1e-12)
    mse = float(((recon - digits.images) ** 2).mean())
    assert result.globals["mse"] == pytest.approx(mse, rel=1e-5)
    assert all(row.entropy["callahan2021"].ceiling == pytest.approx(math.log(100)) for row in result.layers)


def test_identity_layer_keeps_all_information(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(), digits, estimators=["callahan2021", "gaussian"], **FAST)
    rows = {row.name: row for row in result.layers}
    same, before = rows["same"], result.layers[rows["same"].index - 1]
    assert same.relative_entropy["callahan2021"].value == pytest.approx(0.0, abs=1e-12)
    assert same.entropy["callahan2021"].value == pytest.approx(before.entropy["callahan2021"].value)
    assert same.relative_entropy["gaussian"].value == pytest.approx(0.0, abs=1e-9)
    assert same.entropy["gaussian"].value == pytest.approx(before.entropy["gaussian"].value)


def test_regions_follow_bottleneck_modules(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(k=4), digits, estimators=["callahan2021"], **FAST)
    regions = [row.region for row in result.layers]
    b = regions.index("bottleneck")
    assert result.layers[b].name == "code" and regions.count("bottleneck") == 1
    assert set(regions[:b]) == {"encoder"} and set(regions[b + 1 :]) == {"decoder"}
    assert result.model["name"] == "tiny-test" and result.model["bottleneck_modules"] == ["code"]
    assert result.model["invertible"] is False


def test_joint_estimates_mutual_information_and_ceilings(digits) -> None:  # type: ignore[no-untyped-def]
    # every class needs k + 1 samples for the kNN conditional entropies: use all 120 rows
    result = analyze(Tiny(), digits, estimators=["callahan2021", "gaussian"], **(FAST | {"joint_samples": 120}))
    h_y = -sum(p * math.log(p) for p in np.bincount(digits.labels.numpy()) / len(digits) if p > 0)
    for prev, row in zip(result.layers, result.layers[1:], strict=False):
        assert ("gaussian" in row.relative_entropy) == (prev.dim == row.dim)
        assert row.mi_label is not None and row.mi_label.ceiling == pytest.approx(h_y)
        assert row.mi_input is not None and row.mi_input.ceiling == pytest.approx(math.log(120))
        assert row.mi_label.value is not None and row.mi_input.value is not None
        est = row.entropy["gaussian"]
        assert est.n == 120
        if est.value is not None:  # an interval, or the reason why a resample failed
            assert est.ci is not None or any(w.startswith("no interval") for w in est.warnings)
        if row.dim <= 12:  # few dimensions, 120 samples: the Gaussian fit must succeed
            assert est.value is not None
    assert result.settings["joint_samples"] == 120


def test_nonfinite_activations_are_reported_not_fatal(digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Exploding(), digits, estimators=["callahan2021", "gaussian"], **FAST)
    bad = [row for row in result.layers if row.n_nonfinite]
    assert [row.name for row in bad] == ["poison"]
    assert bad[0].n_nonfinite == len(range(0, 120, 7)) + len(range(1, 120, 7))
    assert any("NaN/Inf" in w for w in result.warnings)
    assert all(row.entropy["callahan2021"].value is not None for row in result.layers)
    again = AnalysisResult.from_json(result.to_json(tmp_path / "metrics.json"))
    assert again.layers[bad[0].index].n_nonfinite == bad[0].n_nonfinite


def test_same_seed_same_numbers(digits) -> None:  # type: ignore[no-untyped-def]
    def numbers(seed: int) -> list:
        r = analyze(Tiny(), digits, samples=80, estimators=["callahan2021", "knn"], seed=seed, **FAST)
        return [row.to_dict() for row in r.layers]

    assert numbers(3) == numbers(3)


def test_plain_tensor_data_with_labels() -> None:
    x = torch.rand(50, 1, 8, 8)
    y = torch.arange(50) % 5
    result = analyze(Tiny(), x, labels=y, estimators=["callahan2021"], **FAST)
    assert result.dataset["n_samples"] == 50 and result.dataset["n_classes"] == 5
    assert result.examples is not None and result.examples["labels"] == [0, 1, 2, 3, 4, 0, 1, 2]


@pytest.mark.slow
def test_umap_of_the_codes(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(), digits, estimators=["callahan2021"], **(FAST | {"umap": True}))
    emb = result.embedding
    assert emb is not None and emb["layer"] == "code"
    xy = np.asarray(emb["coords"])
    assert xy.shape == (120, 2) and np.isfinite(xy).all() and xy.std(axis=0).min() > 0
    assert emb["labels"] == [int(v) for v in digits.labels]
