"""Exact entropy change across invertible blocks: the recorded log|det J| against autograd, the
change-of-variables identity against closed forms and the estimators, the inversion check."""

from __future__ import annotations

import math
from collections.abc import Callable

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import pytest
import torch
from torch import Tensor, nn

import models
from infoprobe import entropy, record
from infoprobe.errors import InfoprobeError
from infoprobe.exact import entropy_change
from models.bijections import (
    AffineCoupling,
    Downsample,
    Flatten,
    HouseholderConv1x1,
    HouseholderLinear,
)
from models.inn_autoencoder import INNAutoencoder


def _autograd_logdet(block: Callable[[Tensor], Tensor], inputs: Tensor) -> Tensor:
    """log|det ∂block/∂x| per sample from the full autograd Jacobian (the independent truth)."""
    values = []
    for x in inputs:
        jac = torch.autograd.functional.jacobian(lambda v: block(v.clone()[None])[0].flatten(), x)
        jac = jac.reshape(x.numel(), x.numel())
        sign, logdet = torch.linalg.slogdet(jac)
        assert sign != 0
        values.append(logdet)
    return torch.stack(values)


def _freia(module: nn.Module, *, rev: bool) -> Callable[[Tensor], Tensor]:
    return lambda v: module((v,), rev=rev)[0][0]


def _randomise(module: nn.Module, scale: float) -> None:
    """Every trainable parameter ~ N(0, scale²): no coupling is the identity any more."""
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.normal_(0.0, scale)


def _conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, c_out, 1))


# -- (a) recorded log|det J| == slogdet of the autograd Jacobian ------------------------------------


def test_freia_blocks_forward_and_inverse_match_autograd() -> None:
    inn = Ff.SequenceINN(4, 2, 2)
    inn.append(Fm.GLOWCouplingBlock, subnet_constructor=_conv, clamp=1.5)
    inn.append(Fm.PermuteRandom, seed=0)
    inn.append(Fm.RNVPCouplingBlock, subnet_constructor=_conv, clamp=1.5)
    inn.append(Fm.AllInOneBlock, subnet_constructor=_conv)
    _randomise(inn, 0.3)
    inn.double()
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    with torch.no_grad(), record(inn, dtype=torch.float64) as rec:
        z, total = inn(x)
        inn(z, rev=True)
    blocks = list(inn.module_list)
    forward = [f"module_list.{i}" for i in range(len(blocks))]
    assert rec.labels == forward + [f"{label}:inverse" for label in reversed(forward)]
    summed = torch.zeros(3, dtype=torch.float64)
    for i, block in enumerate(blocks):
        x_in = x if i == 0 else rec[forward[i - 1]]
        recorded = rec.log_jacobian(forward[i])
        assert recorded is not None and recorded.shape == (3,)
        torch.testing.assert_close(recorded, _autograd_logdet(_freia(block, rev=False), x_in))
        z_in = z if i == len(blocks) - 1 else rec[forward[i + 1] + ":inverse"]
        inverse = rec.log_jacobian(forward[i] + ":inverse")
        assert inverse is not None
        torch.testing.assert_close(inverse, _autograd_logdet(_freia(block, rev=True), z_in))
        torch.testing.assert_close(inverse, -recorded)  # the inverse at the corresponding point
        summed += recorded
    torch.testing.assert_close(summed, total)
    assert abs(float(rec.log_jacobian(forward[0]).std())) > 1e-3  # not a constant: a real test


def test_digits_inn_blocks_match_autograd_and_dimension_changes_have_none() -> None:
    model = models.build("inn-ae", dataset="digits", bottleneck=64)
    _randomise(model.inn, 0.1)
    model.double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad(), record(model, dtype=torch.float64) as rec:
        model.reconstruct(x)
    blocks = dict(model.inn.items())
    names = list(blocks)
    assert rec.info("bottleneck").has_log_jacobian is False and rec.log_jacobian("pad") is None
    for i, name in enumerate(names):
        label = f"inn.{name}"
        x_in = x if i == 0 else rec[f"inn.{names[i - 1]}"]
        recorded = rec.log_jacobian(label)
        assert rec.info(label).has_log_jacobian and recorded is not None
        torch.testing.assert_close(recorded, _autograd_logdet(_freia(blocks[name], rev=False), x_in))
        back = rec.log_jacobian(label + ":inverse")
        assert back is not None
        torch.testing.assert_close(back, -recorded, rtol=1e-6, atol=1e-8)
    assert float(rec.log_jacobian("inn.glow1").abs().min()) > 1e-3


