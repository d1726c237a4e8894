"""The INN autoencoder: exact invertibility, shapes, parameter counts, identity init, hooks, training."""

from __future__ import annotations

import math

import pytest
import torch

import models
from infoprobe.checkpoint import build_model, load, save
from infoprobe.errors import InfoprobeError
from models.inn_autoencoder import CONFIGS, INNAutoencoder


def _perturb(model: INNAutoencoder, scale: float = 0.05) -> None:
    """Move every trainable parameter off the identity init so inversion is non-trivial."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn_like(p))


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_full_bottleneck_reconstructs_exactly(dataset: str) -> None:
    shape = CONFIGS[dataset]["input_shape"]
    model = models.build("inn-ae", dataset=dataset, bottleneck=math.prod(shape))
    _perturb(model)
    x = torch.rand(8, *shape)
    z = model.latent(x)
    assert (z - x).abs().max() > 1e-2  # the network is not the identity any more
    assert (model.reconstruct(x) - x).abs().max() < 1e-4


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_shapes_for_every_configuration(dataset: str) -> None:
    model = models.build("inn-ae", dataset=dataset, bottleneck=5)
    x = torch.rand(3, *CONFIGS[dataset]["input_shape"])
    code = model.encode(x)
    assert code.shape == (3, 5)
    assert model.decode(code).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    assert set(model.loss(x)) == {"loss", "l1", "zero_penalty"}


@pytest.mark.parametrize(("dataset", "reference"), [("mnist", 1.12e6), ("cifar10", 13.2e6)])
def test_parameter_count_matches_reference(dataset: str, reference: float) -> None:
    model = models.build("inn-ae", dataset=dataset)
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert abs(n - reference) / reference < 0.01


def test_identity_at_initialisation() -> None:
    """Zero last subnet layers make every coupling block the identity, so z = Haar⁻¹(Haar(x)) = x."""
    model = models.build("inn-ae", dataset="digits")
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(model.latent(x), x, atol=1e-6, rtol=0)


def test_encode_keeps_first_k_and_decode_pads_zeros() -> None:
    model = models.build("inn-ae", dataset="digits", bottleneck=6)
    _perturb(model)
    x = torch.rand(4, 1, 8, 8)
    z = model.latent(x).flatten(1)
    torch.testing.assert_close(model.encode(x), z[:, :6])
    padded = torch.cat([z[:, :6], torch.zeros(4, 58)], 1).view(4, 1, 8, 8)
    expected = model.inn(padded, rev=True)[0]
    torch.testing.assert_close(model.decode(z[:, :6]), expected)


def test_zero_penalty_is_mean_square_of_dropped_entries() -> None:
    model = models.build("inn-ae", dataset="digits", bottleneck=10, zero_weight=2.0)
    _perturb(model)
    x = torch.rand(5, 1, 8, 8)
    terms = model.loss(x)
    z = model.latent(x).flatten(1)
    torch.testing.assert_close(terms["zero_penalty"], (z[:, 10:] ** 2).mean())
    torch.testing.assert_close(terms["l1"], (model.reconstruct(x) - x).abs().mean())
    torch.testing.assert_close(terms["loss"], terms["l1"] + 2.0 * terms["zero_penalty"])


def test_hooks_see_forward_bottleneck_inverse() -> None:
    model = models.build("inn-ae", dataset="digits")
    calls: list[tuple[str, bool]] = []
    handles = [
        module.register_forward_hook(
            lambda m, a, kw, out, name=name: calls.append((name, bool(kw.get("rev", False)))),
            with_kwargs=True,
        )
        for name, module in model.named_modules()
        if (name.startswith("inn.") and name.count(".") == 1) or name in ("bottleneck", "pad")
    ]
    model.reconstruct(torch.rand(2, 1, 8, 8))
    for h in handles:
        h.remove()
    blocks = ["inn.haar", "inn.glow1", "inn.glow2", "inn.glow3", "inn.flatten", "inn.fc",
              "inn.unflatten", "inn.haar_up"]
    expected = [(b, False) for b in blocks] + [("bottleneck", False), ("pad", False)]
    expected += [(b, True) for b in reversed(blocks)]
    assert calls == expected
    assert model.bottleneck_modules == ("bottleneck",)


def test_config_rebuilds_and_checkpoint_roundtrip(tmp_path) -> None:
    model = models.build("inn-ae", dataset="digits", bottleneck=12, conv_hidden=8)
    _perturb(model)
    path = save(tmp_path / "inn.pt", model)
    again = build_model(load(path))
    x = torch.rand(4, 1, 8, 8)
    assert again.config == model.config
    torch.testing.assert_close(again.reconstruct(x), model.eval().reconstruct(x), atol=0, rtol=0)


def test_a_few_steps_lower_the_loss() -> None:
    from infoprobe.data import load_dataset

    x = load_dataset("digits", split="train").images[:128]
    model = models.build("inn-ae", dataset="digits")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.8), eps=1e-4)
    first = model.loss(x)["loss"].item()
    for _ in range(20):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    assert model.loss(x)["loss"].item() < 0.8 * first


@pytest.mark.parametrize("bottleneck", [0, 65])
def test_bottleneck_out_of_range_is_a_clear_error(bottleneck: int) -> None:
    with pytest.raises(InfoprobeError, match="between 1 and 64"):
        models.build("inn-ae", dataset="digits", bottleneck=bottleneck)


def test_unknown_dataset_and_option_are_clear_errors() -> None:
    with pytest.raises(InfoprobeError, match="No inn-ae configuration for dataset 'svhn'"):
        models.build("inn-ae", dataset="svhn")
    with pytest.raises(InfoprobeError, match="Cannot build model 'inn-ae'"):
        models.build("inn-ae", dataset="digits", widht=3)
