"""selfVAE (registry ``selfvae``): transformations, Eq. 2 terms per level, five modes, bpd."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models
from infoprobe import checkpoint
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from models.selfvae import Downscale, Sketch
from models.vae import INPUT_SHAPES

TINY = {"width": 8, "growth": 4, "dense_layers": 1, "flow_hidden": 8, "flow_blocks": 1,
        "flow_couplings": 2}


def _digits(n: int = 128, split: str = "train") -> torch.Tensor:
    return load_dataset("digits", split=split).images[:n]


def _train(model: torch.nn.Module, x: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adamax(model.parameters(), lr=2e-3)
    model.train()
    for step in range(steps):
        loss = model.loss(x[(step * 32) % len(x):][:32])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_downscale_is_average_pooling_on_the_8bit_grid() -> None:
    x = torch.randint(0, 256, (2, 3, 4, 4)).float() / 255
    y = Downscale()(x)
    expected = ((x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2])
                / 4 * 255).round() / 255
    torch.testing.assert_close(y, expected)


def test_sketch_of_a_flat_image_is_white_and_edges_are_dark() -> None:
    sketch = Sketch(sigma=1.0)
    flat = torch.full((1, 3, 8, 8), 0.4)
    torch.testing.assert_close(sketch(flat), torch.ones(1, 1, 8, 8), atol=1 / 255, rtol=0)
    step = torch.full((1, 1, 8, 16), 0.2)
    step[..., 8:] = 0.8
    out = sketch(step)
    assert out.shape == (1, 1, 8, 16)
    # Flat parts far from the edge are white; the dark side next to the edge draws a line.
    assert float(out[0, 0, 4, 0]) > 0.99 and float(out[0, 0, 4, 15]) > 0.99
    assert float(out[0, 0, 4, 7]) < 0.6 < float(out[0, 0, 4, 6]) < float(out[0, 0, 4, 4])
    torch.testing.assert_close(out * 255, (out * 255).round())


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
@pytest.mark.parametrize("prior", ["standard", "mog", "realnvp"])
def test_every_prior_builds_for_every_dataset(dataset: str, prior: str) -> None:
    m = models.build("selfvae", dataset=dataset, prior=prior, **TINY)
    rebuilt = models.build("selfvae", **m.config)
    assert rebuilt.config == m.config
    x = torch.rand(2, *INPUT_SHAPES[dataset])
    assert torch.isfinite(m.loss(x)["loss"])


@pytest.mark.parametrize(("dataset", "transform", "levels"),
                         [("digits", "downscale", 1), ("digits", "sketch", 1),
                          ("digits", "downscale", 3), ("cifar10", "downscale", 3),
                          ("mnist", "downscale", 2)])
def test_terms_per_level_and_kl_nonnegative(dataset: str, transform: str, levels: int) -> None:
    opts = {} if dataset == "digits" else TINY
    m = models.build("selfvae", dataset=dataset, transform=transform, levels=levels,
                     prior="standard", **opts)
    out = m.loss(torch.rand(3, *INPUT_SHAPES[dataset]))
    kls = ["kl_u", *(f"kl_z{i}" for i in range(1, levels + 1))]
    res = ["re_y1", *(f"re_y{i}" for i in range(2, levels + 1)), "re_x"]
    assert set(kls + res) <= set(out)
    for k in kls:
        assert float(out[k].detach()) >= 0  # closed-form Gaussian KLs
    torch.testing.assert_close(out["re"], sum(out[k] for k in res))
    torch.testing.assert_close(out["kl"], sum(out[k] for k in kls))
    torch.testing.assert_close(out["loss"], out["re"] + out["kl"])


@pytest.mark.parametrize("levels", [1, 2])
def test_z_gain_is_the_elbo_re_x_against_a_prior_z(levels: int) -> None:
    m = models.build("selfvae", dataset="digits", levels=levels, prior="standard").eval()
    _train(m, _digits(), steps=15)
    m.eval()
    x = _digits(16, split="test")
    torch.manual_seed(5)
    with torch.no_grad():
        elbo = m.loss(x)
    torch.manual_seed(5)
    out = m.z_gain(x)
    assert out["re_x_posterior"].shape == (16,)
    torch.testing.assert_close(out["re_x_posterior"].mean(), elbo["re_x"])  # the same draws
    torch.testing.assert_close(out["z_gain"], out["re_x_prior"] - out["re_x_posterior"])
    assert torch.isfinite(out["re_x_prior"]).all()


def test_cifar10_paper_scale_latents() -> None:
    m = models.build("selfvae", dataset="cifar10", **TINY)
    assert m.latent_shapes == [(16, 8, 8), (16, 8, 8)]
    assert [s[1] for s in m.y_shapes] == [16, 32]
    m3 = models.build("selfvae", dataset="cifar10", levels=3, **TINY)
    assert [s[1] for s in m3.y_shapes] == [4, 8, 16, 32]


def test_invalid_configurations_are_rejected() -> None:
    with pytest.raises(InfoprobeError, match="cannot be repeated"):
        models.build("selfvae", transform="sketch", levels=2)
    with pytest.raises(InfoprobeError, match="divisible by 2"):
        models.build("selfvae", dataset="mnist", levels=3)
    with pytest.raises(InfoprobeError, match="Unknown transform"):
        models.build("selfvae", transform="blur")


def test_named_modules_for_the_recorder() -> None:
    m = models.build("selfvae", levels=2)
    names = dict(m.named_modules())
    for name in ["y1", "y2", "u.encoder", "u.latent", "u.decoder", "z1.encoder", "z1.latent",
                 "z1.prior", "z1.decoder", "z2.latent"]:
        assert name in names
    assert m.bottleneck_modules == ("u.latent", "z1.latent", "z2.latent")
    seen: list[str] = []
    for name in m.bottleneck_modules:
        m.get_submodule(name).register_forward_hook(lambda *_a, n=name: seen.append(n))
    m.eval()
    m.reconstruct(_digits(2))
    assert set(seen) == set(m.bottleneck_modules)


@pytest.mark.parametrize("transform", ["downscale", "sketch"])
def test_five_modes_return_images_in_range(transform: str) -> None:
    m = models.build("selfvae", transform=transform, levels=1).eval()
    x = _digits(4)
    out = m.modes(x, generator=torch.Generator().manual_seed(0))
    assert set(out) == {"y", "generation", "conditional_generation",
                        "conditional_reconstruction", "reconstruction_1", "reconstruction_2"}
    for name, img in out.items():
        if name != "y":
            assert img.shape == x.shape, name
        assert img.min() >= 0 and img.max() <= 1, name
    samples = m.generate(3, sample_observed=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples * 255, (samples * 255).round())


def test_deterministic_modes_are_deterministic_and_reconstruct_is_mode_2() -> None:
    m = models.build("selfvae", levels=2).eval()
    x = _digits(4)
    torch.testing.assert_close(m.conditional_reconstruction(x), m.conditional_reconstruction(x))
    torch.testing.assert_close(m.reconstruct(x), m.reconstruction_2(x))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(m.reconstruction_1(x, generator=g1),
                               m.reconstruction_1(x, generator=g2))


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    m = models.build("selfvae", levels=2, prior="realnvp")
    _train(m, _digits(64), 2)
    m.eval()
    loaded = checkpoint.build_model(checkpoint.load(checkpoint.save(tmp_path / "s.pt", m)))
    x = _digits(6)
    for mode in ["reconstruct", "encode", "conditional_reconstruction", "reconstruction_2"]:
        torch.testing.assert_close(getattr(loaded, mode)(x), getattr(m, mode)(x), rtol=0, atol=0)
    a = m.conditional_generation(x, generator=torch.Generator().manual_seed(2))
    b = loaded.conditional_generation(x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_state_dict_round_trip_without_checkpoint_file() -> None:
    m = models.build("selfvae", transform="sketch", prior="mog")
    _train(m, _digits(64), 1)
    m.eval()
    copy = models.build("selfvae", **m.config)
    copy.load_state_dict(m.state_dict())
    copy.eval()
    x = _digits(4)
    torch.testing.assert_close(copy.reconstruct(x), m.reconstruct(x), rtol=0, atol=0)


def test_recipe_is_adamax_2e3() -> None:
    recipe = models.build("selfvae").default_recipe()
    assert recipe["optimizer"] == "adamax" and recipe["lr"] == 2e-3
