"""Building blocks of the VAE family: likelihood normalisation, flow invertibility and log-det."""

from __future__ import annotations

import math

import pytest
import torch

from infoprobe.errors import InfoprobeError
from models.vae_blocks import (
    DenseBlock,
    DiscretizedLogisticMixture,
    FusionNet,
    MoGPrior,
    RealNVPPrior,
    StandardPrior,
    WNConv2d,
    build_prior,
    gaussian_kl,
    gaussian_log_prob,
)


def _randomise(module: torch.nn.Module, scale: float = 0.3) -> None:
    """Perturb every parameter so zero-initialised layers no longer make the flow the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


@pytest.mark.parametrize("channels", [1, 3])
def test_discretized_logistic_sums_to_one_over_256_values(channels: int) -> None:
    lik = DiscretizedLogisticMixture(channels, n_components=4)
    params = torch.randn(1, lik.n_params, 2, 2) * 2.0
    params[:, 8 * channels: 12 * channels] -= 4.0  # some very narrow components (log-scale ≈ −4)
    values = torch.arange(256, dtype=torch.float32) / 255
    x = values.view(256, 1, 1, 1).expand(256, channels, 2, 2)
    logp = lik.log_prob_pixels(x, params.expand(256, -1, -1, -1))  # (256, C, 2, 2)
    total = torch.exp(logp).sum(0)
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-4, rtol=0)


def test_discretized_logistic_mean_matches_brute_force_sum() -> None:
    lik = DiscretizedLogisticMixture(1, n_components=3)
    params = torch.randn(2, lik.n_params, 3, 3)
    values = torch.arange(256, dtype=torch.float32) / 255
    x = values.view(256, 1, 1, 1, 1).expand(256, 2, 1, 3, 3).flatten(0, 1)
    p = torch.exp(lik.log_prob_pixels(x, params.repeat(256, 1, 1, 1))).view(256, 2, 1, 3, 3)
    exact = (p * values.view(256, 1, 1, 1, 1)).sum(0)
    assert (lik.mean(params) - exact).abs().max() <= 1 / 510 + 1e-5


def test_discretized_logistic_sample_on_grid_and_in_range() -> None:
    lik = DiscretizedLogisticMixture(3)
    s = lik.sample(torch.randn(4, lik.n_params, 5, 5), generator=torch.Generator().manual_seed(1))
    assert s.shape == (4, 3, 5, 5) and s.min() >= 0 and s.max() <= 1
    torch.testing.assert_close(s * 255, (s * 255).round())


@pytest.mark.parametrize(("shape", "scales"), [((6,), 1), ((4, 4, 4), 1), ((1, 4, 4), 1),
                                                ((2, 4, 4), 2)])
def test_realnvp_inverse_and_logdet_match_autograd_jacobian(shape: tuple[int, ...],
                                                            scales: int) -> None:
    flow = RealNVPPrior(shape, n_couplings=4, hidden=8, n_blocks=1, scales=scales).double()
    _randomise(flow, 0.1)  # larger perturbations make shifts of ~1e5 and an ill-conditioned test
    z = torch.randn(3, *shape, dtype=torch.float64)
    v, logdet = flow(z)
    torch.testing.assert_close(flow.inverse(v), z, atol=1e-10, rtol=0)
    for i in range(z.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda t: flow(t.unsqueeze(0))[0].flatten(),
                                                 z[i])
        d = math.prod(shape)
        _, expected = torch.linalg.slogdet(jac.reshape(d, d))
        torch.testing.assert_close(logdet[i], expected, atol=1e-8, rtol=1e-8)
    assert not torch.allclose(v, z)  # the flow is not the identity after randomisation


def test_realnvp_log_prob_is_normalised_in_one_dimension_pair() -> None:
    # A 2-d flow density integrates to 1 (grid quadrature), an independent check of log_prob.
    flow = RealNVPPrior((2,), n_couplings=3, hidden=8, n_blocks=1).double()
    _randomise(flow, 0.1)
    g = torch.linspace(-12, 12, 601, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).view(-1, 2)
    with torch.no_grad():
        mass = torch.exp(flow.log_prob(grid)).sum() * (g[1] - g[0]) ** 2
    assert abs(float(mass) - 1.0) < 1e-3


def test_mog_prior_matches_closed_form_for_one_component() -> None:
    prior = MoGPrior((3,), n_components=1)
    z = torch.randn(5, 3)
    expected = gaussian_log_prob(z, prior.means.expand(5, 3), prior.logvars.expand(5, 3))
    torch.testing.assert_close(prior.log_prob(z), expected)


def test_gaussian_kl_nonnegative_and_zero_for_equal() -> None:
    mq, lq, mp, lp = (torch.randn(10, 4) for _ in range(4))
    assert (gaussian_kl(mq, lq, mp, lp) >= 0).all()
    torch.testing.assert_close(gaussian_kl(mq, lq, mq, lq), torch.zeros(10))


@pytest.mark.parametrize("kind", ["standard", "mog", "realnvp"])
def test_priors_sample_with_the_latent_shape(kind: str) -> None:
    prior = build_prior(kind, (2, 4, 4), n_couplings=2, hidden=8, n_blocks=1)
    z = prior.sample(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, 2, 4, 4)
    assert torch.isfinite(prior.log_prob(z)).all()


def test_standard_prior_log_prob_closed_form() -> None:
    z = torch.randn(4, 3)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(StandardPrior((3,)).log_prob(z), expected)


def test_realnvp_scales_need_even_latents() -> None:
    with pytest.raises(InfoprobeError, match="use flow_scales=1"):
        RealNVPPrior((2, 7, 7), scales=2)


def test_unknown_prior_is_rejected() -> None:
    with pytest.raises(InfoprobeError, match="Unknown prior 'vamp'"):
        build_prior("vamp", (4,))


def test_weightnorm_data_dependent_init_normalises_first_batch() -> None:
    conv = WNConv2d(3, 5, 3, padding=1, init_scale=1.0)
    x = torch.randn(64, 3, 8, 8) * 4 + 2
    out = conv(x)
    per_channel = out.transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(5), atol=1e-3, rtol=0)
    g_before = conv.g.detach().clone()
    conv(torch.randn(8, 3, 8, 8))  # initialised once only
    torch.testing.assert_close(conv.g.detach(), g_before)


def test_weightnorm_transposed_doubles_resolution() -> None:
    conv = WNConv2d(4, 6, 4, stride=2, padding=1, transposed=True)
    assert conv(torch.randn(2, 4, 5, 5)).shape == (2, 6, 10, 10)


def test_dense_block_and_fusion_shapes() -> None:
    block = DenseBlock(8, growth=4, n_layers=2)
    assert block(torch.randn(2, 8, 6, 6)).shape == (2, 8, 6, 6)
    net = FusionNet([(3, 16), (2, 4)], 7, 8, width=8, growth=4, n_layers=1)
    assert net(torch.randn(2, 3, 16, 16), torch.randn(2, 2, 4, 4)).shape == (2, 7, 8, 8)
    with pytest.raises(InfoprobeError, match="power of two apart"):
        FusionNet([(1, 12)], 2, 8)
