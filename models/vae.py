"""The VAE family (registry ``vae``) and the Wasserstein autoencoder (registry ``wae``).

One family whose architecture follows ``dataset``:

- ``mnist`` (1×28×28): DCGAN-style convolutional encoder / decoder (Radford et al. 2016), the
  baselines of PIE (seed 000, sharpness table); a 10-d latent like PIE's code.
- ``cifar10`` (3×32×32): the selfVAE paper's DenseNet architecture (seed 002, appendix A.3) with
  16×8×8 latents.
- ``digits`` (1×8×8): a small DenseNet configuration that trains on a CPU in seconds.

Every VAE models pixels with a discretised logistic mixture (10 components by default) and has a
``prior`` option: ``"standard"`` N(0, I), ``"mog"`` (mixture of Gaussians) or ``"realnvp"``
(flow prior), the comparison of the selfVAE paper's appendix A.2 (CIFAR-10: 3.88, 3.83, 3.51 bpd).

The WAE (Tolstikhin et al. 2018, WAE-MMD) uses the same encoder and decoder, a deterministic
encoder, squared-L2 reconstruction cost and an MMD penalty with the inverse multiquadratics kernel
between the encoded batch and samples of N(0, I).

All losses are per image, averaged over the batch, in nats.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from infoprobe.data import dataset_spec
from infoprobe.errors import InfoprobeError
from models.base import Autoencoder
from models.vae_blocks import (
    DiscretizedLogisticMixture,
    FusionNet,
    Latent,
    Prior,
    StandardPrior,
    build_prior,
    gaussian_kl,
    gaussian_log_prob,
)

__all__ = ["INPUT_SHAPES", "VAE", "WAE", "build_vae", "build_wae", "imq_mmd"]

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {name: dataset_spec(name).shape for name in ("digits", "mnist", "cifar10")}

# Architecture and prior sizes per dataset; every entry can be overridden by keyword.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"architecture": "dense", "width": 16, "growth": 8, "dense_layers": 2,
               "latent_channels": 2, "latent_hw": 4, "latent_dim": 8, "n_components": 10,
               "prior_components": 10, "flow_couplings": 4, "flow_hidden": 32, "flow_blocks": 1,
               "flow_scales": 1},
    "mnist": {"architecture": "dcgan", "width": 64, "growth": 16, "dense_layers": 2,
              "latent_channels": 4, "latent_hw": 7, "latent_dim": 10, "n_components": 10,
              "prior_components": 10, "flow_couplings": 6, "flow_hidden": 64, "flow_blocks": 2,
              "flow_scales": 1},
    # Paper scale: 16×8×8 latents, RealNVP with 2 scales, 64 mid channels, 5 residual blocks.
    "cifar10": {"architecture": "dense", "width": 64, "growth": 32, "dense_layers": 3,
                "latent_channels": 16, "latent_hw": 8, "latent_dim": 64, "n_components": 10,
                "prior_components": 10, "flow_couplings": 6, "flow_hidden": 64, "flow_blocks": 5,
                "flow_scales": 2},
}

LOGVAR_RANGE = (-12.0, 8.0)


def resolve_config(family: str, dataset: str, defaults: dict[str, dict[str, Any]],
                   overrides: dict[str, Any]) -> dict[str, Any]:
    """The dataset's defaults updated with ``overrides``; unknown keys raise InfoprobeError."""
    if dataset not in defaults:
        raise InfoprobeError(
            f"Unknown dataset {dataset!r} for model {family!r}; expected one of "
            f"{', '.join(defaults)}."
        )
    config = dict(defaults[dataset])
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise InfoprobeError(
            f"Unknown option(s) {', '.join(unknown)} for model {family!r}; expected some of "
            f"{', '.join(sorted(config))}."
        )
    config.update(overrides)
    return {"dataset": dataset, **config}


# --- DCGAN-style networks (MNIST) ---------------------------------------------------------