@pytest.mark.parametrize(
    ("block", "shape"),
    [
        (AffineCoupling(8, hidden=16, conv=False), (8,)),
        (AffineCoupling(4, hidden=8, conv=True), (4, 2, 2)),
        (HouseholderLinear(8), (8,)),
        (HouseholderConv1x1(4), (4, 2, 2)),
        (Downsample(), (1, 4, 4)),
        (Flatten((4, 2, 2)), (4, 2, 2)),
    ],
    ids=["coupling-fc", "coupling-conv", "householder", "householder-1x1", "downsample", "flatten"],
)
def test_pie_bijections_match_autograd(block: nn.Module, shape: tuple[int, ...]) -> None:
    _randomise(block, 0.3)
    block.double()
    x = torch.randn(4, *shape, dtype=torch.float64)
    with torch.no_grad(), record(block, dtype=torch.float64) as rec:
        y, _ = block(x)
        block(y, rev=True)
    assert rec.labels == ["<root>", "<root>:inverse"]
    forward, inverse = rec.log_jacobian("<root>"), rec.log_jacobian("<root>:inverse")
    assert forward is not None and inverse is not None
    torch.testing.assert_close(forward, _autograd_logdet(lambda v: block(v)[0], x))
    torch.testing.assert_close(inverse, _autograd_logdet(lambda v: block(v, rev=True)[0], y))
    torch.testing.assert_close(inverse, -forward)


# -- (c) orthogonal and linear blocks: closed forms -------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: Fm.HaarDownsampling([(2, 4, 4)]),
    lambda: Fm.PermuteRandom([(32,)], seed=1),
], ids=["haar", "permutation"])
def test_orthogonal_block_has_zero_entropy_change(make: Callable[[], nn.Module]) -> None:
    block = make()
    block.double()
    shape = block.dims_in[0]
    x = torch.randn(6, *shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: block((v.clone()[None],))[0][0].flatten(), x[0])
    jac = jac.reshape(x[0].numel(), x[0].numel())
    torch.testing.assert_close(jac @ jac.T, torch.eye(x[0].numel(), dtype=torch.float64))  # orthonormal
    with torch.no_grad(), record(block) as rec:
        block((x,))  # returns the number 0. for the whole batch: broadcast per sample
    log_jac = rec.log_jacobian("<root>")
    assert log_jac is not None and log_jac.shape == (6,)
    est = entropy_change(log_jac, d=x[0].numel())
    assert (est.value, est.ci, est.status, est.method) == (0.0, (0.0, 0.0), "ok", "exact")


def test_linear_map_of_a_gaussian_changes_entropy_by_log_det() -> None:
    """h(MX) − h(X) = log|det M| for X ~ N(0, I): both sides in closed form (Cover & Thomas §8.6)."""
    d = 6
    m = torch.randn(d, d, dtype=torch.float64) + 3 * torch.eye(d, dtype=torch.float64)
    block = Fm.FixedLinearTransform([(d,)], M=m)
    with torch.no_grad(), record(block) as rec:
        block((torch.randn(50, d, dtype=torch.float64),))
    log_jac = rec.log_jacobian("<root>")  # FrEIA expands one log-det over the batch
    assert log_jac is not None
    cov_x, cov_y = torch.eye(d, dtype=torch.float64), m.T @ m  # y = x M
    gaussian_h = lambda cov: 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * float(torch.logdet(cov))  # noqa: E731
    est = entropy_change(log_jac, d=d)
    assert est.value == pytest.approx(gaussian_h(cov_y) - gaussian_h(cov_x), abs=1e-9)


# -- the estimate itself ----------------------------------------------------------------------------


def test_entropy_change_is_the_mean_with_a_normal_interval() -> None:
    from scipy import stats

    values = torch.randn(400, dtype=torch.float64) * 2 + 5
    est = entropy_change(values, ci=0.9)
    mean, sem = float(values.mean()), float(stats.sem(values.numpy()))
    low, high = stats.norm.interval(0.9, loc=mean, scale=sem)
    assert est.value == pytest.approx(mean)
    assert est.ci == pytest.approx((low, high))
    assert (est.quantity, est.interval, est.level, est.n, est.status) == ("entropy_change", "clt", 0.9, 400, "ok")
    bits = entropy_change([values, values], base=2, ci=None)  # two blocks in a row: summed
    assert bits.value == pytest.approx(2 * mean / math.log(2)) and bits.units == "bits"
    assert bits.ci is None


def test_entropy_change_statuses_and_user_errors() -> None:
    missing = entropy_change(torch.tensor([0.5, float("nan"), 1.0]))
    assert missing.status == "invalid" and "1 of 3 samples have no log-Jacobian" in missing.reason
    singular = entropy_change(torch.tensor([0.5, -float("inf")]))
    assert singular.status == "degenerate"
    with pytest.raises(InfoprobeError, match=r"1-D tensor of shape \(n,\)"):
        entropy_change(torch.zeros(3, 2))
    with pytest.raises(InfoprobeError, match="at least one"):
        entropy_change(torch.zeros(0))
    with pytest.raises(InfoprobeError, match="0 < ci < 1"):
        entropy_change(torch.zeros(3), ci=1.5)
    with pytest.raises(InfoprobeError, match="one length n"):
        entropy_change([torch.zeros(3), torch.zeros(4)])


