"""Building blocks of the VAE family and selfVAE (Gatopoulos & Tomczak, "Self-Supervised
Variational Auto-Encoders", appendix A.3; seed 002).

- :class:`WNConv2d`: weight-normalised (transposed) convolution with data-dependent
  initialisation (Salimans & Kingma 2016), the paper's replacement for batch normalisation.
- :class:`DenseBlock` with :class:`ChannelAttention` (Huang et al. 2016; Zhang et al. 2018), ELU
  activations, :func:`down` (stride-2 convolution) and :func:`up` (transposed convolution).
- :class:`DenseRescale`, :class:`FusionNet`: the encoder / decoder networks built from them.
- :class:`DiscretizedLogisticMixture`: the likelihood over 8-bit pixels (Salimans et al. 2017),
  log-probabilities in nats; its module output is the likelihood's mean image.
- Priors over latents, each with ``log_prob(z) -> (B,)`` in nats and ``sample(n)``:
  :class:`StandardPrior`, :class:`MoGPrior`, :class:`RealNVPPrior` (Dinh et al. 2016).
- :class:`Latent`: an identity module every latent code passes through, so forward hooks see it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError

__all__ = [
    "AffineCoupling",
    "ChannelAttention",
    "DenseBlock",
    "DenseRescale",
    "DiscretizedLogisticMixture",
    "FusionNet",
    "Latent",
    "MoGPrior",
    "Prior",
    "RealNVPPrior",
    "Squeeze",
    "StandardPrior",
    "Unsqueeze",
    "WNConv2d",
    "build_prior",
    "down",
    "gaussian_kl",
    "gaussian_log_prob",
    "up",
]

LOG_2PI = math.log(2 * math.pi)


# --- Gaussian helpers -----------------------------------------------------------------------


def gaussian_log_prob(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z | mean, diag(exp(logvar))) summed over all but the batch dimension, in nats."""
    lp = -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar))
    return lp.flatten(1).sum(1)


def gaussian_kl(mean_q: Tensor, logvar_q: Tensor, mean_p: Tensor, logvar_p: Tensor) -> Tensor:
    """Closed-form KL(N_q || N_p) of diagonal Gaussians, summed per sample, in nats (always ≥ 0)."""
    kl = 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2)
                * torch.exp(-logvar_p) - 1.0)
    return kl.flatten(1).sum(1)


class Latent(nn.Module):
    """Identity: the (sampled or mean) latent code passes through it, so hooks can record it."""

    def forward(self, z: Tensor) -> Tensor:
        return z


# --- weight-normalised convolutions -----------------------------------------------------------


