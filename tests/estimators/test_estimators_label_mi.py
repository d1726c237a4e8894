"""I(X; class labels) with the Ross (2014) kNN estimator, against scikit-learn and a numeric truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.feature_selection import mutual_info_classif

import infoprobe
from infoprobe.errors import InfoprobeError
from infoprobe.estimators import EstimationError


def _two_gaussians(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal(n) + np.where(y == 1, 1.0, -1.0)
    return x[:, None], y


def test_matches_scikit_learn_mutual_info_classif() -> None:
    # scikit-learn implements the same estimator (Chebyshev distance, same k)
    x, y = _two_gaussians(3000, seed=1)
    ours = infoprobe.mutual_information(x, y, method="ksg", k=3)
    theirs = mutual_info_classif(x, y, n_neighbors=3, discrete_features=False, random_state=0)[0]
    assert float(ours) == pytest.approx(theirs, abs=1e-10)


def test_close_to_the_numeric_truth() -> None:
    # I = h(X) − h(X|Y) for an equal mixture of N(−1, 1) and N(1, 1); h(X) by quadrature
    grid = np.linspace(-12, 12, 240_001)
    px = 0.5 * (norm.pdf(grid, -1) + norm.pdf(grid, 1))
    truth = -np.trapezoid(px * np.log(px), grid) - 0.5 * np.log(2 * np.pi * np.e)
    x, y = _two_gaussians(10_000, seed=2)
    est = infoprobe.mutual_information(x, y, method="ksg")
    assert float(est) == pytest.approx(truth, abs=0.03)  # 0.337 nats; kNN bias is ~1 % here


def test_independent_labels_give_about_zero_and_many_dimensions_stay_sane() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 8))
    y = rng.integers(0, 10, 2000)
    assert abs(float(infoprobe.mutual_information(x, y))) < 0.05
    # perfectly separated classes: I = H(Y) = log 10 up to the estimator's bias
    x_sep = x + 50.0 * np.eye(10)[y][:, :8].repeat(1, axis=1)[:, :8] + 50.0 * (y[:, None] == 9)
    assert float(infoprobe.mutual_information(x_sep, y)) == pytest.approx(np.log(10), abs=0.05)


def test_singleton_classes_are_left_out_with_a_warning() -> None:
    x, y = _two_gaussians(500, seed=4)
    y = y.copy()
    y[0] = 7  # a class with one member
    est = infoprobe.mutual_information(x, y)
    assert any("single member" in w for w in est.warnings)
    with pytest.raises(EstimationError, match="at least one class with 2 or more samples"):
        infoprobe.mutual_information(np.arange(4.0)[:, None], np.arange(4), k=1)


def test_negative_estimates_of_non_negative_quantities_are_flagged() -> None:
    # KL between two samples of one distribution and MI of independent samples scatter around 0
    rng = np.random.default_rng(5)
    estimates = []
    for _ in range(4):
        x, y = rng.standard_normal((200, 5)), rng.standard_normal((200, 5))
        estimates += [infoprobe.kl_divergence(x, y), infoprobe.mutual_information(x, y)]
    negative = [e for e in estimates if e.value < 0]
    assert negative, "expected some negative small-sample estimates in this set-up"
    assert all(e.status == "invalid" and "negative estimate" in e.reason for e in negative)
    assert all(e.text() == "— [X]" for e in negative)  # never shown as a number
    assert not any("negative estimate" in e.reason for e in estimates if e.value >= 0)


def test_a_preset_with_a_different_method_is_refused() -> None:
    x = np.random.default_rng(6).standard_normal((100, 3))
    with pytest.raises(InfoprobeError, match="Preset 'callahan2021' uses method 'histogram', got method='knn'"):
        infoprobe.entropy(x, method="knn", preset="callahan2021")
    assert infoprobe.entropy(x, preset="callahan2021").method == "histogram[callahan2021]"


def test_gaussian_kl_flags_an_ill_conditioned_q_and_a_singular_one() -> None:
    rng = np.random.default_rng(7)
    p = rng.standard_normal((500, 3))
    q = rng.standard_normal((500, 3))
    assert not infoprobe.kl_divergence(p, q, method="gaussian").warnings
    q_flat = q.copy()
    q_flat[:, 2] = q_flat[:, 0] + 1e-6 * rng.standard_normal(500)  # almost on a plane
    est = infoprobe.kl_divergence(p, q_flat, method="gaussian")
    assert est.value > 1e4 and any("ill-conditioned" in w for w in est.warnings)
    q_flat[:, 2] = q_flat[:, 0]  # exactly on a plane: the data, not the user, are at fault
    singular = infoprobe.kl_divergence(p, q_flat, method="gaussian")
    assert singular.value == float("inf") and singular.status == "degenerate"
    assert singular.reason.startswith("q: rank 2 < d = 3") and singular.rank == 3
    with pytest.raises(EstimationError, match="more samples than features for a Gaussian fit of q, got n=3"):
        infoprobe.kl_divergence(p, q[:3], method="gaussian")