class DCGANEncoder(nn.Module):
    """conv 4×4/2 (width) → LeakyReLU → conv 4×4/2 (2·width) → BN → LeakyReLU → linear."""

    def __init__(self, in_channels: int, hw: int, out_features: int, *, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 4, stride=2, padding=1)
        self.act1 = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.act2 = nn.LeakyReLU(0.2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2 * width * (hw // 4) ** 2, out_features)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.conv1(x))
        h = self.act2(self.bn2(self.conv2(h)))
        return self.fc(self.flatten(h))


class DCGANDecoder(nn.Module):
    """linear → ReLU → (2·width)×hw/4×hw/4 → transposed conv 4×4/2 → BN → ReLU → transposed conv."""

    def __init__(self, in_features: int, out_channels: int, hw: int, *, width: int = 64) -> None:
        super().__init__()
        side = hw // 4
        self.fc = nn.Linear(in_features, 2 * width * side * side)
        self.act1 = nn.ReLU()
        self.unflatten = nn.Unflatten(1, (2 * width, side, side))
        self.deconv1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU()
        self.deconv2 = nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.unflatten(self.act1(self.fc(z)))
        h = self.act2(self.bn1(self.deconv1(h)))
        return self.deconv2(h)


# --- the VAE ------------------------------------------------------------------------------


class VAE(Autoencoder):
    """Gaussian-posterior VAE with a discretised logistic mixture likelihood and a chosen prior.

    ``loss(x)`` = negative ELBO: ``re`` = −E_q log p(x|z), ``kl`` = KL(q(z|x) || p(z)) (closed
    form for the standard prior, a one-sample estimate log q − log p otherwise), ``bpd`` = the
    bound in bits per dimension. ``encode`` returns the posterior mean, ``decode`` the likelihood's
    mean image; both are deterministic. The code passes through the identity module ``latent_z``.
    """

    registry_name = "vae"
    bottleneck_modules = ("latent_z",)

    def __init__(self, config: dict[str, Any]) -> None:
        shape = INPUT_SHAPES[config["dataset"]]
        super().__init__(config, input_shape=shape)
        c, hw, _ = shape
        self.likelihood = DiscretizedLogisticMixture(c, n_components=config["n_components"])
        if config["architecture"] == "dcgan":
            if hw % 4:
                raise InfoprobeError(f"The DCGAN architecture needs H divisible by 4, got {hw}.")
            d = config["latent_dim"]
            self.latent_shape: tuple[int, ...] = (d,)
            self.encoder: nn.Module = DCGANEncoder(c, hw, 2 * d, width=config["width"])
            self.decoder: nn.Module = DCGANDecoder(d, self.likelihood.n_params, hw,
                                                   width=config["width"])
        elif config["architecture"] == "dense":
            lc, lhw = config["latent_channels"], min(config["latent_hw"], hw)
            self.latent_shape = (lc, lhw, lhw)
            opts = {"width": config["width"], "growth": config["growth"],
                    "n_layers": config["dense_layers"]}
            self.encoder = FusionNet([(c, hw)], 2 * lc, lhw, **opts)
            self.decoder = FusionNet([(lc, lhw)], self.likelihood.n_params, hw, **opts)
        else:
            raise InfoprobeError(
                f"Unknown architecture {config['architecture']!r}; expected 'dcgan' or 'dense'."
            )
        self.latent_z = Latent()
        self.prior: Prior = build_prior(
            config.get("prior", "standard"), self.latent_shape,
            n_components=config["prior_components"], n_couplings=config["flow_couplings"],
            hidden=config["flow_hidden"], n_blocks=config["flow_blocks"],
            scales=config["flow_scales"],
        )

    @property
    def n_dims(self) -> int:
        return math.prod(self.input_shape)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | x)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: Tensor) -> Tensor:
        return self.latent_z(self.posterior(x)[0])

    def decode(self, code: Tensor) -> Tensor:
        return self.likelihood(self.decoder(code))

    def kl(self, z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)) per image: closed form for N(0, I), else log q(z) − log p(z)."""
        if isinstance(self.prior, StandardPrior):
            zeros = torch.zeros_like(mean)
            return gaussian_kl(mean, logvar, zeros, zeros)
        return gaussian_log_prob(z, mean, logvar) - self.prior.log_prob(z)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        mean, logvar = self.posterior(x)
        z = self.latent_z(mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))
        re = -self.likelihood.log_prob(x, self.decoder(z))
        kl = self.kl(z, mean, logvar)
        loss = (re + kl).mean()
        return {"loss": loss, "re": re.mean(), "kl": kl.mean(),
                "bpd": loss.detach() / (self.n_dims * math.log(2))}

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, *, n_importance: int = 512,
                       max_batch: int = 256) -> Tensor:
        """Importance-sampled log p(x) per image (Burda et al. 2015), in nats; call in eval mode."""
        mean, logvar = self.posterior(x)
        std = torch.exp(0.5 * logvar)
        b = x.shape[0]
        chunk = max(1, max_batch // b)
        log_w = []
        for start in range(0, n_importance, chunk):
            s = min(chunk, n_importance - start)
            eps = torch.randn((b, s, *mean.shape[1:]), device=x.device, dtype=x.dtype)
            z = (mean.unsqueeze(1) + std.unsqueeze(1) * eps).flatten(0, 1)
            xs = x.unsqueeze(1).expand(b, s, *x.shape[1:]).flatten(0, 1)
            lw = (self.likelihood.log_prob(xs, self.decoder(z)) + self.prior.log_prob(z)
                  - gaussian_log_prob(z, mean.repeat_interleave(s, 0),
                                      logvar.repeat_interleave(s, 0)))
            log_w.append(lw.view(b, s))
        return torch.logsumexp(torch.cat(log_w, 1), 1) - math.log(n_importance)

    def bpd(self, x: Tensor, *, n_importance: int = 512) -> Tensor:
        """Negative log-likelihood in bits per dimension, averaged over the batch (0-d tensor)."""
        ll = self.log_likelihood(x, n_importance=n_importance)
        return -ll.mean() / (self.n_dims * math.log(2))

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z) (scaled by ``temperature``), decoded to the likelihood's mean image."""
        z = self.prior.sample(n, temperature=temperature, generator=generator, device=self.device)
        return self.decode(z)

    def default_recipe(self) -> dict[str, Any]:
        """Adamax, lr 2e-3 (the selfVAE paper, §4.1, for its VAEs). The paper does not state
        epochs or batch size; the values here are this project's choice."""
        epochs = {"digits": 30, "mnist": 20, "cifar10": 100}[self.config["dataset"]]
        return {"optimizer": "adamax", "lr": 2e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                "weight_decay": 0.0, "milestones": [], "gamma": 0.1, "epochs": epochs,
                "batch_size": 64 if self.config["dataset"] == "cifar10" else 128}


