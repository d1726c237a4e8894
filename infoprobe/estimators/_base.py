"""Input validation and unit conversion shared by every estimator (`Estimate` lives in `estimate`).

Every estimator works in nats internally; `to_base` converts at the very end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from infoprobe.errors import InfoprobeError

__all__ = [
    "CPU_CHUNK_BYTES",
    "MAX_CHUNK_BYTES",
    "as_labels",
    "as_samples",
    "is_labels",
    "label_entropy",
    "log_base",
    "rows_per_chunk",
    "sample_device",
]

# Pairwise-distance blocks: on CPU small blocks that stay in cache are about twice as fast as
# big ones; on a GPU big blocks are faster. MAX_CHUNK_BYTES bounds the memory either way.
CPU_CHUNK_BYTES = 4 * 2**20
MAX_CHUNK_BYTES = 256 * 2**20


def log_base(base: Any) -> tuple[float, str]:
    """(ln(base), unit name) for ``base`` "e" (nats) or 2 (bits)."""
    if isinstance(base, str) and base.lower() in ("e", "nat", "nats"):
        return 1.0, "nats"
    if isinstance(base, (str, int, float)) and not isinstance(base, bool):
        try:
            number = float(base)
        except ValueError:
            number = float("nan")
        if number == 2.0:
            return math.log(2.0), "bits"
    raise InfoprobeError(f"Expected base 'e' (nats) or 2 (bits), got {base!r}; pass base='e' or base=2")


def sample_device(x: Any, device: str | torch.device | None) -> torch.device:
    """The explicit ``device`` if given, else the device ``x`` lives on (CPU for numpy)."""
    if device is not None:
        return torch.device(device)
    if isinstance(x, torch.Tensor):
        return x.device
    return torch.device("cpu")


def rows_per_chunk(n_cols: int, *, bytes_per_entry: int, device: torch.device, min_rows: int = 1) -> int:
    """Rows of a (rows × n_cols) distance block: cache-sized on CPU (but at least ``min_rows``),
    as large as MAX_CHUNK_BYTES allows elsewhere; never above MAX_CHUNK_BYTES."""
    per_row = bytes_per_entry * max(1, n_cols)
    budget = CPU_CHUNK_BYTES if device.type == "cpu" else MAX_CHUNK_BYTES
    rows = max(min_rows, min(budget, MAX_CHUNK_BYTES) // per_row)
    return max(1, min(rows, MAX_CHUNK_BYTES // per_row))


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (np.ndarray, list, tuple, Sequence)) or np.isscalar(x):
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise InfoprobeError(
                f"Expected a numeric array or tensor for {name}, got dtype {array.dtype}; "
                "convert it to floats first"
            )
        return torch.from_numpy(np.ascontiguousarray(array))
    raise InfoprobeError(
        f"Expected a numpy array or torch tensor for {name}, got {type(x).__name__}; "
        "pass np.asarray(...) or a tensor"
    )


def as_samples(
    x: Any,
    *,
    name: str = "x",
    device: str | torch.device | None = None,
    min_samples: int = 2,
    why: str = "",
) -> torch.Tensor:
    """``x`` as a finite floating tensor of shape (n_samples, n_features) on ``device``.

    A 1-D input is n scalar samples; more than two dimensions are flattened per sample.
    float32 and float64 keep their dtype (the histogram methods bin in the input's precision,
    as numpy does); integers, booleans and half precision become float64 / float32.
    """
    tensor = _to_tensor(x, name).to(sample_device(x, device))
    if tensor.ndim == 0:
        raise InfoprobeError(
            f"Expected samples shaped (n_samples, n_features) for {name}, got a scalar; "
            "pass at least two samples"
        )
    if tensor.ndim == 1:
        tensor = tensor[:, None]
    elif tensor.ndim > 2:
        tensor = tensor.reshape(tensor.shape[0], -1)
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    elif not tensor.is_floating_point():
        tensor = tensor.double()
    if tensor.is_complex():
        raise InfoprobeError(f"Expected real-valued {name}, got complex values; pass x.real or abs(x)")
    n, d = tensor.shape
    if d == 0:
        raise InfoprobeError(f"Expected at least one feature in {name}, got shape {tuple(tensor.shape)}")
    if n < min_samples:
        reason = f" ({why})" if why else ""
        raise InfoprobeError(
            f"Expected at least {min_samples} samples in {name}{reason}, got {n}; "
            "pass more samples or lower k"
        )
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InfoprobeError(
            f"Expected finite values in {name}, got {bad} NaN/Inf entries; "
            "remove or impute them (e.g. x[torch.isfinite(x).all(1)]) before estimating"
        )
    return tensor


def is_labels(y: Any) -> bool:
    """True when ``y`` looks like integer class labels: integer dtype, shape (n,) or (n, 1)."""
    if isinstance(y, torch.Tensor):
        integer = not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool
        shape = tuple(y.shape)
    else:
        array = np.asarray(y)
        integer = array.dtype.kind in "iu"
        shape = array.shape
    return integer and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))


def as_labels(y: Any, *, n: int, device: torch.device) -> torch.Tensor:
    """Integer labels ``y`` as a 1-D int64 tensor of length ``n`` on ``device``."""
    tensor = _to_tensor(y, "y").to(device).reshape(-1).long()
    if tensor.shape[0] != n:
        raise InfoprobeError(
            f"Expected one label per sample ({n}), got {tensor.shape[0]} labels; "
            "pass x and y with the same first dimension"
        )
    return tensor


def label_entropy(labels: torch.Tensor) -> float:
    """Plug-in entropy H(Y) in nats of integer class labels: the ceiling of I(X; Y)."""
    counts = torch.unique(labels, return_counts=True)[1].to(torch.float64)
    p = counts / counts.sum()
    return float(-(p * torch.log(p)).sum())
