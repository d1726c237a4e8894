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
    """

    registry_name: str = ""

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

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")
