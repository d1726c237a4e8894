"""The classical (non-invertible) autoencoders compared with the INN autoencoder by Nguyen,
Ardizzone & Köthe (2019) and analysed layer by layer by Callahan & Paskett (2021).

- ``mnist``: fully connected 784 → 512 → 256 → 128 → k (ReLU between, linear code), decoder
  k → 128 → 256 → 512 → 784 with ReLU between and a Tanh output; 1,138,212 parameters at k = 20
  (reference ≈ 1.14 M).
- ``cifar10``: encoder conv 3→64, 64→128, max-pool 2, 128→256, 256→512, max-pool 2, 512→1024
  (3×3, stride 1, no padding, ReLU) → 1024×3×3 → linear → k; the decoder mirrors it: linear
  k → 9216 + ReLU, five 3×3 transposed convolutions with nearest-neighbour upsampling ×2 where
  the encoder pooled, Tanh output.
- ``digits`` (8×8, ours): fully connected 64 → 48 → 32 → k and back, same activations.

Every layer is one leaf module that applies its own activation (and pooling / upsampling), so a
recorder hooking leaf modules sees one output per layer under readable names: ``encoder.fc1`` …
``encoder.out`` (the code), ``decoder.fc1`` … ``decoder.out``. The Tanh output follows the
reference although the data lie in [0, 1]: the network can only use its upper half.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from infoprobe.data import dataset_spec
from infoprobe.errors import InfoprobeError
from models.base import Autoencoder

__all__ = [
    "CONFIGS",
    "ClassicalAutoencoder",
    "ConvLayer",
    "ConvTransposeLayer",
    "DenseLayer",
    "build",
]

#: Per-dataset architecture and recipe. ``hidden`` are the fully connected widths (encoder side).
CONFIGS: dict[str, dict[str, Any]] = {
    "mnist": {
        "input_shape": dataset_spec("mnist").shape, "kind": "fc", "hidden": [512, 256, 128], "bottleneck": 20,
        "recipe": {"epochs": 100, "batch_size": 128},
    },
    "cifar10": {
        "input_shape": dataset_spec("cifar10").shape, "kind": "conv", "hidden": [], "bottleneck": 64,
        "recipe": {"epochs": 100, "batch_size": 128},
    },
    "digits": {
        "input_shape": dataset_spec("digits").shape, "kind": "fc", "hidden": [48, 32], "bottleneck": 8,
        "recipe": {"epochs": 30, "batch_size": 64},
    },
}

_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "none": lambda t: t}

# CIFAR-10 encoder: (in, out, max-pool after); the decoder mirrors it.
_CIFAR_CONVS = [(3, 64, False), (64, 128, True), (128, 256, False), (256, 512, True), (512, 1024, False)]


def _activation(name: str) -> Any:
    if name not in _ACTIVATIONS:
        raise InfoprobeError(f"Unknown activation {name!r}; expected one of {', '.join(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]


class DenseLayer(nn.Linear):
    """``activation(x W^T + b)`` as one leaf module."""

    def __init__(self, d_in: int, d_out: int, *, activation: str = "relu") -> None:
        super().__init__(d_in, d_out)
        self.activation = activation
        self._act = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self._act(super().forward(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class ConvLayer(nn.Conv2d):
    """3×3 convolution (stride 1, no padding) → activation → optional 2×2 max-pool, one leaf module."""

    def __init__(self, c_in: int, c_out: int, *, activation: str = "relu", pool: bool = False) -> None:
        super().__init__(c_in, c_out, 3)
        self.activation = activation
        self.pool = pool
        self._act = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        y = self._act(super().forward(x))
        return F.max_pool2d(y, 2) if self.pool else y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}, pool={self.pool}"


class ConvTransposeLayer(nn.ConvTranspose2d):
    """3×3 transposed convolution → activation → optional nearest upsampling ×2, one leaf module."""

    def __init__(self, c_in: int, c_out: int, *, activation: str = "relu", upsample: bool = False) -> None:
        super().__init__(c_in, c_out, 3)
        self.activation = activation
        self.upsample = upsample
        self._act = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        y = self._act(super().forward(x))
        return F.interpolate(y, scale_factor=2, mode="nearest") if self.upsample else y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}, upsample={self.upsample}"


class _Encoder(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        for layer in self.children():
            if isinstance(layer, nn.Linear) and x.dim() > 2:
                x = x.flatten(1)
            x = layer(x)
        return x


class _Decoder(nn.Module):
    def __init__(self, output_shape: tuple[int, ...], reshape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.output_shape = output_shape
        self.reshape = reshape  # shape after the first (linear) layer when convolutions follow

    def forward(self, code: Tensor) -> Tensor:
        children = list(self.children())
        x = children[0](code)
        if self.reshape is not None:
            x = x.view(x.shape[0], *self.reshape)
        for layer in children[1:]:
            x = layer(x)
        return x.view(x.shape[0], *self.output_shape)


class ClassicalAutoencoder(Autoencoder):
    """Encoder–decoder autoencoder trained with the L1 reconstruction loss mean|x̂ − x|."""

    registry_name = "classical-ae"
    bottleneck_modules = ("encoder.out",)

    def __init__(
        self, *, dataset: str = "mnist", bottleneck: int | None = None, hidden: list[int] | None = None
    ) -> None:
        if dataset not in CONFIGS:
            raise InfoprobeError(
                f"No classical-ae configuration for dataset {dataset!r}; expected one of "
                f"{', '.join(CONFIGS)}."
            )
        preset = CONFIGS[dataset]
        shape = tuple(preset["input_shape"])
        k = int(preset["bottleneck"] if bottleneck is None else bottleneck)
        if k < 1:
            raise InfoprobeError(f"Bottleneck size for classical-ae must be >= 1, got {k}.")
        widths = [int(h) for h in (preset["hidden"] if hidden is None else hidden)]
        if preset["kind"] == "conv" and hidden:
            raise InfoprobeError("classical-ae on cifar10 is convolutional; 'hidden' applies to fc configs only.")
        super().__init__({"dataset": dataset, "bottleneck": k, "hidden": widths}, input_shape=shape)
        self.k = k
        self.encoder = _Encoder()
        if preset["kind"] == "fc":
            self.decoder = _Decoder(shape, None)
            dims = [math.prod(shape), *widths]
            for i, (a, b) in enumerate(itertools.pairwise(dims), start=1):
                self.encoder.add_module(f"fc{i}", DenseLayer(a, b))
            self.encoder.add_module("out", DenseLayer(dims[-1], k, activation="none"))
            back = dims[::-1]
            self.decoder.add_module("fc1", DenseLayer(k, back[0]))
            for i, (a, b) in enumerate(itertools.pairwise(back[:-1]), start=2):
                self.decoder.add_module(f"fc{i}", DenseLayer(a, b))
            self.decoder.add_module("out", DenseLayer(back[-2], back[-1], activation="tanh"))
        else:
            side = shape[1]
            for i, (a, b, pool) in enumerate(_CIFAR_CONVS, start=1):
                self.encoder.add_module(f"conv{i}", ConvLayer(a, b, pool=pool))
                side = (side - 2) // 2 if pool else side - 2
            flat = _CIFAR_CONVS[-1][1] * side * side  # 1024 × 3 × 3 = 9216 for 32×32 inputs
            self.encoder.add_module("out", DenseLayer(flat, k, activation="none"))
            self.decoder = _Decoder(shape, (_CIFAR_CONVS[-1][1], side, side))
            self.decoder.add_module("fc1", DenseLayer(k, flat))
            mirrored = list(reversed(_CIFAR_CONVS))
            for i, (b, a, _) in enumerate(mirrored, start=1):
                # upsample where the encoder pooled before the mirrored layer's predecessor
                upsample = i < len(mirrored) and mirrored[i][2]
                last = i == len(mirrored)
                self.decoder.add_module(
                    f"conv{i}" if not last else "out",
                    ConvTransposeLayer(a, b, activation="tanh" if last else "relu", upsample=upsample),
                )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default initialisation on every layer, as in the reference's public code.

        REFERENCE.md lists Xavier-uniform weights with zero biases; with that initialisation seed 0
        on MNIST lost all but one unit of ``decoder.fc3`` to dead ReLUs within 600 steps and stayed
        at the blank-image L1 (0.125) for 49 epochs; the default initialisation learned on seeds 0-2.
        """
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                module.reset_parameters()

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, code: Tensor) -> Tensor:
        return self.decoder(code)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        recon = (self.reconstruct(x) - x).abs().mean()
        return {"loss": recon, "l1": recon}

    def default_recipe(self) -> dict[str, Any]:
        """Adam(lr 1e-3, weight decay 1e-5), no schedule, batch 128, 100 epochs (reference)."""
        return {
            "optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
            "weight_decay": 1e-5, "milestones": [], "gamma": 0.1,
            **CONFIGS[self.config["dataset"]]["recipe"],
        }


def build(*, dataset: str = "mnist", bottleneck: int | None = None, **overrides: Any) -> ClassicalAutoencoder:
    """Registry factory of ``classical-ae``: ``models.build("classical-ae", dataset="mnist", bottleneck=20)``.

    ``overrides``: ``hidden`` (fully connected widths of the encoder, fc configurations only).
    """
    return ClassicalAutoencoder(dataset=dataset, bottleneck=bottleneck, **overrides)