class WNConv2d(nn.Module):
    """Weight-normalised convolution, ``w = g · v / ||v||`` per output channel.

    Data-dependent initialisation (Salimans & Kingma 2016, §3): the first forward pass in
    training mode sets ``g`` and the bias so that every output channel has mean 0 and standard
    deviation ``init_scale`` on that batch. The ``initialized`` buffer is saved with the weights,
    so a model loaded from a checkpoint is never re-initialised.
    """

    initialized: Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, transposed: bool = False, init_scale: float = 1.0) -> None:
        super().__init__()
        self.stride, self.padding, self.transposed = stride, padding, transposed
        self.init_scale = init_scale
        shape = ((in_channels, out_channels) if transposed else (out_channels, in_channels))
        self.v = nn.Parameter(torch.randn(*shape, kernel_size, kernel_size) * 0.05)
        self.g = nn.Parameter(torch.ones(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    def _weight(self) -> Tensor:
        dims = (0, 2, 3) if self.transposed else (1, 2, 3)
        norm = self.v.pow(2).sum(dims, keepdim=True).clamp_min(1e-12).sqrt()
        g = self.g.view(1, -1, 1, 1) if self.transposed else self.g.view(-1, 1, 1, 1)
        return g * self.v / norm

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, weight, bias, stride=self.stride, padding=self.padding)
        return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.g.fill_(1.0)
                self.bias.zero_()
                out = self._conv(x, self._weight(), self.bias)
                mean = out.transpose(0, 1).flatten(1).mean(1)
                std = out.transpose(0, 1).flatten(1).std(1, unbiased=False) + 1e-6
                self.g.copy_(self.init_scale / std)
                self.bias.copy_(-mean * self.init_scale / std)
                self.initialized.fill_(1)
        return self._conv(x, self._weight(), self.bias)


def down(channels: int, out_channels: int | None = None) -> WNConv2d:
    """Stride-2 3×3 convolution halving the resolution (the paper's learned downscaling)."""
    return WNConv2d(channels, out_channels or channels, 3, stride=2, padding=1)


def up(channels: int, out_channels: int | None = None) -> WNConv2d:
    """Stride-2 4×4 transposed convolution doubling the resolution (the paper's upscaling)."""
    return WNConv2d(channels, out_channels or channels, 4, stride=2, padding=1, transposed=True)


class ChannelAttention(nn.Module):
    """Channel-wise attention (Zhang et al. 2018): global average pool, bottleneck, sigmoid gate."""

    def __init__(self, channels: int, *, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.excite(F.elu(self.squeeze(w))))
        return x * w


class DenseBlock(nn.Module):
    """Densely connected 3×3 convolutions (growth rate ``growth``), a 1×1 transition back to
    ``channels``, then channel attention; ELU activations throughout, residual around the block."""

    def __init__(self, channels: int, *, growth: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            WNConv2d(channels + i * growth, growth, 3, padding=1) for i in range(n_layers)
        )
        self.transition = WNConv2d(channels + n_layers * growth, channels, 1, init_scale=0.1)
        self.attention = ChannelAttention(channels)

    def forward(self, x: Tensor) -> Tensor:
        features = x
        for layer in self.layers:
            features = torch.cat([features, layer(F.elu(features))], dim=1)
        return x + self.attention(self.transition(F.elu(features)))


# --- discretised logistic mixture ----------------------------------------------------------


class DiscretizedLogisticMixture(nn.Module):
    """Mixture of discretised logistics over 8-bit pixels (Salimans et al. 2017, PixelCNN++).

    Every sub-pixel (channel, row, column) has its own ``n_components`` mixture weights, means and
    log-scales (channels are conditionally independent given the latents, a simplification of
    PixelCNN++'s linear channel dependence). Pixel values in [0, 1] are quantised to the 256 levels
    k/255; bin k covers [k/255 − 1/510, k/255 + 1/510], the end bins extend to ±∞, so the 256
    probabilities of a sub-pixel sum to 1.

    Parameters come as ``(B, 3 · n_components · C, H, W)``: logits, means (offset by 0.5),
    log-scales (offset by −2). The module's output (``forward``) is the mean image in [0, 1].
    """

    HALF_BIN = 1.0 / 510.0
    # Zero parameters mean scale e^-2 ≈ 0.14 (not 1, which spreads mass far outside [0, 1]).
    LOG_SCALE_OFFSET = -2.0

    def __init__(self, channels: int, *, n_components: int = 10) -> None:
        super().__init__()
        self.channels, self.n_components = channels, n_components

    @property
    def n_params(self) -> int:
        return 3 * self.n_components * self.channels

    def split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(log-weights, means, log-scales), each (B, K, C, H, W)."""
        b, _, h, w = params.shape
        p = params.view(b, 3, self.n_components, self.channels, h, w)
        log_weights = F.log_softmax(p[:, 0], dim=1)
        means = p[:, 1] + 0.5
        log_scales = (p[:, 2] + self.LOG_SCALE_OFFSET).clamp(min=-7.0)
        return log_weights, means, log_scales

    def log_prob_pixels(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x) per sub-pixel (B, C, H, W), in nats."""
        log_weights, means, log_scales = self.split(params)
        x = (x.clamp(0, 1) * 255).round() / 255
        x = x.unsqueeze(1)
        centered = x - means
        inv_s = torch.exp(-log_scales)
        plus = inv_s * (centered + self.HALF_BIN)
        minus = inv_s * (centered - self.HALF_BIN)
        log_cdf_plus = plus - F.softplus(plus)          # log σ(plus), for the bin at 0
        log_one_minus_cdf_min = -F.softplus(minus)      # log(1 − σ(minus)), for the bin at 1
        cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv_s * centered
        # When the bin mass underflows, use the density at the bin centre times the bin width.
        log_pdf_mid = mid - log_scales - 2.0 * F.softplus(mid) + math.log(2 * self.HALF_BIN)
        log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)), log_pdf_mid)
        log_probs = torch.where(x < 0.5 / 255, log_cdf_plus,
                                torch.where(x > 254.5 / 255, log_one_minus_cdf_min, log_mid))
        return torch.logsumexp(log_probs + log_weights, dim=1)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x) per image (B,), in nats."""
        return self.log_prob_pixels(x, params).flatten(1).sum(1)

    def mean(self, params: Tensor) -> Tensor:
        """The likelihood's mean image in [0, 1].

        Per component, E[clamp(L, 0, 1)] = s·(softplus(μ/s) − softplus((μ−1)/s)) for a logistic L;
        the discretised variable's mean is the 255-bin midpoint rule of the same integral, so the
        two differ by at most half a grey level (1/510).
        """
        log_weights, means, log_scales = self.split(params)
        s = torch.exp(log_scales)
        comp = s * (F.softplus(means / s) - F.softplus((means - 1.0) / s))
        return (torch.exp(log_weights) * comp).sum(1).clamp(0.0, 1.0)

    def forward(self, params: Tensor) -> Tensor:
        return self.mean(params)

    def sample(self, params: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """A sample on the 256-level grid, in [0, 1]."""
        log_weights, means, log_scales = self.split(params)
        b, k, c, h, w = means.shape
        probs = torch.exp(log_weights).permute(0, 2, 3, 4, 1).reshape(-1, k)
        idx = torch.multinomial(probs, 1, generator=generator).view(b, c, h, w).unsqueeze(1)
        mu = means.gather(1, idx).squeeze(1)
        s = torch.exp(log_scales.gather(1, idx).squeeze(1))
        u = torch.rand(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        u = u.clamp(1e-5, 1 - 1e-5)
        x = mu + s * (torch.log(u) - torch.log1p(-u))
        return (x.clamp(0, 1) * 255).round() / 255


# --- priors -------------------------------------------------------------------------------


class StandardPrior(nn.Module):
    """p(z) = N(0, I) over latents of shape ``shape`` (per sample)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def log_prob(self, z: Tensor) -> Tensor:
        return (-0.5 * (LOG_2PI + z**2)).flatten(1).sum(1)

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        return temperature * torch.randn(n, *self.shape, generator=generator, device=device)


