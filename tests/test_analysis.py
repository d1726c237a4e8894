"""``infoprobe.analyze`` on tiny models, checked against independent truths: the paper's numbers
against a numpy/scipy transcription, a random rotation inside the model against rotation
invariance, a bottleneck against the structural −∞ of the layers after it, pass-through layers,
NaN/Inf activations, seeds, and options validated before the model runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from infoprobe import record
from infoprobe.analysis import analyze
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from infoprobe.results import AnalysisResult
from models.base import Autoencoder

FAST = {"joint_samples": 120, "n_boot": 5, "umap": False, "progress": False}


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


class Rotating(nn.Module):
    """A 10-d Gaussian-ish input through a random rotation and a scaling by 2 (no bottleneck)."""

    def __init__(self, d: int = 10) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
        self.rotate = nn.Linear(d, d, bias=False)
        self.rotate.weight.data = q.float()
        self.scale = nn.Linear(d, d, bias=False)
        self.scale.weight.data = 2 * torch.eye(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.rotate(x))


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


class NeverRun(Tiny):
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model ran although the options were invalid")


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits", split="test").subset(120, seed=0)


def _paper_entropy(a: np.ndarray) -> float:
    """Callahan & Paskett's layer entropy, transcribed: 100 bins over the pooled values, +1, nats."""
    counts, _ = np.histogram(a.ravel(), bins=100)
    return float(scipy.stats.entropy(counts + 1.0))


def _paper_kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(scipy.stats.entropy(np.histogram(p.ravel(), bins=100)[0] + 1.0,
                                     np.histogram(q.ravel(), bins=100)[0] + 1.0))


def test_callahan_numbers_equal_a_scipy_transcription(digits) -> None:  # type: ignore[no-untyped-def]
    model = Tiny().eval()
    result = analyze(model, digits, preset="callahan2021", **FAST)
    with torch.no_grad(), record(model) as rec:
        recon = model.reconstruct(digits.images)
    n = len(digits.images)
    arrays = {"input": digits.images.reshape(n, -1).double().numpy()}
    arrays |= {info.label: rec[info.label].reshape(n, -1).double().numpy() for info in rec.layers}
    assert [row.label for row in result.layers] == list(arrays)
    prev = None
    for row in result.layers:
        a = arrays[row.label]
        if row.passthrough:  # the identity: folded into the layer before it
            assert np.array_equal(a, prev) and not row.entropy and not row.relative_entropy
            continue
        assert row.entropy["callahan2021"].value == pytest.approx(_paper_entropy(a), abs=1e-10)
        assert row.entropy["callahan2021"].ceiling == pytest.approx(math.log(100))
        if prev is not None:
            assert row.relative_entropy["callahan2021"].value == pytest.approx(_paper_kl(prev, a), abs=1e-10)
        prev = a
    io = _paper_kl(arrays["input"], recon.reshape(n, -1).double().numpy())
    assert result.globals.kl_data_reconstruction["callahan2021"].value == pytest.approx(io, abs=1e-10)
    assert result.globals.mse == pytest.approx(float(((recon - digits.images) ** 2).mean()), rel=1e-5)


def test_pass_through_layers_are_folded(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(), digits, **FAST)
    rows = {row.name: row for row in result.layers}
    assert rows["same"].passthrough and rows["code"].passthrough
    assert not any(dict(rows["same"].estimates()))
    assert not rows["enc1.0"].passthrough or rows["enc1.0"].dim == 64  # Flatten of an 8x8 image


def test_regions_and_the_structural_degeneracy_after_the_bottleneck(digits) -> None:  # type: ignore[no-untyped-def]
    k = 3
    result = analyze(Tiny(k=k), digits, estimators=["entropy=gaussian", "entropy=knn"], **FAST)
    regions = [row.region for row in result.layers]
    b = regions.index("bottleneck")
    assert set(regions[:b]) == {"encoder"} and set(regions[b + 1 :]) == {"decoder"}
    assert result.globals.bottleneck_dim == k
    for row in result.layers[b + 1 :]:
        if row.passthrough:
            continue
        # 12- and 64-d layers computed from a 3-d code: differential entropy −∞, not a number
        assert row.intrinsic_dim == k
        for est in row.entropy.values():
            assert est.status == "degenerate" and est.value == -math.inf and "bottleneck" in est.reason
            assert est.text() == "−∞ [D]"
    code = result.layers[b]
    assert all(e.status in ("ok", "biased") and math.isfinite(e.value) for e in code.entropy.values())


def test_a_rotation_and_a_scaling_inside_the_model() -> None:
    # h(2·Q·x) = h(x) + d·log 2 for a rotation Q: the joint entropies see it, the layer after the
    # rotation has the same entropy as the input (rotation invariance, no coordinate dropping)
    d, n = 10, 5000  # kNN entropy at 10-d is ok from n = 4,096 (benchmarks/interval_coverage.py)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((n, d))).float()
    result = analyze(Rotating(d), x, estimators=["entropy=gaussian", "entropy=knn"],
                     **(FAST | {"joint_samples": n, "n_boot": 10}))
    h_true = 0.5 * d * math.log(2 * math.pi * math.e)
    rows = {row.label: row for row in result.layers}
    for method, tol in (("gaussian", 0.05), ("knn", 0.25)):
        h_in, h_rot, h_scaled = (rows[label].entropy[method] for label in ("input", "rotate", "scale"))
        assert h_in.value == pytest.approx(h_true, abs=tol)
        assert h_rot.value == pytest.approx(h_in.value, abs=1e-6 if method == "gaussian" else 1e-3)
        assert h_scaled.value - h_rot.value == pytest.approx(d * math.log(2), abs=1e-6 if method == "gaussian" else 1e-3)
        assert h_in.status == "ok" and h_in.ci is not None
    gaussian = rows["input"].entropy["gaussian"]
    assert gaussian.ci is not None and gaussian.ci[0] <= h_true <= gaussian.ci[1]


