"""The interface every zoo model implements, so training and analysis never special-case a family."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["Autoencoder", "AutoencoderLike"]


@runtime_checkable
class AutoencoderLike(Protocol):
    """What training and analysis rely on; any ``nn.Module`` with these members qualifies."""

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, code: Tensor) -> Tensor: ...

    def reconstruct(self, x: Tensor) -> Tensor: ...

    def loss(self, x: Tensor) -> dict[str, Tensor]: ...

    @property
    def config(self) -> dict[str, Any]: ...


class Autoencoder(nn.Module):
    """Base class of the zoo models.

    Subclasses set ``registry_name`` and call ``super().__init__(config)`` with every
    argument needed to rebuild them: ``models.build(model.registry_name, **model.config)``
    returns an identical architecture. ``config`` must be JSON-able and include
    ``dataset`` (the configuration's data shape).

    ``input_shape`` is the (C, H, W) shape one sample has.

    ``bottleneck_modules`` names the submodules (as in ``named_modules()``) whose outputs are the
    code / latent layers: analysis marks recorded layers before their first call as the forward
    pass or encoder, their outputs as the bottleneck, and everything after as the inverse pass or
    decoder. Non-module steps (zero-padding, sampling a latent) must be modules of their own
    (an identity ``nn.Module`` is enough) so that forward hooks see them.
    """

    registry_name: str = ""
    bottleneck_modules: tuple[str, ...] = ()

    def __init__(self, config: dict[str, Any], *, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self._config = dict(config)
        self.input_shape = tuple(input_shape)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, code: Tensor) -> Tensor:
        raise NotImplementedError

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Training objective: ``{"loss": total, **other logged terms}`` (each a scalar)."""
        raise NotImplementedError

    def default_recipe(self) -> dict[str, Any]:
        """Training defaults for this model and dataset (the reference recipe where there is one).

        Keys: ``optimizer`` ("adam" | "adamax" | "sgd"), ``lr``, ``betas``, ``eps``,
        ``weight_decay``, ``milestones`` (MultiStepLR epochs), ``gamma``, ``epochs``,
        ``batch_size``. Every one can be overridden on the command line.
        """
        return {
            "optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
            "weight_decay": 0.0, "milestones": [], "gamma": 0.1, "epochs": 10, "batch_size": 128,
        }

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")
