"""Where computations run: ``--device auto|cpu|cuda[:N]`` resolved in one place."""

from __future__ import annotations

import torch

from infoprobe.errors import InfoprobeError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; asking for CUDA without it is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InfoprobeError(f"Unknown device {device!r}; expected auto, cpu, cuda or cuda:N.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InfoprobeError(
            f"Device {str(device)!r} was requested but torch sees no CUDA device; use device='cpu' or 'auto'.",
            parameter="device",
        )
    return dev