def test_nonfinite_activations_are_reported_not_fatal(digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Exploding(), digits, estimators=["entropy=callahan2021", "entropy=gaussian"], **FAST)
    bad = [row for row in result.layers if row.n_nonfinite]
    assert [row.name for row in bad] == ["poison"]
    assert bad[0].n_nonfinite == len(range(0, 120, 7)) + len(range(1, 120, 7))
    assert any("NaN/Inf" in w for w in result.warnings)
    assert all(math.isfinite(row.entropy["callahan2021"].value) for row in result.layers)
    again = AnalysisResult.from_json(result.to_json(tmp_path / "metrics.json"))
    assert again.to_dict() == result.to_dict()


def test_two_seeds_differ_and_one_seed_repeats(digits) -> None:  # type: ignore[no-untyped-def]
    def numbers(seed: int) -> list[float]:
        r = analyze(Tiny(), digits, samples=80, estimators=["entropy=knn", "mi_label=ksg"], seed=seed, **FAST)
        return [est.value for row in r.layers for _, _, est in row.estimates()]

    first = numbers(3)
    assert numbers(3) == first
    assert numbers(4) != first


def test_plain_tensor_data_with_labels() -> None:
    x = torch.rand(50, 1, 8, 8)
    y = torch.arange(50) % 5
    result = analyze(Tiny(), x, labels=y, preset="callahan2021", **FAST)
    assert result.dataset["n_samples"] == 50 and result.dataset["n_classes"] == 5
    assert result.examples is not None and result.examples["labels"] == [0, 1, 2, 3, 4, 0, 1, 2]


@pytest.mark.parametrize(("options", "message"), [
    ({"ci": 1.5}, "0 < ci < 1"),
    ({"n_boot": 1}, "n_boot to be an integer >= 2"),
    ({"joint_samples": 5}, "joint_samples to be an integer >= 10"),
    ({"batch_size": 0}, "batch_size to be an integer >= 1"),
    ({"estimators": ["entropy=knn(q=2)"]}, r"Unknown option\(s\) \['q'\]"),
    ({"estimators": ["volume=knn"]}, "Expected an estimator role"),
    ({"exclude": ["nothing.*"]}, "matches no module"),
])
def test_invalid_options_fail_before_the_model_runs(digits, options, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InfoprobeError, match=message):
        analyze(NeverRun(), digits, **(FAST | options))


def test_exclude_drops_layers(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(), digits, preset="callahan2021", exclude=["dec.*"], **FAST)
    assert not any(row.name.startswith("dec.") for row in result.layers)
    assert result.layers[-1].label == "output"


@pytest.mark.slow
def test_umap_of_the_codes(digits) -> None:  # type: ignore[no-untyped-def]
    result = analyze(Tiny(), digits, preset="callahan2021", **(FAST | {"umap": True}))
    emb = result.embedding
    assert emb is not None and emb["layer"] == "code"
    xy = np.asarray(emb["coords"])
    assert xy.shape == (120, 2) and np.isfinite(xy).all() and xy.std(axis=0).min() > 0
    assert emb["labels"] == [int(v) for v in digits.labels]


def test_codes_constant_to_round_off_are_not_embedded(digits) -> None:  # type: ignore[no-untyped-def]
    # An untrained MNIST INN's 20-d code spreads over 1.5e-8 for inputs of RMS 0.31: UMAP of that
    # is a picture of round-off. The code here: 1e-9 × the first layer's output.
    model = Tiny()
    with torch.no_grad():
        model.enc2[1].weight.mul_(1e-9)
        model.enc2[1].bias.zero_()
    result = analyze(model, digits, preset="callahan2021", **(FAST | {"umap": True}))
    assert result.embedding is None
    (note,) = [w for w in result.warnings if w.startswith("UMAP skipped")]
    assert "'code'" in note and "nothing to embed" in note and "cannot be told from round-off" in note


@pytest.mark.slow
@pytest.mark.parametrize("family", ["inn-ae", "classical-ae", "pie", "vae", "wae", "selfvae"])
def test_the_default_analysis_prints_no_impossible_number(family: str, digits) -> None:  # type: ignore[no-untyped-def]
    import models

    torch.manual_seed(0)
    model = models.build(family, dataset="digits")
    result = analyze(model, digits, **(FAST | {"n_boot": 3}))
    seen = 0
    for row in result.layers:
        for group, method, est in row.estimates():
            seen += 1
            text = est.text()
            if not est.ok:
                assert est.reason, (row.label, group, method)
                assert "[" in text  # marked, never a plain number
                continue
            assert math.isfinite(est.value), (row.label, group, method)
            if est.quantity in ("kl_divergence", "mutual_information"):
                assert est.value >= 0, (row.label, group, method, est.value)
            if est.ceiling is not None:
                assert est.value < 0.95 * est.ceiling, (row.label, group, method)
            if group == "mi_label" and result.globals.label_entropy is not None:
                assert est.value <= result.globals.label_entropy + 1e-9
    assert seen > 0
