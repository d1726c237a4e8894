"""The held-out linear-probe lower bound on I(X; class labels), against numeric truths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import infoprobe
from infoprobe.errors import InfoprobeError
from infoprobe.estimators.probe import probe_label_mi


def _two_gaussian_truth(mu: float) -> float:
    """I(X; Y) for an equal mixture of N(−mu, 1) and N(mu, 1): h(X) by quadrature − h(X|Y)."""
    grid = np.linspace(-12, 12, 240_001)
    px = 0.5 * (norm.pdf(grid, -mu) + norm.pdf(grid, mu))
    return float(-np.trapezoid(px * np.log(px), grid) - 0.5 * np.log(2 * np.pi * np.e))


def _two_gaussians(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The class signal along the first axis only; d − 1 pure-noise features beside it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, d))
    x[:, 0] += np.where(y == 1, 1.0, -1.0)
    return x, y


def test_reaches_the_truth_where_the_bayes_classifier_is_linear() -> None:
    # equal-variance Gaussian classes: the log-odds are linear in x, so the bound is tight
    truth = _two_gaussian_truth(1.0)  # 0.337 nats
    x, y = _two_gaussians(20_000, 1, seed=0)
    est = infoprobe.mutual_information(x, y, method="probe", ci=0.95)
    assert est.status == "ok" and est.interval == "clt"
    assert est.value == pytest.approx(truth, abs=0.02)
    assert est.ci[0] < truth < est.ci[1]


def test_noise_features_cost_little_and_never_push_the_bound_above_the_truth() -> None:
    truth = _two_gaussian_truth(1.0)
    x, y = _two_gaussians(2_000, 50, seed=1)
    values = [infoprobe.mutual_information(x, y, method="probe", seed=s).value for s in range(3)]
    # a lower bound in expectation: the mean of three splits stays below the truth (plus its noise)
    assert np.mean(values) <= truth + 0.02
    assert min(values) > truth - 0.08  # the cross-validated penalty keeps 49 noise features harmless


def test_independent_labels_give_exactly_zero_with_the_reason() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((2_000, 50)), rng.integers(0, 10, 2_000)
    est = infoprobe.mutual_information(x, y, method="probe", ci=0.95)
    assert est.value == 0.0 and est.status == "ok"
    assert any("no better than the class frequencies" in w for w in est.warnings)


def test_separable_classes_give_h_y_and_are_not_marked_at_ceiling() -> None:
    # a lower bound near its largest value pins the quantity: I = H(Y) = log 4
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 4_000)
    x = 5.0 * np.eye(4)[y] + 0.01 * rng.standard_normal((4_000, 4))
    est = infoprobe.mutual_information(x, y, method="probe")
    assert est.value == pytest.approx(math.log(4), abs=0.02)
    assert est.status == "ok" and est.ceiling is None


def test_a_linear_probe_cannot_see_a_nonlinear_code_and_stays_a_bound() -> None:
    # classes on two concentric circles: I = log 2, but no linear function of x separates them
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 4_000)
    angle = rng.uniform(0, 2 * np.pi, 4_000)
    x = (1.0 + y)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    linear = infoprobe.mutual_information(x, y, method="probe").value
    lifted = infoprobe.mutual_information(np.c_[x, (x**2).sum(1)], y, method="probe").value
    assert linear < 0.05 < math.log(2) - 0.05 < lifted <= math.log(2) + 1e-9


def test_same_seed_same_value_and_a_fixed_penalty_is_honoured() -> None:
    x, y = _two_gaussians(1_000, 5, seed=5)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    assert probe_label_mi(xt, yt, seed=7)[0] == probe_label_mi(xt, yt, seed=7)[0]
    assert probe_label_mi(xt, yt, l2=0.1)[0] != probe_label_mi(xt, yt, l2=1e-4)[0]


def test_errors_say_what_was_expected() -> None:
    x, y = _two_gaussians(100, 2, seed=6)
    with pytest.raises(InfoprobeError, match="integer class labels y"):
        infoprobe.mutual_information(x, x[:, :1], method="probe")
    with pytest.raises(InfoprobeError, match="non-negative l2 penalty"):
        infoprobe.mutual_information(x, y, method="probe", l2=-1.0)
    with pytest.raises(InfoprobeError, match="max_iter to be a positive integer"):
        infoprobe.mutual_information(x, y, method="probe", max_iter=0)