# --- the WAE ------------------------------------------------------------------------------


def imq_mmd(z: Tensor, z_prior: Tensor, *, scales: tuple[float, ...] = (.1, .2, .5, 1., 2., 5., 10.)
            ) -> Tensor:
    """Unbiased MMD² with the inverse multiquadratics kernel k(a, b) = C / (C + ||a − b||²),
    summed over C = 2·d·scale (prior variance 1), as in Tolstikhin et al. 2018 (WAE-MMD)."""
    n, d = z.shape[0], z.flatten(1).shape[1]
    a, b = z.flatten(1), z_prior.flatten(1)
    dist_aa, dist_bb, dist_ab = torch.cdist(a, a) ** 2, torch.cdist(b, b) ** 2, torch.cdist(a, b) ** 2
    off = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    total = z.new_zeros(())
    for scale in scales:
        c = 2.0 * d * scale
        k_aa, k_bb, k_ab = c / (c + dist_aa), c / (c + dist_bb), c / (c + dist_ab)
        total = total + ((k_aa + k_bb) * off).sum() / (n * (n - 1)) - 2.0 * k_ab.mean()
    return total


class WAE(VAE):
    """Wasserstein autoencoder, WAE-MMD (Tolstikhin et al. 2018), on the VAE's networks.

    Deterministic encoder (the posterior mean), decoder output = the likelihood head's mean image,
    cost c(x, x̂) = ||x − x̂||² summed over pixels, penalty λ·MMD_IMQ(q(z), N(0, I)).
    ``loss(x)`` returns ``loss``, ``re`` (the cost) and ``mmd``.
    """

    registry_name = "wae"

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        z = self.encode(x)
        re = ((self.decode(z) - x) ** 2).flatten(1).sum(1).mean()
        z_prior = torch.randn_like(z)
        mmd = imq_mmd(z, z_prior)
        return {"loss": re + self.config["mmd_weight"] * mmd, "re": re, "mmd": mmd}

    def default_recipe(self) -> dict[str, Any]:
        """Adam lr 1e-3, β = (0.5, 0.999), batch 100 (Tolstikhin et al. 2018, MNIST: 100 epochs,
        lr halved after 30 and again after 50; MultiStepLR approximates with γ = 0.5)."""
        epochs = {"digits": 30, "mnist": 100, "cifar10": 100}[self.config["dataset"]]
        return {"optimizer": "adam", "lr": 1e-3, "betas": [0.5, 0.999], "eps": 1e-8,
                "weight_decay": 0.0, "milestones": [30, 50], "gamma": 0.5, "epochs": epochs,
                "batch_size": 100}


def build_vae(*, dataset: str = "digits", prior: str = "standard", **overrides: Any) -> VAE:
    """``models.build("vae", dataset=..., prior="standard"|"mog"|"realnvp", **overrides)``."""
    if prior not in ("standard", "mog", "realnvp"):
        raise InfoprobeError(f"Unknown prior {prior!r}; expected 'standard', 'mog' or 'realnvp'.")
    config = resolve_config("vae", dataset, _DEFAULTS, overrides)
    return VAE({**config, "prior": prior})


def build_wae(*, dataset: str = "digits", mmd_weight: float = 10.0, prior: str = "standard",
              **overrides: Any) -> WAE:
    """``models.build("wae", dataset=..., mmd_weight=λ)`` (λ = 10 as in Tolstikhin et al. for MNIST).

    The WAE's prior is N(0, I) (the MMD is taken against its samples); ``prior`` exists only so
    that ``config`` round-trips.
    """
    if prior != "standard":
        raise InfoprobeError(f"The WAE's prior is 'standard' (N(0, I)), got prior={prior!r}.")
    config = resolve_config("wae", dataset, _DEFAULTS, overrides)
    return WAE({**config, "prior": "standard", "mmd_weight": float(mmd_weight)})
