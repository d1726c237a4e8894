"""The VAE family (registry ``vae``) and WAE (``wae``): configs, losses, bpd, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import models
from infoprobe import checkpoint
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from models.vae import INPUT_SHAPES, imq_mmd


def _digits(n: int = 128) -> torch.Tensor:
    return load_dataset("digits").images[:n]


def _save_load(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Checkpoint round trip through infoprobe.checkpoint (file, registry, weights)."""
    return checkpoint.build_model(checkpoint.load(checkpoint.save(path, model)))


def _train(model: torch.nn.Module, x: torch.Tensor, steps: int, lr: float = 2e-3) -> list[float]:
    opt = torch.optim.Adamax(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        batch = x[(step * 32) % len(x):][:32]
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
@pytest.mark.parametrize("prior", ["standard", "mog", "realnvp"])
def test_every_prior_builds_for_every_dataset(dataset: str, prior: str) -> None:
    small = {} if dataset == "digits" else {"width": 8, "growth": 4, "dense_layers": 1,
                                            "flow_hidden": 8, "flow_blocks": 1}
    m = models.build("vae", dataset=dataset, prior=prior, **small)
    assert m.config["dataset"] == dataset and m.config["prior"] == prior
    json.dumps(m.config)
    x = torch.rand(2, *INPUT_SHAPES[dataset])
    out = m.loss(x)
    assert {"loss", "re", "kl", "bpd"} <= set(out) and torch.isfinite(out["loss"])
    m.eval()
    rec = m.reconstruct(x)
    assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1
    rebuilt = models.build(m.registry_name, **m.config)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in m.parameters())


def test_mnist_uses_dcgan_and_cifar_the_paper_latent() -> None:
    assert models.build("vae", dataset="mnist").config["architecture"] == "dcgan"
    cifar = models.build("vae", dataset="cifar10", width=8, growth=4, dense_layers=1)
    assert cifar.latent_shape == (16, 8, 8)
    assert cifar.encode(torch.rand(1, 3, 32, 32)).shape == (1, 16, 8, 8)


def test_unknown_options_are_rejected() -> None:
    with pytest.raises(InfoprobeError, match="Unknown option"):
        models.build("vae", dataset="digits", latnet_dim=3)
    with pytest.raises(InfoprobeError, match="Unknown prior"):
        models.build("vae", prior="flow")
    with pytest.raises(InfoprobeError, match="Unknown dataset"):
        models.build("vae", dataset="svhn")


def test_kl_closed_form_nonnegative_for_standard_prior() -> None:
    m = models.build("vae", dataset="digits")
    for _ in range(3):
        assert float(m.loss(_digits(16))["kl"].detach()) >= 0


def test_learned_prior_kl_estimate_nonnegative_on_average() -> None:
    # KL(q || p) ≥ 0; the one-sample estimate log q − log p is ≥ 0 in expectation.
    m = models.build("vae", dataset="digits", prior="realnvp")
    x = _digits(4)
    with torch.no_grad():
        mean, logvar = m.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(1000, *mean.shape)
        kl = m.kl(z.flatten(0, 1), mean.repeat(1000, 1, 1, 1), logvar.repeat(1000, 1, 1, 1))
    assert float(kl.mean()) >= -0.05


def test_latent_module_sees_the_code() -> None:
    m = models.build("vae", dataset="digits").eval()
    seen = []
    m.get_submodule(m.bottleneck_modules[0]).register_forward_hook(
        lambda _m, _i, out: seen.append(out))
    code = m.encode(_digits(4))
    assert len(seen) == 1 and torch.equal(seen[0], code)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    m = models.build("vae", dataset="digits", prior="mog")
    _train(m, _digits(64), 2)
    m.eval()
    loaded = _save_load(m, tmp_path / "vae.pt")
    x = _digits(8)
    torch.testing.assert_close(loaded.reconstruct(x), m.reconstruct(x), rtol=0, atol=0)
    torch.testing.assert_close(loaded.encode(x), m.encode(x), rtol=0, atol=0)
    gen = torch.Generator().manual_seed(3)
    a = m.sample(4, generator=gen)
    b = loaded.sample(4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_eval_mode_is_deterministic() -> None:
    m = models.build("vae", dataset="digits").eval()
    x = _digits(4)
    assert torch.equal(m.reconstruct(x), m.reconstruct(x))


def test_imq_mmd_small_for_same_distribution_and_large_for_shifted() -> None:
    a, b = torch.randn(200, 4), torch.randn(200, 4)
    same, shifted = imq_mmd(a, b), imq_mmd(a + 2.0, b)
    assert abs(float(same)) < 0.05 and float(shifted) > 10 * abs(float(same))


@pytest.mark.slow
def test_wae_loss_decreases_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = models.build("wae", dataset="digits")
    assert m.default_recipe()["optimizer"] == "adam"
    losses = _train(m, _digits(256), 60, lr=1e-3)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10
    m.eval()
    loaded = _save_load(m, tmp_path / "w.pt")
    torch.testing.assert_close(loaded.reconstruct(_digits(4)), m.reconstruct(_digits(4)))


def test_recipe_is_adamax_for_vae() -> None:
    recipe = models.build("vae").default_recipe()
    assert recipe["optimizer"] == "adamax" and recipe["lr"] == 2e-3
