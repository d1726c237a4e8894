"""PIE, the Pseudo-Invertible Encoder (Beitler, Sosnovik & Smeulders), as a zoo model.

A bijective flow whose blocks each end in a split: the kept variables go on, the dropped ones
are constrained to N(0, σ²), a narrow Gaussian standing in for the Dirac delta of the exact
restriction (PIE Sec. 3, Eqs. 4, 10–13). The code is what the last block keeps; decoding runs
the exact inverse with every dropped part set to 0.

Architecture (PIE Sec. 4.1 and 5.1): ``conv_blocks`` convolutional blocks (checkerboard
downsampling, then ``couplings_per_block`` × [affine coupling, Householder 1×1 convolution],
then a split keeping ``keep_fraction`` of the channels), then one linear block per entry of
``linear_dims`` ([affine coupling, Householder linear map] × ``couplings_per_block``, then a split
keeping that many features; no split when nothing is dropped).

- ``mnist`` (1×28×28): 784 → 4×14×14 → keep 2×14×14 (392) → 8×7×7 → keep 4×7×7 (196) → 64 →
  10 → 10, the paper's configuration (784 → 10).
- ``digits`` (1×8×8): 64 → 4×4×4 → keep 2×4×4 (32) → 8×2×2 → keep 4×2×2 (16) → 12 → 10 → 10.

Objective (PIE Eq. 13/17), the exact log-likelihood of the σ-relaxed model::

    log p(x) = log N(z; 0, I) + Σ_blocks log N(r_b; 0, σ² I) + Σ_layers log|det J|

``loss(x)`` is −log p(x + u) in nats per input dimension, averaged over the batch, with
uniform dequantisation noise u ~ U(0, Δ)^D of one pixel-grid step Δ (``dequantize``; 1/255 for
MNIST, 1/16 for digits). The paper does not mention dequantisation; without it a continuous
density on discrete pixels can grow without bound.

Choices the paper leaves open (documented, configurable): subnetworks (3×3/1×1/3×3 CNN with
``hidden_channels``, 3-layer MLP with ``hidden_features``), 3 couplings per block, Adam at lr 1e-3
(the paper says only "Adam"), and the soft clamp of the couplings' log-scales, 0.1.

Why the clamp is tight (``analyses/results/pie_diagnosis.md``). The σ-relaxed likelihood is
invariant under a rescaling of the dropped variables: contracting them by a factor a gains
log a per variable in the σ-term and loses exactly that in log|det J|. With a loose clamp (2,
this project's earlier choice: each coupling may scale by up to e²) the flow absorbs any σ by
contracting the dropped variables (their fitted RMS equals σ), so σ no longer pushes information
into the code and decoding with the dropped parts at 0 gives the mean digit. With clamp 0.1 the
couplings are nearly volume-preserving, the σ-term acts like the residual variance of PCA, and
lower σ forces the code to carry more (MNIST, 5,000 images, σ = 0.01: reconstruction
class-consistency 0.41 after 3 epochs and 0.75 after 16 with clamp 0.1, against 0.09 after 3
with clamp 0.5 and 0.13 after 2 with clamp 2; σ = 1 stays at chance). The paper states no clamp;
the price is a worse density model (a larger NLL), which this model is not used for.

``recon_weight`` (default 0, the paper's objective) adds a weighted pixel reconstruction error of
the zero-filled decoding to the loss. It is not PIE's method; it exists to test whether the
likelihood objective or the architecture limits the reconstructions (``pie_diagnosis.md``).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from infoprobe.data import dataset_spec
from infoprobe.errors import InfoprobeError
from models.base import Autoencoder
from models.bijections import (
    AffineCoupling,
    Downsample,
    Flatten,
    HouseholderConv1x1,
    HouseholderLinear,
    Split,
)

__all__ = ["CONFIGS", "PIE", "PIEBlock", "build"]

_LOG_2PI = math.log(2.0 * math.pi)

CONFIGS: dict[str, dict[str, Any]] = {
    "mnist": {
        "input_shape": list(dataset_spec("mnist").shape), "conv_blocks": 2, "keep_fraction": 0.5,
        "linear_dims": [64, 10, 10], "couplings_per_block": 3, "n_reflections": 3,
        "hidden_channels": 64, "hidden_features": 256, "clamp": 0.1, "dequantize": 1.0 / 255,
        "recon_weight": 0.0,
    },
    "digits": {
        "input_shape": list(dataset_spec("digits").shape), "conv_blocks": 2, "keep_fraction": 0.5,
        "linear_dims": [12, 10, 10], "couplings_per_block": 3, "n_reflections": 3,
        "hidden_channels": 32, "hidden_features": 64, "clamp": 0.1, "dequantize": 1.0 / 16,
        "recon_weight": 0.0,
    },
}  # fmt: skip


class PIEBlock(nn.Module):
    """One PIE block (Sec. 4.1): bijective ``layers`` followed by an optional :class:`Split`.

    Not called itself: :meth:`encode` and :meth:`decode` call each layer through
    ``nn.Module.__call__`` (``rev=True`` for the inverse), so hooks see every layer.
    """

    def __init__(self, layers: list[nn.Module], split: Split | None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.split = split

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(kept, dropped or None, log|det J| per sample)``."""
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        if self.split is None:
            return x, None, logdet
        kept, dropped = self.split(x)
        return kept, dropped, logdet

    def decode(self, kept: Tensor, dropped: Tensor | None = None) -> Tensor:
        """Exact inverse given the dropped part; zeros in its place when ``dropped`` is None."""
        x = kept if self.split is None else self.split(kept, rev=True, dropped=dropped)
        for layer in reversed(self.layers):
            x, _ = layer(x, rev=True)
        return x


