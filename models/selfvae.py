"""selfVAE: the self-supervised VAE of Gatopoulos & Tomczak (seed 002), registry name ``selfvae``.

A deterministic, discrete transformation y = d(x) (``transform="downscale"``: 2×2 average pooling,
or ``"sketch"``: a pencil sketch) is an extra observed variable; a latent u models y and a latent
z models x given y. The loss is the negative of the paper's Eq. 2,

    −ELBO = −RE_x − RE_y + KL_z + KL_u,
    RE_x = E log p(x | y, z),  RE_y = E log p(y | u),
    KL_z = KL(q(z | x) || p(z | y, u)),  KL_u = KL(q(u | y) || p(u)),

and its K-level generalisation (§3.4) with y_{K+1} = x, y_k = d(y_{k+1}), z_0 = u:
−Σ_k E log p(y_{k+1} | y_k, z_k) − E log p(y_1 | u) + KL_u + Σ_k KL(q(z_k | y_{k+1}) || p(z_k | y_k, z_{k−1})).
Every term is reported per level, in nats per image. KL_z terms are closed-form Gaussian KLs;
KL_u is closed form for the standard prior and a one-sample estimate for the MoG / RealNVP priors.

Named submodules (so the recorder reports information per level): ``y1``..``yK`` (the
transformations, outputs y_k), ``u.encoder`` / ``u.latent`` / ``u.decoder`` / ``u.likelihood``
(``u.prior`` is p(u)), and per level ``zk.encoder`` / ``zk.latent`` / ``zk.prior`` (the network of
p(z_k | y_k, z_{k−1})) / ``zk.decoder`` / ``zk.likelihood``.

Operations (paper §3.3, Fig. 3): :meth:`SelfVAE.generate`, :meth:`~SelfVAE.conditional_generation`,
:meth:`~SelfVAE.conditional_reconstruction`, :meth:`~SelfVAE.reconstruction_1`,
:meth:`~SelfVAE.reconstruction_2`, and :meth:`~SelfVAE.bpd` (importance-sampled, 512 samples in
the paper). For K > 1 the conditional modes are given the ground-truth coarsest y_1; the
intermediate y_k are decoded. Conditional generation samples z ~ p(z | y, u) and conditional
reconstruction infers z ~ q(z | x): this follows §3.3's "sampled or inferred z" and appendix A.6
(conditional generation "alike to reconstruction 1"); the two displayed formulas in §3.3 appear
in the opposite order.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError
from models.base import Autoencoder
from models.vae import INPUT_SHAPES, LOGVAR_RANGE, resolve_config
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

__all__ = ["Downscale", "SelfVAE", "Sketch", "build"]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"width": 16, "growth": 8, "dense_layers": 1, "latent_channels": 4,
               "latent_hw": 2, "n_components": 10, "prior_components": 10,
               "flow_couplings": 4, "flow_hidden": 32, "flow_blocks": 1, "flow_scales": 1,
               "sketch_sigma": 1.0},
    "mnist": {"width": 32, "growth": 16, "dense_layers": 2, "latent_channels": 4,
              "latent_hw": 7, "n_components": 10, "prior_components": 10,
              "flow_couplings": 4, "flow_hidden": 32, "flow_blocks": 2, "flow_scales": 1,
              "sketch_sigma": 1.0},
    # Paper scale (§4.1, A.3): 16×8×8 latents; RealNVP prior: 2 scales, 64 mid channels, 5 blocks.
    "cifar10": {"width": 64, "growth": 32, "dense_layers": 3, "latent_channels": 16,
                "latent_hw": 8, "n_components": 10, "prior_components": 10,
                "flow_couplings": 6, "flow_hidden": 64, "flow_blocks": 5, "flow_scales": 2,
                "sketch_sigma": 1.0},
}


def quantise(x: Tensor) -> Tensor:
    """Round to the 256 levels k/255 (the transformations return discrete values, §3.2)."""
    return (x.clamp(0, 1) * 255).round() / 255


class Downscale(nn.Module):
    """d(x): 2×2 average pooling (halves the resolution), quantised to 8 bits."""

    def forward(self, x: Tensor) -> Tensor:
        return quantise(F.avg_pool2d(x, 2))


class Sketch(nn.Module):
    """d(x): pencil sketch (appendix A.6): the greyscale image colour-dodged with its Gaussian-
    blurred inverse, grey / (1 − blur(1 − grey)), clipped to [0, 1] and quantised to 8 bits.
    Greyscale = ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B); ``sigma`` is the blur in pixels."""

    kernel: Tensor
    luma: Tensor

    def __init__(self, *, sigma: float = 1.0) -> None:
        super().__init__()
        radius = max(1, math.ceil(3 * sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (t / sigma) ** 2)
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        grey = x if x.shape[1] == 1 else (x * self.luma.view(1, 3, 1, 1)).sum(1, keepdim=True)
        r = self.kernel.numel() // 2
        inv = F.pad(1.0 - grey, (r, r, r, r), mode="replicate")
        blurred = F.conv2d(inv, self.kernel.view(1, 1, 1, -1))
        blurred = F.conv2d(blurred, self.kernel.view(1, 1, -1, 1))
        return quantise(grey / (1.0 - blurred).clamp_min(1e-3))


class TopLevel(nn.Module):
    """The u level: q(u | y_1), p(u), p(y_1 | u)."""

    def __init__(self, y_shape: tuple[int, int, int], latent_shape: tuple[int, int, int],
                 config: dict[str, Any], opts: dict[str, int]) -> None:
        super().__init__()
        c, hw, _ = y_shape
        lc, lhw, _ = latent_shape
        self.likelihood = DiscretizedLogisticMixture(c, n_components=config["n_components"])
        self.encoder = FusionNet([(c, hw)], 2 * lc, lhw, **opts)
        self.latent = Latent()
        self.prior: Prior = build_prior(config["prior"], latent_shape,
                                 n_components=config["prior_components"],
                                 n_couplings=config["flow_couplings"],
                                 hidden=config["flow_hidden"], n_blocks=config["flow_blocks"],
                                 scales=config["flow_scales"])
        self.decoder = FusionNet([(lc, lhw)], self.likelihood.n_params, hw, **opts)


class Level(nn.Module):
    """Level k: q(z_k | y_{k+1}), p(z_k | y_k, z_{k−1}), p(y_{k+1} | y_k, z_k)."""

    def __init__(self, y_shape: tuple[int, int, int], target_shape: tuple[int, int, int],
                 prev_latent: tuple[int, int, int], latent_shape: tuple[int, int, int],
                 config: dict[str, Any], opts: dict[str, int]) -> None:
        super().__init__()
        cy, hy, _ = y_shape
        ct, ht, _ = target_shape
        lc, lhw, _ = latent_shape
        self.likelihood = DiscretizedLogisticMixture(ct, n_components=config["n_components"])
        self.encoder = FusionNet([(ct, ht)], 2 * lc, lhw, **opts)
        self.latent = Latent()
        self.prior = FusionNet([(cy, hy), (prev_latent[0], prev_latent[1])], 2 * lc, lhw, **opts)
        self.decoder = FusionNet([(lc, lhw), (cy, hy)], self.likelihood.n_params, ht, **opts)


def _split_stats(stats: Tensor) -> tuple[Tensor, Tensor]:
    mean, logvar = stats.chunk(2, dim=1)
    return mean, logvar.clamp(*LOGVAR_RANGE)


def _sample(mean: Tensor, logvar: Tensor, generator: torch.Generator | None = None,
            temperature: float = 1.0) -> Tensor:
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + temperature * torch.exp(0.5 * logvar) * eps


class SelfVAE(Autoencoder):
    """Self-supervised VAE with ``levels`` transformations (see the module docstring)."""

    registry_name = "selfvae"

    def __init__(self, config: dict[str, Any]) -> None:
        shape = INPUT_SHAPES[config["dataset"]]
        super().__init__(config, input_shape=shape)
        k, transform = config["levels"], config["transform"]
        c, hw, _ = shape
        if transform == "sketch" and k != 1:
            raise InfoprobeError(f"The sketch transformation cannot be repeated; got levels={k}, "
                                 "expected levels=1 (or transform='downscale').")
        if k < 1 or hw % 2**k:
            raise InfoprobeError(f"Expected 1 ≤ levels with {hw} divisible by 2^levels for "
                                 f"dataset {config['dataset']!r}, got levels={k}.")
        # Shapes of y_1 .. y_K, y_{K+1} = x.
        if transform == "downscale":
            self.y_shapes = [(c, hw // 2 ** (k + 1 - i), hw // 2 ** (k + 1 - i))
                             for i in range(1, k + 1)] + [shape]
        elif transform == "sketch":
            self.y_shapes = [(1, hw, hw), shape]
        else:
            raise InfoprobeError(f"Unknown transform {transform!r}; expected 'downscale' or "
                                 "'sketch'.")
        lc, lhw = config["latent_channels"], config["latent_hw"]

        def latent_of(s: tuple[int, int, int]) -> tuple[int, int, int]:
            side = min(lhw, s[1])
            return (lc, side, side)

        opts = {"width": config["width"], "growth": config["growth"],
                "n_layers": config["dense_layers"]}
        for i in range(1, k + 1):
            self.add_module(f"y{i}", Downscale() if transform == "downscale"
                            else Sketch(sigma=config["sketch_sigma"]))
        self.latent_shapes = [latent_of(self.y_shapes[0])]
        self.u = TopLevel(self.y_shapes[0], self.latent_shapes[0], config, opts)
        for i in range(1, k + 1):
            self.latent_shapes.append(latent_of(self.y_shapes[i]))
            self.add_module(f"z{i}", Level(self.y_shapes[i - 1], self.y_shapes[i],
                                           self.latent_shapes[i - 1], self.latent_shapes[i],
                                           config, opts))
        self.bottleneck_modules = ("u.latent", *(f"z{i}.latent" for i in range(1, k + 1)))

    # --- structure ---------------------------------------------------------------------

    @property
    def levels(self) -> int:
        return int(self.config["levels"])

    def level(self, i: int) -> Level:
        """The module of level i (1..K)."""
        module = self.get_submodule(f"z{i}")
        assert isinstance(module, Level)
        return module

    @property
    def n_dims(self) -> int:
        return math.prod(self.input_shape)

    def transform(self, x: Tensor) -> list[Tensor]:
        """[y_1, ..., y_K, x]: y_K = d(x), y_k = d(y_{k+1}) (the sketch is d(x) itself)."""
        ys = [x]
        for i in range(self.levels, 0, -1):
            ys.insert(0, self.get_submodule(f"y{i}")(ys[0]))
        return ys

    def _observe(self, likelihood: DiscretizedLogisticMixture, params: Tensor, *, final: bool,
                 sample: bool, generator: torch.Generator | None) -> Tensor:
        """A generated observed variable: a sample, or the mean (quantised unless it is x)."""
        if sample:
            return likelihood.sample(params, generator=generator)
        mean = likelihood(params)
        return mean if final else quantise(mean)

    # --- the objective -----------------------------------------------------------------

    def _kl_u(self, u: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
        if isinstance(self.u.prior, StandardPrior):
            zeros = torch.zeros_like(mean)
            return gaussian_kl(mean, logvar, zeros, zeros)
        return gaussian_log_prob(u, mean, logvar) - self.u.prior.log_prob(u)

    def _terms(self, x: Tensor, *, prior_re_x: bool = False) -> dict[str, Tensor]:
        """Per-image terms of the negative ELBO (Eq. 2 / §3.4), every latent drawn from its
        posterior; with ``prior_re_x`` also ``re_x_prior``: −log p(x | y_K, z) with the last z drawn
        from its conditional prior instead (drawn after the posterior ones, so the ELBO's draws do
        not change)."""
        ys = self.transform(x)
        terms: dict[str, Tensor] = {}
        mean, logvar = _split_stats(self.u.encoder(ys[0]))
        prev = self.u.latent(_sample(mean, logvar))
        terms["re_y1"] = -self.u.likelihood.log_prob(ys[0], self.u.decoder(prev))
        terms["kl_u"] = self._kl_u(prev, mean, logvar)
        for i in range(1, self.levels + 1):
            lvl = self.level(i)
            mean, logvar = _split_stats(lvl.encoder(ys[i]))
            z = lvl.latent(_sample(mean, logvar))
            p_mean, p_logvar = _split_stats(lvl.prior(ys[i - 1], prev))
            terms[f"kl_z{i}"] = gaussian_kl(mean, logvar, p_mean, p_logvar)
            name = "re_x" if i == self.levels else f"re_y{i + 1}"
            terms[name] = -lvl.likelihood.log_prob(ys[i], lvl.decoder(z, ys[i - 1]))
            if prior_re_x and i == self.levels:
                z_prior = lvl.latent(_sample(p_mean, p_logvar))
                terms["re_x_prior"] = -lvl.likelihood.log_prob(ys[i], lvl.decoder(z_prior, ys[i - 1]))
            prev = z
        return terms

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Negative ELBO (Eq. 2 / §3.4) averaged over the batch, with every term per level."""
        terms = self._terms(x)
        re = sum(v for k, v in terms.items() if k.startswith("re_"))
        kl = sum(v for k, v in terms.items() if k.startswith("kl_"))
        assert isinstance(re, Tensor) and isinstance(kl, Tensor)
        loss = (re + kl).mean()
        out = {"loss": loss, "re": re.mean(), "kl": kl.mean(),
               "bpd": loss.detach() / (self.n_dims * math.log(2))}
        out.update({k: v.mean() for k, v in terms.items()})
        return out

    @torch.no_grad()
    def z_gain(self, x: Tensor) -> dict[str, Tensor]:
        """What the last level's z tells about x beyond y_K, per image in nats.

        ``re_x_posterior`` is −log p(x | y_K, z) with z ~ q(z | x) (the ELBO's ``re_x``; the same
        random draws as :meth:`loss` after the same seed), ``re_x_prior`` the same with z drawn
        from the conditional prior p(z | y_K, ·) instead, and ``z_gain`` their difference: how
        much better x is explained by its own z than by one the model would generate from y_K.
        Read beside ``kl_z`` (the rate z costs): near 0 means x is decoded from y_K alone.
        """
        terms = self._terms(x, prior_re_x=True)
        posterior, prior = terms["re_x"], terms["re_x_prior"]
        return {"re_x_posterior": posterior, "re_x_prior": prior, "z_gain": prior - posterior}

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, *, n_importance: int = 512,
                       max_batch: int = 256) -> Tensor:
        """Importance-sampled log p(x, y_1..y_K) per image (Burda et al. 2015), in nats, with
        proposal q(u | y_1) Π q(z_k | y_{k+1}). Since the y_k are functions of x this is
        log p(x) of the model (the paper's bpd). Call in eval mode."""
        b = x.shape[0]
        ys = self.transform(x)
        posts = [_split_stats(self.u.encoder(ys[0]))]
        posts += [_split_stats(self.level(i).encoder(ys[i])) for i in range(1, self.levels + 1)]
        chunk = max(1, max_batch // b)
        log_w = []
        for start in range(0, n_importance, chunk):
            s = min(chunk, n_importance - start)

            def rep(t: Tensor, s: int = s) -> Tensor:
                return t.repeat_interleave(s, 0)

            rys = [rep(y) for y in ys]
            lw = torch.zeros(b * s, device=x.device, dtype=x.dtype)
            latents = []
            for mean, logvar in posts:
                m, lv = rep(mean), rep(logvar)
                z = _sample(m, lv)
                lw = lw - gaussian_log_prob(z, m, lv)
                latents.append(z)
            lw = lw + self.u.prior.log_prob(latents[0])
            lw = lw + self.u.likelihood.log_prob(rys[0], self.u.decoder(latents[0]))
            for i in range(1, self.levels + 1):
                lvl = self.level(i)
                p_mean, p_logvar = _split_stats(lvl.prior(rys[i - 1], latents[i - 1]))
                lw = lw + gaussian_log_prob(latents[i], p_mean, p_logvar)
                lw = lw + lvl.likelihood.log_prob(rys[i], lvl.decoder(latents[i], rys[i - 1]))
            log_w.append(lw.view(b, s))
        return torch.logsumexp(torch.cat(log_w, 1), 1) - math.log(n_importance)

    def bpd(self, x: Tensor, *, n_importance: int = 512) -> Tensor:
        """Negative log-likelihood in bits per dimension of x, averaged over the batch."""
        ll = self.log_likelihood(x, n_importance=n_importance)
        return -ll.mean() / (self.n_dims * math.log(2))

    # --- the five modes ----------------------------------------------------------------

    def _run_down(self, u: Tensor, y1: Tensor | None, zs: list[Tensor] | None, *,
                  temperature: float, sample_observed: bool,
                  generator: torch.Generator | None) -> Tensor:
        """From u (and the given y_1 and/or inferred z's) down to x; missing z's are sampled
        from p(z_k | y_k, z_{k−1}), a missing y_1 is generated from p(y_1 | u)."""
        if y1 is None:
            y1 = self._observe(self.u.likelihood, self.u.decoder(u), final=False,
                               sample=sample_observed, generator=generator)
        y, prev = y1, u
        for i in range(1, self.levels + 1):
            lvl = self.level(i)
            if zs is None:
                p_mean, p_logvar = _split_stats(lvl.prior(y, prev))
                z = lvl.latent(_sample(p_mean, p_logvar, generator, temperature))
            else:
                z = zs[i - 1]
            y = self._observe(lvl.likelihood, lvl.decoder(z, y), final=i == self.levels,
                              sample=sample_observed, generator=generator)
            prev = z
        return y

    def _infer(self, x: Tensor) -> tuple[list[Tensor], Tensor, list[Tensor]]:
        """Ground-truth [y_1..y_K, x], the mean of q(u | y_1), the means of q(z_k | y_{k+1})."""
        ys = self.transform(x)
        u = self.u.latent(_split_stats(self.u.encoder(ys[0]))[0])
        zs = [self.level(i).latent(_split_stats(self.level(i).encoder(ys[i]))[0])
              for i in range(1, self.levels + 1)]
        return ys, u, zs

    @torch.no_grad()
    def generate(self, n: int, *, temperature: float = 1.0, sample_observed: bool = False,
                 generator: torch.Generator | None = None) -> Tensor:
        """Generation (Fig. 3 i): u ~ p(u) → y ~ p(y|u) → z ~ p(z|y,u) → x ~ p(x|z,y).

        Latents are sampled (their standard deviation scaled by ``temperature``); observed
        variables are the likelihood means, or samples with ``sample_observed=True``.
        """
        u = self.u.latent(self.u.prior.sample(n, temperature=temperature, generator=generator,
                                              device=self.device))
        return self._run_down(u, None, None, temperature=temperature,
                              sample_observed=sample_observed, generator=generator)

    @torch.no_grad()
    def conditional_generation(self, x: Tensor, *, temperature: float = 1.0,
                               sample_observed: bool = False,
                               generator: torch.Generator | None = None) -> Tensor:
        """Conditional generation (Fig. 3 ii): ground-truth y, u inferred from it, z ~ p(z|y,u)."""
        ys, u, _ = self._infer(x)
        return self._run_down(u, ys[0], None, temperature=temperature,
                              sample_observed=sample_observed, generator=generator)

    @torch.no_grad()
    def conditional_reconstruction(self, x: Tensor) -> Tensor:
        """Conditional reconstruction (Fig. 3 iii): ground-truth y and z inferred from x."""
        ys, u, zs = self._infer(x)
        return self._run_down(u, ys[0], zs, temperature=1.0, sample_observed=False,
                              generator=None)

    @torch.no_grad()
    def reconstruction_1(self, x: Tensor, *, temperature: float = 1.0,
                         sample_observed: bool = False,
                         generator: torch.Generator | None = None) -> Tensor:
        """Reconstruction 1 (Fig. 3 iv): u inferred from y*, y ~ p(y|u), z ~ p(z|y,u)."""
        _, u, _ = self._infer(x)
        return self._run_down(u, None, None, temperature=temperature,
                              sample_observed=sample_observed, generator=generator)

    @torch.no_grad()
    def reconstruction_2(self, x: Tensor) -> Tensor:
        """Reconstruction 2 (Fig. 3 v): u inferred from y*, y from p(y|u), z inferred from x."""
        _, u, zs = self._infer(x)
        return self._run_down(u, None, zs, temperature=1.0, sample_observed=False,
                              generator=None)

    def modes(self, x: Tensor, *, generator: torch.Generator | None = None
              ) -> dict[str, Tensor]:
        """All five modes on ``x`` (generation draws ``len(x)`` images), plus the ground-truth y_1."""
        return {
            "y": self.transform(x)[0],
            "generation": self.generate(x.shape[0], generator=generator),
            "conditional_generation": self.conditional_generation(x, generator=generator),
            "conditional_reconstruction": self.conditional_reconstruction(x),
            "reconstruction_1": self.reconstruction_1(x, generator=generator),
            "reconstruction_2": self.reconstruction_2(x),
        }

    # --- the Autoencoder interface -------------------------------------------------------

    def encode(self, x: Tensor) -> Tensor:
        """The posterior means of u, z_1..z_K, flattened and concatenated (B, Σ dims)."""
        _, u, zs = self._infer(x)
        return torch.cat([t.flatten(1) for t in (u, *zs)], dim=1)

    def decode(self, code: Tensor) -> Tensor:
        """Inverse of :meth:`encode`'s layout, decoded as in reconstruction 2 (means throughout)."""
        sizes = [math.prod(s) for s in self.latent_shapes]
        if code.dim() != 2 or code.shape[1] != sum(sizes):
            raise InfoprobeError(f"Expected codes of shape (B, {sum(sizes)}), got "
                                 f"{tuple(code.shape)}.")
        parts = [p.view(-1, *s) for p, s in zip(code.split(sizes, 1), self.latent_shapes,
                                                 strict=True)]
        return self._run_down(parts[0], None, parts[1:], temperature=1.0,
                              sample_observed=False, generator=None)

    def sample(self, n: int, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        return self.generate(n, temperature=temperature, generator=generator)

    def default_recipe(self) -> dict[str, Any]:
        """Adamax, lr 2e-3 (paper §4.1). Epochs and batch size are not stated in the paper; the
        values here are this project's choice."""
        epochs = {"digits": 30, "mnist": 20, "cifar10": 100}[self.config["dataset"]]
        return {"optimizer": "adamax", "lr": 2e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                "weight_decay": 0.0, "milestones": [], "gamma": 0.1, "epochs": epochs,
                "batch_size": 64 if self.config["dataset"] == "cifar10" else 128}


def build(*, dataset: str = "digits", transform: str = "downscale", levels: int = 1,
          prior: str = "realnvp", **overrides: Any) -> SelfVAE:
    """``models.build("selfvae", dataset=..., transform="downscale"|"sketch", levels=K)``.

    ``prior`` is p(u): ``"realnvp"`` (the paper's), ``"mog"`` or ``"standard"``.
    """
    if prior not in ("standard", "mog", "realnvp"):
        raise InfoprobeError(f"Unknown prior {prior!r}; expected 'standard', 'mog' or 'realnvp'.")
    config = resolve_config("selfvae", dataset, _DEFAULTS, overrides)
    return SelfVAE({**config, "transform": transform, "levels": int(levels), "prior": prior})