def test_jac_false_records_no_log_jacobian() -> None:
    block = Fm.GLOWCouplingBlock([(4, 2, 2)], subnet_constructor=_conv)
    _randomise(block, 0.3)
    x = torch.randn(3, 4, 2, 2)
    with torch.no_grad(), record(block) as rec:
        block((x,), jac=True)
        block((x,), jac=False)  # a second batch of the same layer without a log-Jacobian
    log_jac = rec.log_jacobian("<root>")
    assert log_jac is not None and log_jac.shape == (6,)
    assert torch.isfinite(log_jac[:3]).all() and torch.isnan(log_jac[3:]).all()
    with torch.no_grad(), record(block) as rec:
        block((x,), jac=False)
    assert rec.info("<root>").has_log_jacobian is False and rec.log_jacobian("<root>") is None


# -- (b) 784-d: the Gaussian estimator's Δh against the exact one -----------------------------------


@pytest.mark.slow
def test_gaussian_estimator_difference_agrees_with_exact_change_at_784d() -> None:
    """Across a mildly nonlinear GLOW coupling of the MNIST INN (random weights, Gaussian
    inputs), the Gaussian entropy difference either agrees with the exact Δh within its
    interval or one of its two estimates is not "ok".

    n = 2,000: at n = 1,000 a bootstrap resample of 784-d rows has about 630 distinct rows and
    the Gaussian estimator cannot fit it. Weights of scale 0.06 keep the coupling's output close
    to Gaussian (Δh ≈ −29 nats); at scale 0.1 (Δh ≈ −129) the Gaussian fit says −41 and the
    two disagree (the Haar block, a rotation, is covered exactly above).
    """
    torch.set_num_threads(1)
    model = models.build("inn-ae", dataset="mnist", bottleneck=784)
    _randomise(model.inn, 0.06)
    with torch.no_grad():
        (x,), _ = model.inn.haar((torch.randn(2000, 1, 28, 28),))
        with record(model, include="inn.glow1") as rec:
            for batch in x.split(500):
                model.inn.glow1((batch,))
    log_jac = rec.log_jacobian("inn.glow1")
    assert log_jac is not None
    exact = entropy_change(log_jac, d=784)
    assert exact.value < -10  # far from 0, so that agreement means something
    h_in = entropy(x.flatten(1).double(), method="gaussian", ci=0.95, n_boot=20)
    h_out = entropy(rec["inn.glow1"].flatten(1).double(), method="gaussian", ci=0.95, n_boot=20)
    if h_in.ok and h_out.ok:
        assert h_in.ci is not None and h_out.ci is not None and exact.ci is not None
        low, high = h_out.ci[0] - h_in.ci[1], h_out.ci[1] - h_in.ci[0]  # interval of the difference
        assert low <= exact.ci[1] and exact.ci[0] <= high, (exact, low, high)


# -- the inversion check ----------------------------------------------------------------------------


def test_inversion_error_of_an_untrained_digits_inn() -> None:
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images[:200], dtype=torch.float32)[:, None] / 16
    for scale in (None, 0.1):  # the reference initialisation (identity) and random weights
        model = INNAutoencoder(dataset="digits")
        if scale is not None:
            _randomise(model.inn, scale)
        errors = model.inversion_errors(images)
        assert list(errors) == [f"inn.{name}" for name in model.inn]
        assert model.inversion_error(images) == max(errors.values()) <= 1e-5
    with torch.no_grad():
        (h,), _ = model.inn.haar((images,))
        (g,), _ = model.inn.glow1((h,))
    assert float((g - h).abs().max()) > 1e-2  # random weights: the blocks are not the identity


def test_a_call_with_several_outputs_shares_its_log_jacobian() -> None:
    split = Fm.Split([(4, 2, 2)])  # returns ((x1, x2), 0): a volume-preserving reshuffle
    x = torch.randn(5, 4, 2, 2)
    with torch.no_grad(), record(split) as rec:
        (a, b), _ = split((x,))
        split((a, b), rev=True)
    assert rec.labels == ["<root>[0]", "<root>[1]", "<root>:inverse"]
    for label in rec.labels:
        log_jac = rec.log_jacobian(label)
        assert rec.info(label).has_log_jacobian and log_jac is not None
        torch.testing.assert_close(log_jac, torch.zeros(5, dtype=torch.float64))