class MoGPrior(nn.Module):
    """Mixture of ``n_components`` diagonal Gaussians with learned weights, means and variances
    over the flattened latent (the paper's appendix A.2 'VAE + MoG', 10 components)."""

    def __init__(self, shape: tuple[int, ...], *, n_components: int = 10) -> None:
        super().__init__()
        self.shape = tuple(shape)
        d = math.prod(self.shape)
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.randn(n_components, d) * 0.5)
        self.logvars = nn.Parameter(torch.zeros(n_components, d))

    def log_prob(self, z: Tensor) -> Tensor:
        flat = z.flatten(1).unsqueeze(1)  # (B, 1, D)
        comp = -0.5 * (LOG_2PI + self.logvars + (flat - self.means) ** 2 * torch.exp(-self.logvars))
        return torch.logsumexp(comp.sum(2) + F.log_softmax(self.logits, 0), dim=1)

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        probs = F.softmax(self.logits, 0).detach().to(device)
        k = torch.multinomial(probs, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, device=device)
        z = self.means[k] + temperature * torch.exp(0.5 * self.logvars[k]) * eps
        return z.view(n, *self.shape)


class _ResidualConvNet(nn.Module):
    """Coupling subnet for image-shaped latents: conv, ``n_blocks`` residual blocks, conv (zero-init)."""

    def __init__(self, channels: int, out_channels: int, hidden: int, n_blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ELU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ELU(),
                          nn.Conv2d(hidden, hidden, 3, padding=1))
            for _ in range(n_blocks)
        )
        self.out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.elu(h))


class _ResidualMLP(nn.Module):
    """Coupling subnet for flat latents: linear, ``n_blocks`` residual blocks, linear (zero-init)."""

    def __init__(self, features: int, out_features: int, hidden: int, n_blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(features, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, hidden))
            for _ in range(n_blocks)
        )
        self.out = nn.Linear(hidden, out_features)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(F.elu(h))


