"""PIE: every block is an exact bijection with the right log-det; the model trains and round-trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import models
from infoprobe import checkpoint
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from models.bijections import (
    AffineCoupling,
    Downsample,
    Flatten,
    HouseholderConv1x1,
    HouseholderLinear,
    Split,
    ZeroFill,
    householder_matrix,
)
from models.pie import PIE

TINY = {"hidden_channels": 8, "hidden_features": 16, "couplings_per_block": 1}


def _randomise(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Replace the zero-initialised last layers so couplings are far from the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))
    return module


def _jacobian_logdet(f, x: Tensor) -> Tensor:
    """log|det| of the Jacobian of ``f`` at the single sample ``x`` (batch of 1), by autograd."""
    jac = torch.autograd.functional.jacobian(lambda v: f(v).reshape(-1), x)
    jac = jac.reshape(x.numel(), x.numel())
    return torch.linalg.slogdet(jac).logabsdet


BLOCKS = {
    "downsample": (lambda: Downsample(), (1, 2, 4, 4)),
    "flatten": (lambda: Flatten((2, 2, 3)), (1, 2, 2, 3)),
    "coupling-conv": (lambda: AffineCoupling(3, hidden=4, conv=True, clamp=2.0), (1, 3, 2, 2)),
    "coupling-linear": (lambda: AffineCoupling(5, hidden=7, conv=False, clamp=1.5), (1, 5)),
    "householder-conv": (lambda: HouseholderConv1x1(4, n_reflections=3), (1, 4, 2, 3)),
    "householder-linear": (lambda: HouseholderLinear(6, n_reflections=2), (1, 6)),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_inverse_is_exact(name: str) -> None:
    make, shape = BLOCKS[name]
    block = _randomise(make()).double()
    x = torch.randn(7, *shape[1:], dtype=torch.float64)
    y, ld = block(x)
    x_back, ld_back = block(y, rev=True)
    assert torch.allclose(x_back, x, atol=1e-5)
    assert torch.allclose(ld_back, -ld, atol=1e-5)
    assert ld.shape == (7,)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_logdet_matches_autograd_jacobian(name: str) -> None:
    make, shape = BLOCKS[name]
    block = _randomise(make()).double()
    for _ in range(3):
        x = torch.randn(*shape, dtype=torch.float64)
        expected = _jacobian_logdet(lambda v: block(v)[0], x)
        assert block(x)[1].item() == pytest.approx(expected.item(), abs=1e-6)
        y = block(x)[0]
        expected_rev = _jacobian_logdet(lambda v: block(v, rev=True)[0], y)
        assert block(y, rev=True)[1].item() == pytest.approx(expected_rev.item(), abs=1e-6)


def test_coupling_log_scales_are_soft_clamped() -> None:
    block = AffineCoupling(4, hidden=8, conv=False, clamp=0.5)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(10.0 * torch.randn_like(p))
    _, ld = block(torch.randn(20, 4))
    # four log-scales per sample, each strictly inside (-0.5, 0.5)
    assert ld.abs().max().item() < 4 * 0.5


def test_new_coupling_is_identity() -> None:
    block = AffineCoupling(4, hidden=8, conv=True)
    x = torch.randn(3, 4, 2, 2)
    y, ld = block(x)
    assert torch.equal(y, x)
    assert torch.equal(ld, torch.zeros(3))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_householder_matrix_is_orthogonal_with_determinant_sign(k: int) -> None:
    vectors = torch.randn(k, 6, dtype=torch.float64)
    w = householder_matrix(vectors)
    assert torch.allclose(w @ w.T, torch.eye(6, dtype=torch.float64), atol=1e-12)
    assert torch.linalg.det(w).item() == pytest.approx((-1.0) ** k, abs=1e-10)
    # a single reflection: H v = −v and H u = u for u ⟂ v
    h = householder_matrix(vectors[:1])
    v = vectors[0]
    u = torch.randn(6, dtype=torch.float64)
    u = u - (u @ v) / (v @ v) * v
    assert torch.allclose(h @ v, -v) and torch.allclose(h @ u, u)


def test_householder_maps_use_their_matrix() -> None:
    conv = HouseholderConv1x1(3, n_reflections=3)
    x = torch.randn(2, 3, 4, 5)
    expected = torch.nn.functional.conv2d(x, conv.matrix()[:, :, None, None])
    assert torch.allclose(conv(x)[0], expected, atol=1e-6)
    lin = HouseholderLinear(5, n_reflections=3)
    v = torch.randn(4, 5)
    assert torch.allclose(lin(v)[0], v @ lin.matrix().T, atol=1e-6)


def test_split_and_zero_fill() -> None:
    split = Split(6, 2)
    x = torch.randn(3, 6, 2, 2)
    kept, dropped = split(x)
    assert kept.shape == (3, 2, 2, 2) and dropped.shape == (3, 4, 2, 2)
    assert torch.equal(split(kept, rev=True, dropped=dropped), x)
    filled = split(kept, rev=True)
    assert torch.equal(filled[:, :2], kept) and torch.equal(filled[:, 2:], torch.zeros(3, 4, 2, 2))
    assert isinstance(split.fill, ZeroFill)
    with pytest.raises(InfoprobeError, match="keep between 1 and 5"):
        Split(6, 6)


def _tiny_pie(**kw) -> PIE:
    model = models.build("pie", **{"dataset": "digits", "sigma": 0.1, **TINY, **kw})
    assert isinstance(model, PIE)
    return model


def test_pie_shapes_and_registry() -> None:
    model = models.build("pie", dataset="mnist", sigma=0.5)
    z, residuals, _ = model.encode_all(torch.rand(2, 1, 28, 28))
    assert z.shape == (2, 10)
    # 784 → 392 kept (392 dropped) → 196 (196) → 64 (132) → 10 (54) → 10
    assert [r[0].numel() for r in residuals] == [392, 196, 132, 54]
    assert model.config["dataset"] == "mnist" and model.config["sigma"] == 0.5
    assert models.build("pie", **model.config).config == model.config
    assert dict(model.named_modules())["code"] is model.code
    with pytest.raises(InfoprobeError, match="Unknown PIE option"):
        models.build("pie", dataset="digits", hidden=3)
    with pytest.raises(InfoprobeError, match="expects B×1×8×8"):
        _tiny_pie().encode(torch.rand(2, 1, 28, 28))


def test_whole_pie_is_a_bijection_with_exact_logdet() -> None:
    """x ↦ (code, all dropped parts) is bijective; its log-det is the sum over the blocks."""
    model = _randomise(_tiny_pie(), scale=0.1).double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    z, residuals, logdet = model.encode_all(x)
    assert torch.allclose(model.decode(z, residuals=residuals), x, atol=1e-5)

    def flat(v: Tensor) -> Tensor:
        code, res, _ = model.encode_all(v)
        return torch.cat([code.flatten(1)] + [r.flatten(1) for r in res], dim=1)

    expected = _jacobian_logdet(flat, x[:1])
    assert logdet[0].item() == pytest.approx(expected.item(), abs=1e-6)


def test_log_likelihood_matches_closed_form_terms() -> None:
    model = _randomise(_tiny_pie(sigma=0.3), scale=0.1).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    z, residuals, logdet = model.encode_all(x)
    normal = torch.distributions.Normal(0.0, 1.0)
    narrow = torch.distributions.Normal(0.0, 0.3)
    expected = normal.log_prob(z).sum(1) + logdet
    for r in residuals:
        expected = expected + narrow.log_prob(r).flatten(1).sum(1)
    terms = model.log_likelihood(x)
    assert torch.allclose(terms["total"], expected, atol=1e-8)


def test_decode_sets_dropped_parts_to_zero() -> None:
    model = _randomise(_tiny_pie(), scale=0.1).double()
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    z, residuals, _ = model.encode_all(x)
    zeros = [torch.zeros_like(r) for r in residuals]
    assert torch.allclose(model.decode(z), model.decode(z, residuals=zeros))
    assert torch.allclose(model.reconstruct(x), model.decode(z))


def test_every_block_is_called_in_both_directions() -> None:
    model = _tiny_pie()
    calls: list[tuple[str, bool]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        calls.append((names[module], bool(kwargs.get("rev", False))))

    leaves = [m for m in model.modules() if type(m).__module__ == "models.bijections"]
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in leaves]
    handles.append(model.code.register_forward_hook(hook, with_kwargs=True))
    model.reconstruct(torch.rand(2, 1, 8, 8))
    for h in handles:
        h.remove()
    forward = [n for n, rev in calls if not rev and not n.endswith(".fill")]
    inverse = [n for n, rev in calls if rev]
    assert forward[-1] == "code"
    assert sorted(forward[:-1]) == sorted(inverse)  # each block once forward, once inverse
    assert inverse == forward[-2::-1]  # the inverse visits them in reverse order
    assert any(n.endswith("split.fill") for n, _ in calls)


def test_sample_and_interpolate_shapes() -> None:
    model = _tiny_pie()
    g = torch.Generator().manual_seed(0)
    assert model.sample(5, temperature=0.7, generator=g).shape == (5, 1, 8, 8)
    assert torch.equal(model.sample(3, temperature=0.0), model.decode(torch.zeros(3, 10)))
    x = torch.rand(2, 1, 8, 8)
    path = model.interpolate(x[0], x[1], steps=6)
    assert path.shape == (6, 1, 8, 8)
    assert torch.allclose(path[0], model.reconstruct(x[:1])[0], atol=1e-5)
    assert torch.allclose(path[-1], model.reconstruct(x[1:])[0], atol=1e-5)
    assert model.interpolate(x, x.flip(0), steps=4).shape == (2, 4, 1, 8, 8)


def test_likelihood_finite_and_improving_on_digits() -> None:
    data = load_dataset("digits").subset(256, seed=0)
    model = _tiny_pie(sigma=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(30):
        batch = data.images[(step * 64) % 256:][:64]
        out = model.loss(batch)
        assert all(math.isfinite(v.item()) for v in out.values())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    with torch.no_grad():
        torch.manual_seed(1)
        before = _tiny_pie(sigma=0.1).loss(data.images)["loss"].item()
        torch.manual_seed(1)
        after = model.loss(data.images)["loss"].item()
    assert after < before - 0.5, (before, after)
    assert sum(losses[-5:]) < sum(losses[:5])


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = _randomise(_tiny_pie(sigma=0.2), scale=0.1)
    path = tmp_path / "pie.pt"
    checkpoint.save(path, model, dataset={"name": "digits"})
    ckpt = checkpoint.load(path)
    assert ckpt.model_name == "pie" and ckpt.model_config == model.config
    rebuilt = checkpoint.build_model(ckpt)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(rebuilt.encode(x), model.encode(x))
        assert torch.equal(rebuilt.reconstruct(x), model.reconstruct(x))
        assert torch.equal(rebuilt.log_likelihood(x)["total"], model.log_likelihood(x)["total"])


def test_recon_weight_adds_the_zero_filled_reconstruction_error() -> None:
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    torch.manual_seed(3)
    plain = _randomise(_tiny_pie(sigma=0.2, dequantize=0.0), scale=0.1).double()
    torch.manual_seed(3)
    weighted = _randomise(_tiny_pie(sigma=0.2, dequantize=0.0, recon_weight=7.0), scale=0.1).double()
    base, out = plain.loss(x), weighted.loss(x)
    assert "recon_mse" not in base  # the paper's objective by default
    mse = (plain.decode(plain.encode(x)) - x).pow(2).mean()
    assert torch.allclose(out["recon_mse"], mse)
    assert torch.allclose(out["loss"], base["loss"] + 7.0 * mse)


def test_recon_weight_must_not_be_negative() -> None:
    with pytest.raises(InfoprobeError, match=r"recon_weight >= 0 .* got -1.0"):
        _tiny_pie(recon_weight=-1.0)


def test_old_checkpoints_without_recon_weight_rebuild_with_the_paper_objective() -> None:
    model = _tiny_pie()
    config = {k: v for k, v in model.config.items() if k != "recon_weight"}  # as saved before the option
    rebuilt = models.build("pie", **config)
    assert rebuilt.recon_weight == 0.0
