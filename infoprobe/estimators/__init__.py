"""Estimators of entropy, KL divergence and mutual information from samples.

Pure: arrays or tensors in, `Estimate` out. One module per family (`histogram`, `binned`,
`gaussian`, `knn`, `kde`, `renyi`), the method table in `registry`, named presets in
`presets`, streaming accumulators in `streaming`.
"""

from __future__ import annotations

from infoprobe.estimators.estimate import STATUSES, Estimate, EstimationError, Flag
from infoprobe.estimators.registry import (
    Method,
    available,
    entropy,
    independent_halves,
    kl_divergence,
    mutual_information,
    noisy_channel_mi,
)
from infoprobe.estimators.streaming import RunningHistogram, RunningMoments, histogram_estimate

__all__ = [
    "STATUSES",
    "Estimate",
    "EstimationError",
    "Flag",
    "Method",
    "RunningHistogram",
    "RunningMoments",
    "available",
    "entropy",
    "histogram_estimate",
    "independent_halves",
    "kl_divergence",
    "mutual_information",
    "noisy_channel_mi",
]
