"""Estimators of entropy, KL divergence and mutual information from samples.

Pure: arrays or tensors in, `Estimate` out. One module per family (`histogram`, `binned`,
`gaussian`, `knn`, `kde`, `renyi`), the method table in `registry`, named presets in
`presets`, streaming accumulators in `streaming`, the numerical rank in `rank`.

References: `numerical_rank` — Press et al., Numerical Recipes, §2.6 (the rule of
``numpy.linalg.matrix_rank``); `noisy_channel_mi` — Kolchinsky & Tracey (2017), Entropy
19(7):361, Saxe et al. (2018), ICLR; `histogram_kl_terms` — Kullback & Leibler (1951), the
binning of Callahan & Paskett (2021).
"""

from __future__ import annotations

from infoprobe.estimators.estimate import STATUSES, Estimate, EstimationError, Flag, Rank
from infoprobe.estimators.histogram import HistogramKLTerms, histogram_kl_terms
from infoprobe.estimators.rank import numerical_rank
from infoprobe.estimators.registry import (
    Method,
    available,
    entropy,
    independent_halves,
    kl_divergence,
    mutual_information,
    noisy_channel_mi,
    register,
)
from infoprobe.estimators.streaming import RunningHistogram, RunningMoments, histogram_estimate

__all__ = [
    "STATUSES",
    "Estimate",
    "EstimationError",
    "Flag",
    "HistogramKLTerms",
    "Method",
    "Rank",
    "RunningHistogram",
    "RunningMoments",
    "available",
    "entropy",
    "histogram_estimate",
    "histogram_kl_terms",
    "independent_halves",
    "kl_divergence",
    "mutual_information",
    "noisy_channel_mi",
    "numerical_rank",
    "register",
]
