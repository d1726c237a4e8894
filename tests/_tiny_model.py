"""A tiny registered autoencoder for tests that need a model before the zoo is involved."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

import models
from models.base import Autoencoder


class TinyAE(Autoencoder):
    registry_name = "test-tiny-ae"
    bottleneck_modules = ("code",)

    def __init__(self, *, dataset: str = "digits", bottleneck: int = 4) -> None:
        super().__init__({"dataset": dataset, "bottleneck": bottleneck}, input_shape=(1, 8, 8))
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.code = nn.Linear(16, bottleneck)
        self.dec = nn.Sequential(nn.Linear(bottleneck, 64), nn.Sigmoid())

    def encode(self, x: Tensor) -> Tensor:
        return self.code(self.enc(x))

    def decode(self, code: Tensor) -> Tensor:
        return self.dec(code).view(-1, 1, 8, 8)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        l1 = (self.reconstruct(x) - x).abs().mean()
        return {"loss": l1, "l1": l1}


@models.register("test-tiny-ae")
def build_tiny(**config: Any) -> TinyAE:
    return TinyAE(**config)


def tiny_model(seed: int = 0) -> TinyAE:
    torch.manual_seed(seed)
    return TinyAE()