class AffineCoupling(nn.Module):
    """RealNVP affine coupling with a fixed binary mask m (Dinh et al. 2016, Eq. 9):
    y = m·x + (1−m)·(x·exp(s(m·x)) + t(m·x)), log|det ∂y/∂x| = Σ (1−m)·s, with the log-scale
    soft-clamped to (−clamp, clamp)."""

    mask: Tensor

    def __init__(self, mask: Tensor, *, hidden: int = 64, n_blocks: int = 2,
                 clamp: float = 2.0) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.clamp = clamp
        if mask.dim() == 3:
            c = mask.shape[0]
            self.net: nn.Module = _ResidualConvNet(c, 2 * c, hidden, n_blocks)
        else:
            d = mask.shape[0]
            self.net = _ResidualMLP(d, 2 * d, hidden, n_blocks)

    def _scale_shift(self, masked: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(masked).chunk(2, dim=1)
        s = self.clamp * torch.tanh(s / self.clamp)
        inv = 1 - self.mask
        return s * inv, t * inv

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._scale_shift(x * self.mask)
        y = x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        s, t = self._scale_shift(y * self.mask)
        return y * self.mask + (1 - self.mask) * ((y - t) * torch.exp(-s))


def _masks(shape: tuple[int, ...], n: int) -> list[Tensor]:
    """Alternating masks: checkerboard / inverse / channel halves / inverse (image-shaped latents
    with ≥ 2 channels), checkerboard / inverse (1 channel), first half / second half (flat)."""
    if len(shape) == 3:
        c, h, w = shape
        checker = ((torch.arange(h).view(-1, 1) + torch.arange(w).view(1, -1)) % 2).float()
        checker = checker.expand(c, h, w).clone()
        cycle = [checker, 1 - checker]
        if c >= 2:
            chan = (torch.arange(c) < c // 2).float().view(c, 1, 1).expand(c, h, w).clone()
            cycle += [chan, 1 - chan]
    elif len(shape) == 1 and shape[0] >= 2:
        half = (torch.arange(shape[0]) < shape[0] // 2).float()
        cycle = [half, 1 - half]
    else:
        raise InfoprobeError(
            f"Expected a latent of shape (D,) with D ≥ 2 or (C, H, W) for the RealNVP prior, "
            f"got {shape}."
        )
    return [cycle[i % len(cycle)] for i in range(n)]


class Squeeze(nn.Module):
    """Space-to-depth (C, H, W) → (4C, H/2, W/2): a permutation, log-det 0."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return F.pixel_shuffle(y, 2)


class Unsqueeze(nn.Module):
    """Depth-to-space, the inverse of :class:`Squeeze`."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.pixel_shuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return F.pixel_unshuffle(y, 2)


class RealNVPPrior(nn.Module):
    """Flow prior p(z) = N(f(z) | 0, I) · |det ∂f/∂z| with f a stack of affine couplings
    (Dinh et al. 2016; the selfVAE paper's bijective prior, appendix A.2).

    ``forward(z) -> (v, log|det ∂v/∂z|)`` maps latents to the Gaussian base; ``inverse(v)`` maps
    back. ``scales`` groups of ``n_couplings`` couplings: the first at the latent's resolution,
    each further one on the space-to-depth squeezed latent (at half the resolution, then
    unsqueezed again). The paper's CIFAR-10 prior has 2 scales, 64 mid channels and 5 residual
    blocks; unlike Dinh et al. no variables are factored out between scales. The last layer of
    every subnet starts at zero, so an untrained flow is the identity.
    """

    def __init__(self, shape: tuple[int, ...], *, n_couplings: int = 6, hidden: int = 64,
                 n_blocks: int = 2, scales: int = 1) -> None:
        super().__init__()
        self.shape = tuple(shape)
        if scales > 1 and (len(shape) != 3 or shape[1] % 2 ** (scales - 1)
                           or shape[2] % 2 ** (scales - 1)):
            raise InfoprobeError(
                f"A {scales}-scale RealNVP prior needs a (C, H, W) latent with H and W divisible "
                f"by {2 ** (scales - 1)}, got {shape}; use flow_scales=1."
            )
        steps: list[nn.Module] = []
        current = self.shape
        for scale in range(scales):
            if scale > 0:
                steps.append(Squeeze())
                current = (current[0] * 4, current[1] // 2, current[2] // 2)
            steps += [AffineCoupling(m, hidden=hidden, n_blocks=n_blocks)
                      for m in _masks(current, n_couplings)]
        steps += [Unsqueeze() for _ in range(scales - 1)]
        self.couplings = nn.ModuleList(steps)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        logdet = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
        for step in self.couplings:
            z, ld = step(z)
            logdet = logdet + ld
        return z, logdet

    def inverse(self, v: Tensor) -> Tensor:
        for step in reversed(self.couplings):
            assert isinstance(step, AffineCoupling | Squeeze | Unsqueeze)
            v = step.inverse(v)
        return v

    def log_prob(self, z: Tensor) -> Tensor:
        v, logdet = self(z)
        return (-0.5 * (LOG_2PI + v**2)).flatten(1).sum(1) + logdet

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        v = temperature * torch.randn(n, *self.shape, generator=generator, device=device)
        return self.inverse(v)


Prior = StandardPrior | MoGPrior | RealNVPPrior


def build_prior(kind: str, shape: tuple[int, ...], *, n_components: int = 10,
                n_couplings: int = 6, hidden: int = 64, n_blocks: int = 2,
                scales: int = 1) -> Prior:
    """``"standard"`` | ``"mog"`` | ``"realnvp"`` prior over latents of ``shape``."""
    if kind == "standard":
        return StandardPrior(shape)
    if kind == "mog":
        return MoGPrior(shape, n_components=n_components)
    if kind == "realnvp":
        return RealNVPPrior(shape, n_couplings=n_couplings, hidden=hidden, n_blocks=n_blocks,
                            scales=scales)
    raise InfoprobeError(f"Unknown prior {kind!r}; expected 'standard', 'mog' or 'realnvp'.")


# --- multi-resolution DenseNet trunks -----------------------------------------------------


class DenseRescale(nn.Module):
    """``in_channels`` at ``in_hw`` → ``width`` at ``out_hw``: a 3×3 stem and a DenseBlock, then
    per factor of two a stride-2 convolution down (or transposed convolution up) and a DenseBlock."""

    def __init__(self, in_channels: int, width: int, in_hw: int, out_hw: int, *,
                 growth: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        ratio = max(in_hw, out_hw) / min(in_hw, out_hw)
        steps = round(math.log2(ratio))
        if 2**steps != ratio:
            raise InfoprobeError(
                f"Expected resolutions a power of two apart, got {in_hw} and {out_hw}; choose "
                "latent_hw so that every image size is latent_hw · 2^k."
            )
        step = down if in_hw > out_hw else up
        layers: list[nn.Module] = [WNConv2d(in_channels, width, 3, padding=1),
                                   DenseBlock(width, growth=growth, n_layers=n_layers)]
        for _ in range(steps):
            layers += [nn.ELU(), step(width), DenseBlock(width, growth=growth, n_layers=n_layers)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FusionNet(nn.Module):
    """The paper's encoder / decoder network (appendix A.3, Fig. 11), generalised to several inputs.

    Each source ``(channels, hw)`` is brought to ``out_hw`` by a :class:`DenseRescale`; the
    sources are concatenated, mixed by a 1×1 convolution and a DenseBlock, and an ELU and a 3×3
    convolution (initial scale 0.1) give ``out_channels``. One source: a plain encoder (image →
    posterior statistics) or decoder (latent → likelihood parameters); two: a conditional network,
    e.g. p(x | y, z) or p(z | y, u).
    """

    def __init__(self, sources: list[tuple[int, int]], out_channels: int, out_hw: int, *,
                 width: int = 64, growth: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        self.paths = nn.ModuleList(
            DenseRescale(c, width, hw, out_hw, growth=growth, n_layers=n_layers)
            for c, hw in sources
        )
        self.merge = WNConv2d(len(sources) * width, width, 1)
        self.block = DenseBlock(width, growth=growth, n_layers=n_layers)
        self.head = WNConv2d(width, out_channels, 3, padding=1, init_scale=0.1)

    def forward(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != len(self.paths):
            raise InfoprobeError(
                f"Expected {len(self.paths)} inputs to this network, got {len(inputs)}."
            )
        h = torch.cat([path(x) for path, x in zip(self.paths, inputs, strict=True)], dim=1)
        return self.head(F.elu(self.block(self.merge(h))))
