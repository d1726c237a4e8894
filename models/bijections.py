"""Bijective building blocks of the Pseudo-Invertible Encoder.

Reference: Beitler, Sosnovik & Smeulders, *PIE: Pseudo-Invertible Encoder* (Sec. 4):
checkerboard downsampling (4.4), affine coupling (4.2), invertible 1×1 convolutions and linear
maps parametrised by Householder reflections (4.3) and the split into kept and dropped variables
(4.5).

Calling convention (the same for every block, so forward hooks see both directions):
``block(x)`` applies the map, ``block(y, rev=True)`` its inverse, always through
``nn.Module.__call__`` and with ``rev`` as a keyword. Bijective blocks return
``(output, log_det)``, where ``log_det`` has shape ``(batch,)`` and is log|det J| in nats of
the map that was applied (so the inverse returns minus the forward value). :class:`Split`
returns ``(kept, dropped)`` forward and the merged tensor inverse; :class:`ZeroFill` returns
the zeros that stand in for dropped variables when decoding. Blocks act on dimension 1
(channels of ``B×C×H×W`` tensors, features of ``B×D`` tensors).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError

__all__ = [
    "AffineCoupling",
    "Downsample",
    "Flatten",
    "HouseholderConv1x1",
    "HouseholderLinear",
    "Split",
    "ZeroFill",
    "householder_matrix",
    "soft_clamp",
]


def _zero_logdet(x: Tensor) -> Tensor:
    return x.new_zeros(x.shape[0])


class Downsample(nn.Module):
    """Checkerboard (space-to-depth) downsampling: ``C×H×W → 4C×H/2×W/2``.

    Each 2×2 neighbourhood becomes 4 channels (i-RevNet / Real NVP squeeze); a permutation of
    the variables, so log|det J| = 0 (PIE Sec. 4.4).
    """

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if rev:
            return F.pixel_shuffle(x, 2), _zero_logdet(x)
        if x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2:
            raise InfoprobeError(
                f"Downsample expects B×C×H×W tensors with even H and W, got {tuple(x.shape)}; "
                "use inputs whose side lengths are divisible by 2 per downsampling block."
            )
        return F.pixel_unshuffle(x, 2), _zero_logdet(x)


class Flatten(nn.Module):
    """Reshape ``B×C×H×W → B×(CHW)`` (inverse: back to ``shape``); log|det J| = 0.

    Joins the convolutional PIE blocks to the linear ones (PIE Sec. 4.1).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if rev:
            return x.reshape(x.shape[0], *self.shape), _zero_logdet(x)
        return x.reshape(x.shape[0], -1), _zero_logdet(x)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def soft_clamp(s: Tensor, clamp: float) -> Tensor:
    """Smoothly limit log-scales to (-clamp, clamp): ``clamp · (2/π) · atan(s / clamp)``.

    Near-identity for |s| ≪ clamp; keeps exp(s) bounded so coupling layers stay stable.
    """
    return clamp * (2.0 / math.pi) * torch.atan(s / clamp)


def _conv_subnet(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
        nn.Conv2d(hidden, c_out, 3, padding=1),
    )  # fmt: skip
    return net


def _linear_subnet(d_in: int, d_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, d_out),
    )  # fmt: skip


