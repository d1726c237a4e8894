"""Streaming accumulators: ``update(batch)`` as batches arrive, ``compute()`` at the end.

They share their arithmetic with the batch estimators (`histogram.histogram_counts` /
`entropy_from_counts`, `gaussian.moments_update` / `gaussian_entropy_from_moments`), so
streaming all batches gives the same number as one call on the concatenated data. Anything
with ``update(tensor)`` and ``compute()`` can be used by the recorder.

The histogram needs its edges before the first batch (a fixed ``range``); the preset
``callahan2021`` bins each array over its own min..max and so cannot be streamed.
"""

from __future__ import annotations

from typing import Any

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators._base import as_samples, log_base
from infoprobe.estimators.estimate import Estimate, Rank, judge
from infoprobe.estimators.gaussian import (
    Moments,
    covariance,
    gaussian_entropy_from_moments,
    moments_update,
)
from infoprobe.estimators.histogram import bin_edges, entropy_from_counts, histogram_counts

__all__ = ["RunningHistogram", "RunningMoments", "histogram_estimate"]


def histogram_estimate(
    counts: torch.Tensor,
    *,
    n: int,
    d: int,
    smoothing: float = 0.0,
    correction: str | None = None,
    base: Any = "e",
) -> Estimate:
    """Entropy `Estimate` of accumulated histogram ``counts`` (n samples of d features)."""
    divisor, units = log_base(base)
    value = entropy_from_counts(counts, smoothing=smoothing, correction=correction)
    return Estimate(value / divisor, None, "histogram", n, d, units)


class RunningHistogram:
    """Counts of pooled values on fixed uniform edges; ``compute()`` gives the histogram entropy.

    ``range=(low, high)`` and ``bins`` fix the edges (numpy's rule, in the precision of the
    first batch, as the batch `histogram_entropy` does); values outside the range
    are dropped and counted in ``outside``. Counts live on ``device`` (default: the first
    batch's device).
    """

    def __init__(
        self,
        *,
        range: tuple[float, float],
        bins: int = 100,
        smoothing: float = 0.0,
        correction: str | None = None,
        base: Any = "e",
        device: str | torch.device | None = None,
    ) -> None:
        log_base(base)
        self.range, self.bins = (float(range[0]), float(range[1])), bins
        self.smoothing, self.correction, self.base = smoothing, correction, base
        self.device = None if device is None else torch.device(device)
        self.edges: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.n, self.d, self.outside = 0, 0, 0

    def update(self, batch: Any) -> None:
        """Add the values of one batch (n, *features)."""
        x = as_samples(batch, name="batch", device=self.device, min_samples=1)
        if self.edges is None:
            self.edges = bin_edges(x, bins=self.bins, range=self.range)
            self.counts = torch.zeros(self.bins, dtype=torch.float64, device=x.device)
            self.d = x.shape[1]
        elif x.shape[1] != self.d:
            raise InfoprobeError(f"Expected batches with {self.d} features, got {x.shape[1]}; feed one layer only")
        assert self.counts is not None
        counts = histogram_counts(x.to(self.edges.device), self.edges)
        self.counts += counts
        self.n += x.shape[0]
        self.outside += x.numel() - int(counts.sum())

    def compute(self) -> Estimate:
        """Histogram entropy of everything seen so far."""
        if self.counts is None:
            raise InfoprobeError("RunningHistogram.compute() called before any update(); feed at least one batch")
        return histogram_estimate(
            self.counts, n=self.n, d=self.d, smoothing=self.smoothing, correction=self.correction, base=self.base
        )


class RunningMoments:
    """Running mean and covariance (float64, Chan et al. 1979); ``compute()`` gives the
    bias-corrected Gaussian entropy, identical to ``entropy(x, method="gaussian")``."""

    def __init__(
        self,
        *,
        bias_correction: bool = True,
        base: Any = "e",
        device: str | torch.device | None = None,
    ) -> None:
        log_base(base)
        self.bias_correction, self.base = bias_correction, base
        self.device = None if device is None else torch.device(device)
        self.state: Moments | None = None

    @property
    def n(self) -> int:
        return 0 if self.state is None else self.state.n

    def update(self, batch: Any) -> None:
        """Add one batch (n, *features)."""
        self.state = moments_update(self.state, as_samples(batch, name="batch", device=self.device, min_samples=1))

    @property
    def mean(self) -> torch.Tensor:
        if self.state is None:
            raise InfoprobeError("RunningMoments has no data yet; call update() first")
        return self.state.mean

    @property
    def covariance(self) -> torch.Tensor:
        """Unbiased sample covariance (n − 1 denominator)."""
        if self.state is None or self.state.n < 2:
            raise InfoprobeError("RunningMoments needs at least 2 samples for a covariance; call update() first")
        return covariance(self.state)

    def compute(self) -> Estimate:
        """Gaussian entropy of everything seen so far."""
        if self.state is None:
            raise InfoprobeError("RunningMoments.compute() called before any update(); feed at least one batch")
        divisor, units = log_base(self.base)
        value, notes = gaussian_entropy_from_moments(self.state, bias_correction=self.bias_correction)
        d = self.state.mean.shape[0]
        status, reason, warnings = judge(value, quantity="entropy", notes=notes)
        rank = next((note.value for note in notes if isinstance(note, Rank)), None)
        estimate = Estimate(value, None, "gaussian", self.state.n, d, "nats", quantity="entropy", status=status,
                            reason=reason, rank=rank, warnings=warnings)
        return estimate.to_units(divisor, units)