class PIE(Autoencoder):
    """Pseudo-Invertible Encoder; see the module docstring. Build with :func:`build`."""

    registry_name = "pie"
    bottleneck_modules = ("code",)

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config, input_shape=tuple(config["input_shape"]))
        self.sigma = float(config["sigma"])
        self.dequantize = float(config["dequantize"])
        self.recon_weight = float(config["recon_weight"])
        if not self.recon_weight >= 0:
            raise InfoprobeError(f"PIE needs recon_weight >= 0 (0 is the paper's objective), got {self.recon_weight}.")
        k, r = int(config["couplings_per_block"]), int(config["n_reflections"])
        hc, hf, clamp = int(config["hidden_channels"]), int(config["hidden_features"]), float(config["clamp"])
        c, h, w = self.input_shape
        blocks: list[PIEBlock] = []
        for _ in range(int(config["conv_blocks"])):
            c, h, w = 4 * c, h // 2, w // 2
            layers: list[nn.Module] = [Downsample()]
            for _ in range(k):
                layers += [AffineCoupling(c, hidden=hc, conv=True, clamp=clamp),
                           HouseholderConv1x1(c, n_reflections=r)]
            keep = max(1, round(c * float(config["keep_fraction"])))
            blocks.append(PIEBlock(layers, Split(c, keep)))
            c = keep
        d = c * h * w
        for i, dim in enumerate(config["linear_dims"]):
            layers = [Flatten((c, h, w))] if i == 0 else []
            for _ in range(k):
                layers += [AffineCoupling(d, hidden=hf, conv=False, clamp=clamp),
                           HouseholderLinear(d, n_reflections=r)]
            if dim > d:
                raise InfoprobeError(
                    f"PIE linear_dims must not increase: block {i} gets {d} features, asked for {dim}."
                )
            blocks.append(PIEBlock(layers, Split(d, dim) if dim < d else None))
            d = dim
        self.blocks = nn.ModuleList(blocks)
        self.code_dim = d
        self.code = nn.Identity()  # its output is the code: the hookable bottleneck

    # --- the bijection and its inverse -------------------------------------------------------

    def _pie_blocks(self) -> list[PIEBlock]:
        return cast(list[PIEBlock], list(self.blocks))

    def encode_all(self, x: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """``(code B×code_dim, dropped part of each splitting block, Σ log|det J| per sample)``."""
        self._check(x)
        logdet = x.new_zeros(x.shape[0])
        residuals: list[Tensor] = []
        for block in self._pie_blocks():
            x, dropped, ld = block.encode(x)
            logdet = logdet + ld
            if dropped is not None:
                residuals.append(dropped)
        return self.code(x), residuals, logdet

    def encode(self, x: Tensor) -> Tensor:
        """The code: the variables the last block keeps (B×code_dim)."""
        return self.encode_all(x)[0]

    def decode(self, code: Tensor, *, residuals: list[Tensor] | None = None) -> Tensor:
        """Inverse pass from the code; dropped parts are 0 unless ``residuals`` (from
        :meth:`encode_all`) are given, in which case the inverse is exact."""
        splitting = [b for b in self._pie_blocks() if b.split is not None]
        if residuals is not None and len(residuals) != len(splitting):
            raise InfoprobeError(
                f"decode expects {len(splitting)} residual tensors (one per split), got {len(residuals)}."
            )
        dropped = iter(reversed(residuals)) if residuals is not None else None
        x = code
        for block in reversed(self._pie_blocks()):
            r = next(dropped) if dropped is not None and block.split is not None else None
            x = block.decode(x, r)
        return x

    # --- likelihood ----------------------------------------------------------------------------

    def log_likelihood(self, x: Tensor) -> dict[str, Tensor]:
        """Per-sample terms of log p(x) in nats (PIE Eq. 17): ``total``, ``latent``
        (log N(z; 0, I)), ``residual`` (Σ log N(r; 0, σ²I)), ``logdet``; plus ``residual_sq``
        (Σ r², for monitoring how tightly the constraint holds)."""
        return self._log_likelihood(*self.encode_all(x))

    def _log_likelihood(self, z: Tensor, residuals: list[Tensor], logdet: Tensor) -> dict[str, Tensor]:
        latent = -0.5 * (z.pow(2).sum(1) + z.shape[1] * _LOG_2PI)
        residual_sq = z.new_zeros(z.shape[0])
        n_res = 0
        for r in residuals:
            sq = r.pow(2).flatten(1).sum(1)
            residual_sq = residual_sq + sq
            n_res += r[0].numel()
        residual = -0.5 * residual_sq / self.sigma**2 - n_res * (math.log(self.sigma) + 0.5 * _LOG_2PI)
        return {"total": latent + residual + logdet, "latent": latent, "residual": residual,
                "logdet": logdet, "residual_sq": residual_sq}  # fmt: skip

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Negative log-likelihood of dequantised ``x`` in nats per input dimension.

        ``loss`` = ``nll_latent`` + ``nll_residual`` − ``logdet`` (all per dimension, batch
        means); ``residual_rms`` is the root-mean-square of the dropped variables (compare σ).
        With ``recon_weight`` > 0 (not the paper's objective, off by default) it adds
        ``recon_weight`` × ``recon_mse``, the mean squared error of decoding the code with every
        dropped part at 0: a diagnostic that trains the same architecture on what the
        reconstructions are judged by (``analyses/results/pie_diagnosis.md``).
        """
        if self.dequantize > 0:
            x = x + torch.rand_like(x) * self.dequantize
        z, residuals, logdet = self.encode_all(x)
        terms = self._log_likelihood(z, residuals, logdet)
        dims = math.prod(self.input_shape)
        n_res = dims - self.code_dim
        out = {
            "loss": -terms["total"].mean() / dims,
            "nll_latent": -terms["latent"].mean() / dims,
            "nll_residual": -terms["residual"].mean() / dims,
            "logdet": terms["logdet"].mean() / dims,
            "residual_rms": (terms["residual_sq"].mean() / max(n_res, 1)).sqrt(),
        }
        if self.recon_weight > 0:
            out["recon_mse"] = (self.decode(z) - x).pow(2).mean()
            out["loss"] = out["loss"] + self.recon_weight * out["recon_mse"]
        return out

    # --- generation ----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` images decoded from codes z ~ N(0, temperature² I), dropped parts at 0."""
        z = torch.randn(n, self.code_dim, generator=generator, device=self.device)
        return self.decode(temperature * z)

    @torch.no_grad()
    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 10) -> Tensor:
        """Decode ``steps`` codes on the line from encode(x1) to encode(x2), ends included.

        Single images (C×H×W) give ``steps×C×H×W``; batches (B×C×H×W) give ``B×steps×C×H×W``.
        """
        single = x1.dim() == len(self.input_shape)
        if single:
            x1, x2 = x1.unsqueeze(0), x2.unsqueeze(0)
        z1, z2 = self.encode(x1), self.encode(x2)
        t = torch.linspace(0.0, 1.0, steps, device=z1.device, dtype=z1.dtype)
        z = z1[:, None] + t[None, :, None] * (z2 - z1)[:, None]
        out = self.decode(z.reshape(-1, self.code_dim)).reshape(z1.shape[0], steps, *self.input_shape)
        return out[0] if single else out

    def default_recipe(self) -> dict[str, Any]:
        """Adam (the paper's optimiser; lr, epochs and batch size are this project's choice)."""
        mnist = self.config["dataset"] == "mnist"
        return {
            "optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
            "weight_decay": 0.0, "milestones": [], "gamma": 0.1,
            "epochs": 20 if mnist else 100, "batch_size": 128 if mnist else 64,
        }  # fmt: skip

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise InfoprobeError(
                f"PIE({self.config['dataset']}) expects B×{'×'.join(map(str, self.input_shape))} "
                f"images, got {tuple(x.shape)}."
            )


def build(*, dataset: str = "digits", sigma: float = 0.1, **overrides: Any) -> PIE:
    """Build a PIE for ``dataset`` ("mnist" or "digits") with residual scale ``sigma``.

    ``overrides`` replace entries of :data:`CONFIGS` (e.g. ``hidden_channels=16``,
    ``couplings_per_block=2``, ``linear_dims=[64, 10, 10]``).
    """
    if dataset not in CONFIGS:
        raise InfoprobeError(
            f"PIE has configurations for {sorted(CONFIGS)}, got dataset={dataset!r}."
        )
    config = dict(CONFIGS[dataset])
    unknown = set(overrides) - set(config)
    if unknown:
        raise InfoprobeError(
            f"Unknown PIE option(s) {sorted(unknown)}; valid: {sorted(config)} plus dataset, sigma."
        )
    config.update(overrides)
    if not sigma > 0:
        raise InfoprobeError(f"PIE needs sigma > 0 (the std of the dropped variables), got {sigma}.")
    config["input_shape"] = [int(s) for s in config["input_shape"]]
    config["linear_dims"] = [int(d) for d in config["linear_dims"]]
    return PIE({"dataset": dataset, "sigma": float(sigma), **config})
