"""The classical autoencoders: shapes, parameter counts, layer names, init, training, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import models
from infoprobe.checkpoint import build_model, load, save
from infoprobe.errors import InfoprobeError
from models.classical_autoencoder import CONFIGS


@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
def test_shapes_for_every_configuration(dataset: str) -> None:
    model = models.build("classical-ae", dataset=dataset, bottleneck=7)
    x = torch.rand(2, *CONFIGS[dataset]["input_shape"])
    code = model.encode(x)
    assert code.shape == (2, 7)
    out = model.decode(code)
    assert out.shape == x.shape
    assert out.abs().max() <= 1.0  # Tanh output


def test_mnist_parameter_count_matches_reference() -> None:
    model = models.build("classical-ae", dataset="mnist", bottleneck=20)
    n = sum(p.numel() for p in model.parameters())
    # 784·512+512 + 512·256+256 + 256·128+128 + 128·20+20, and the mirrored decoder
    assert n == 1_138_212
    assert abs(n - 1.14e6) / 1.14e6 < 0.01


def test_cifar10_architecture_follows_reference() -> None:
    model = models.build("classical-ae", dataset="cifar10", bottleneck=16)
    x = torch.rand(1, 3, 32, 32)
    sizes = {}
    handles = [m.register_forward_hook(lambda m, a, o, n=n: sizes.__setitem__(n, tuple(o.shape[1:])))
               for n, m in model.named_modules() if not list(m.children())]
    model.reconstruct(x)
    for h in handles:
        h.remove()
    assert sizes["encoder.conv5"] == (1024, 3, 3)
    assert sizes["encoder.out"] == (16,)
    assert sizes["decoder.fc1"] == (9216,)
    assert sizes["decoder.out"] == (3, 32, 32)
    assert list(sizes) == [
        "encoder.conv1", "encoder.conv2", "encoder.conv3", "encoder.conv4", "encoder.conv5",
        "encoder.out", "decoder.fc1", "decoder.conv1", "decoder.conv2", "decoder.conv3",
        "decoder.conv4", "decoder.out",
    ]


def test_mnist_layer_names_read_well() -> None:
    model = models.build("classical-ae", dataset="mnist")
    leaves = [n for n, m in model.named_modules() if not list(m.children())]
    assert leaves == ["encoder.fc1", "encoder.fc2", "encoder.fc3", "encoder.out",
                      "decoder.fc1", "decoder.fc2", "decoder.fc3", "decoder.out"]
    assert model.bottleneck_modules == ("encoder.out",)
    assert dict(model.named_modules())["encoder.out"](torch.zeros(1, 128)).shape == (1, 20)


def test_layers_use_torch_default_initialisation() -> None:
    model = models.build("classical-ae", dataset="mnist")
    w, b = model.encoder.fc1.weight, model.encoder.fc1.bias
    bound = 1 / 784**0.5  # kaiming-uniform(a=sqrt 5) and the bias both reduce to 1/sqrt(fan_in)
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert b.abs().max() <= bound and b.abs().max() > 0.5 * bound
    assert isinstance(model.encoder.fc1, nn.Linear)


def test_mnist_seed_0_does_not_collapse_to_the_blank_image(shared_data: Path) -> None:
    # Regression: with Xavier weights and zero biases, seed 0 killed decoder.fc3's ReLUs and stayed
    # at the blank-image L1 (mean pixel value) for 49 epochs of the full recipe.
    from infoprobe.data import load_dataset

    x = load_dataset("mnist", split="train", root=shared_data).images[:4000]
    torch.manual_seed(0)
    model = models.build("classical-ae", dataset="mnist", bottleneck=20)
    opt = torch.optim.Adam(model.parameters(), **{"lr": 1e-3, "weight_decay": 1e-5})
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = model.loss(x[torch.randint(0, len(x), (128,), generator=g)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        blank = x.abs().mean().item()
        final = model.loss(x[:1000])["loss"].item()
        hidden = model.decoder.fc3(model.decoder.fc2(model.decoder.fc1(model.encode(x[:1000]))))
    assert final < 0.85 * blank, f"L1 {final:.4f} vs blank image {blank:.4f}"
    assert (hidden.amax(0) > 0).float().mean() > 0.25  # measured 0.48 alive; 1 of 512 under Xavier


def test_loss_is_l1() -> None:
    model = models.build("classical-ae", dataset="digits")
    x = torch.rand(4, 1, 8, 8)
    terms = model.loss(x)
    torch.testing.assert_close(terms["loss"], (model.reconstruct(x) - x).abs().mean())


def test_a_few_steps_lower_the_loss() -> None:
    from infoprobe.data import load_dataset

    x = load_dataset("digits", split="train").images[:256]
    model = models.build("classical-ae", dataset="digits")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    first = model.loss(x)["loss"].item()
    for _ in range(30):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    assert model.loss(x)["loss"].item() < 0.8 * first


def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path) -> None:
    model = models.build("classical-ae", dataset="digits", bottleneck=5, hidden=[40, 20])
    path = save(tmp_path / "ae.pt", model)
    again = build_model(load(path))
    x = torch.rand(4, 1, 8, 8)
    assert again.config == model.config
    torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x), atol=0, rtol=0)


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(InfoprobeError, match="'hidden' applies to fc configs only"):
        models.build("classical-ae", dataset="cifar10", hidden=[10])
    with pytest.raises(InfoprobeError, match="must be >= 1"):
        models.build("classical-ae", dataset="digits", bottleneck=0)