class AffineCoupling(nn.Module):
    """Two-sided affine coupling (Real NVP, as modified in PIE Sec. 4.2, Eq. 18).

    With ``x = [x1, x2]`` split along dimension 1 (channels or features, ``d//2`` first)::

        y2 = x2 ⊙ exp(s1(x1)) + t1(x1)
        y1 = x1 ⊙ exp(s2(y2)) + t2(y2)

    log|det J| = Σ s1 + Σ s2, with every log-scale soft-clamped to (-clamp, clamp). The
    subnetworks are small CNNs (``conv=True``: 3×3, 1×1, 3×3) or MLPs; their last layer starts at
    zero, so a new coupling is the identity.
    """

    def __init__(self, size: int, *, hidden: int, conv: bool, clamp: float = 2.0) -> None:
        super().__init__()
        if size < 2:
            raise InfoprobeError(
                f"AffineCoupling needs at least 2 channels/features to split, got {size}."
            )
        self.size, self.conv, self.clamp = size, conv, float(clamp)
        self.n1, self.n2 = size // 2, size - size // 2
        make = _conv_subnet if conv else _linear_subnet
        self.net1 = make(self.n1, 2 * self.n2, hidden)
        self.net2 = make(self.n2, 2 * self.n1, hidden)
        for net in (self.net1, self.net2):
            last = net[-1]
            assert isinstance(last, nn.Conv2d | nn.Linear)
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    def _params(self, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = net(x).chunk(2, dim=1)
        return soft_clamp(s, self.clamp), t

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if x.shape[1] != self.size:
            raise InfoprobeError(
                f"AffineCoupling built for {self.size} channels/features, got input {tuple(x.shape)}."
            )
        a, b = x.split([self.n1, self.n2], dim=1)
        if not rev:
            s1, t1 = self._params(self.net1, a)
            b = b * torch.exp(s1) + t1
            s2, t2 = self._params(self.net2, b)
            a = a * torch.exp(s2) + t2
            sign = 1.0
        else:
            s2, t2 = self._params(self.net2, b)
            a = (a - t2) * torch.exp(-s2)
            s1, t1 = self._params(self.net1, a)
            b = (b - t1) * torch.exp(-s1)
            sign = -1.0
        logdet = s1.flatten(1).sum(1) + s2.flatten(1).sum(1)
        return torch.cat([a, b], dim=1), sign * logdet

    def extra_repr(self) -> str:
        return f"size={self.size}, conv={self.conv}, clamp={self.clamp}"


def householder_matrix(vectors: Tensor) -> Tensor:
    """The orthogonal matrix ``H_1 H_2 ⋯ H_K`` with ``H_k = I − 2 v_k v_kᵀ / ‖v_k‖²`` (PIE Eq. 19).

    ``vectors`` is ``K×d``; the product is ``d×d`` with determinant (−1)^K.
    """
    d = vectors.shape[1]
    w = torch.eye(d, dtype=vectors.dtype, device=vectors.device)
    for v in vectors:
        u = v / v.norm()
        w = w - 2.0 * torch.outer(w @ u, u)
    return w


class _HouseholderMap(nn.Module):
    """An orthogonal map on dimension 1 made of ``n_reflections`` Householder reflections.

    Orthogonal, so the inverse is the transpose and log|det J| = 0 (PIE Sec. 4.3).
    """

    def __init__(self, size: int, *, n_reflections: int = 3) -> None:
        super().__init__()
        if n_reflections < 1:
            raise InfoprobeError(f"n_reflections must be >= 1, got {n_reflections}.")
        self.size, self.n_reflections = size, n_reflections
        self.vectors = nn.Parameter(torch.randn(n_reflections, size))

    def matrix(self) -> Tensor:
        return householder_matrix(self.vectors)

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        if x.shape[1] != self.size:
            raise InfoprobeError(
                f"{type(self).__name__} built for {self.size} channels/features, "
                f"got input {tuple(x.shape)}."
            )
        w = self.matrix()
        w = w.T if rev else w
        y = torch.movedim(torch.movedim(x, 1, -1) @ w.T, -1, 1)
        return y, _zero_logdet(x)

    def extra_repr(self) -> str:
        return f"size={self.size}, n_reflections={self.n_reflections}"


class HouseholderConv1x1(_HouseholderMap):
    """Invertible 1×1 convolution ``y[:, i] = Σ_j W_ij x[:, j]`` with W a Householder product."""


class HouseholderLinear(_HouseholderMap):
    """Invertible linear map ``y = W x`` on ``B×D`` features with W a Householder product."""


class ZeroFill(nn.Module):
    """Stands in for the dropped variables on decoding: zeros shaped like them.

    Given the kept part ``B×k×…``, returns zeros ``B×n_dropped×…`` — the mode of the narrow
    N(0, σ²) the dropped variables are constrained to (PIE Sec. 3.1, Eq. 4).
    """

    def __init__(self, n_dropped: int) -> None:
        super().__init__()
        self.n_dropped = n_dropped

    def forward(self, kept: Tensor) -> Tensor:
        return kept.new_zeros(kept.shape[0], self.n_dropped, *kept.shape[2:])

    def extra_repr(self) -> str:
        return f"n_dropped={self.n_dropped}"


class Split(nn.Module):
    """Keep the first ``keep`` of ``size`` entries of dimension 1, drop the rest (PIE Sec. 4.5).

    ``split(x) -> (kept, dropped)``; ``split(kept, rev=True, dropped=r)`` concatenates them back,
    and with ``dropped=None`` fills the dropped part with zeros through its :class:`ZeroFill`
    child (so decoding is visible to forward hooks too). The split is a coordinate projection
    and adds nothing to log|det J|; the dropped part enters the likelihood through its N(0, σ²)
    constraint.
    """

    def __init__(self, size: int, keep: int) -> None:
        super().__init__()
        if not 0 < keep < size:
            raise InfoprobeError(f"Split must keep between 1 and {size - 1} of {size}, got {keep}.")
        self.size, self.keep = size, keep
        self.fill = ZeroFill(size - keep)

    def forward(
        self, x: Tensor, rev: bool = False, dropped: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | Tensor:
        if rev:
            if dropped is None:
                dropped = self.fill(x)
            return torch.cat([x, dropped], dim=1)
        if x.shape[1] != self.size:
            raise InfoprobeError(f"Split built for {self.size} entries, got input {tuple(x.shape)}.")
        kept, drop = x.split([self.keep, self.size - self.keep], dim=1)
        return kept, drop

    def extra_repr(self) -> str:
        return f"size={self.size}, keep={self.keep}"
