"""Image quality: sharpness (PIE Sec. 5.2) and recognisability, checked against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infoprobe.data import ImageData, load_dataset
from infoprobe.errors import InfoprobeError
from infoprobe.quality import (
    ReferenceClassifier,
    class_consistency,
    confident_fraction,
    fit_reference_classifier,
    laplacian_variance,
    proportion_interval,
    sharpness,
    to_greyscale,
)


def _blur(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.full((1, 1, 3, 3), 1.0 / 9.0)
    return F.conv2d(images, kernel, padding=1)


def test_constant_image_scores_zero() -> None:
    assert sharpness(torch.full((4, 1, 10, 10), 0.7)) == 0.0
    assert sharpness(torch.full((2, 3, 6, 6), 0.2)) == pytest.approx(0.0, abs=1e-12)


def test_linear_ramp_scores_zero() -> None:
    # the Laplacian of a linear function vanishes
    i, j = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    assert sharpness((0.1 * i + 0.05 * j)[None, None]) == pytest.approx(0.0, abs=1e-10)


def test_single_bright_pixel_has_known_value() -> None:
    # a 1 at the centre of a 5×5 image: the 3×3 valid response is the kernel itself
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0
    response = torch.tensor([0.0, 1, 0, 1, -4, 1, 0, 1, 0])
    expected = response.var(unbiased=False).item()
    assert laplacian_variance(img).item() == pytest.approx(expected)


def test_blurred_digits_are_less_sharp() -> None:
    images = load_dataset("digits", split="test").images
    assert sharpness(_blur(images)) < sharpness(images)
    per_image = laplacian_variance(images)
    assert per_image.shape == (len(images),)
    assert sharpness(images) == pytest.approx(per_image.mean().item(), rel=1e-6)
    assert sharpness(images, batch_size=7) == pytest.approx(sharpness(images), rel=1e-9)


def test_rgb_is_greyscaled_and_scale_is_quadratic() -> None:
    grey = torch.rand(3, 1, 9, 9)
    rgb = grey.expand(3, 3, 9, 9)
    assert torch.allclose(to_greyscale(rgb), grey, atol=1e-6)
    assert sharpness(rgb) == pytest.approx(sharpness(grey), rel=1e-5)
    assert sharpness(2 * grey) == pytest.approx(4 * sharpness(grey), rel=1e-5)
    assert sharpness(grey[:, 0]) == pytest.approx(sharpness(grey))


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(InfoprobeError, match="N×H×W, N×1×H×W or N×3×H×W"):
        sharpness(torch.rand(2, 2, 8, 8))
    with pytest.raises(InfoprobeError, match="at least 3×3"):
        sharpness(torch.rand(2, 1, 2, 8))


# --- recognisability: the reference classifier and its two proxies -----------------------------


@pytest.fixture(scope="module")
def digits_classifier() -> tuple[ReferenceClassifier, ImageData, ImageData]:
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    return fit_reference_classifier(train, test), train, test


def test_real_test_images_score_the_accuracy_of_an_independent_sklearn_fit(
    digits_classifier: tuple[ReferenceClassifier, ImageData, ImageData],
) -> None:
    from sklearn.linear_model import LogisticRegression

    clf, train, test = digits_classifier
    x_train, x_test = train.images.flatten(1).double().numpy(), test.images.flatten(1).double().numpy()
    sk = LogisticRegression(C=0.05, max_iter=500).fit(x_train, train.labels.numpy())
    expected = sk.score(x_test, test.labels.numpy())
    assert class_consistency(clf, test.images, test.labels) == pytest.approx(expected, abs=1e-12)
    assert clf.accuracy == pytest.approx(expected, abs=1e-12)
    assert clf.n_train == len(train)
    assert 0.8 < expected < 1.0  # a real classifier, not a trivial one
    assert torch.allclose(clf.predict_proba(test.images), torch.from_numpy(sk.predict_proba(x_test)), atol=1e-8)


def test_shuffled_labels_score_chance(digits_classifier: tuple[ReferenceClassifier, ImageData, ImageData]) -> None:
    clf, _, test = digits_classifier
    pred = clf.predict(test.images)
    g = torch.Generator().manual_seed(1)
    scores = []
    for _ in range(20):
        shuffled = test.labels[torch.randperm(len(test), generator=g)]
        scores.append(class_consistency(clf, test.images, shuffled))
    # under a random permutation, E[agreement] = Σ_k (fraction predicted k)(fraction labelled k)
    n = len(test)
    p = sum((pred == k).double().mean().item() * (test.labels == k).double().mean().item() for k in range(10))
    mean = sum(scores) / len(scores)
    tolerance = 4.0 * (p * (1 - p) / (n * len(scores))) ** 0.5  # binomial std of the mean, ×4
    assert abs(mean - p) < tolerance
    assert p == pytest.approx(0.1, abs=0.01)


def _fixed_classifier(coef: np.ndarray, intercept: np.ndarray) -> ReferenceClassifier:
    return ReferenceClassifier(coef=coef, intercept=intercept, classes=np.arange(len(intercept)),
                               image_shape=(1, 2, 2))


def test_confident_and_uniform_predictions_give_one_and_zero() -> None:
    images = torch.rand(50, 1, 2, 2)
    confident = _fixed_classifier(np.zeros((10, 4)), np.array([50.0] + [0.0] * 9))
    uniform = _fixed_classifier(np.zeros((10, 4)), np.zeros(10))
    assert confident_fraction(confident, images) == 1.0
    assert confident_fraction(uniform, images) == 0.0
    # two classes at logits (log 0.95, log 0.05): p = 0.95 passes 0.9, fails 0.99
    two = _fixed_classifier(np.zeros((2, 4)), np.log(np.array([0.95, 0.05])))
    assert confident_fraction(two, images, threshold=0.9) == 1.0
    assert confident_fraction(two, images, threshold=0.99) == 0.0
    assert (confident.predict(images) == 0).all()


def test_pixels_are_clipped_to_the_unit_range() -> None:
    # weight +1 on pixel 0 for class 1: a pixel of 5 is read as 1, so logits (0, 1)
    clf = _fixed_classifier(np.array([[0.0, 0, 0, 0], [1.0, 0, 0, 0]]), np.zeros(2))
    x = torch.zeros(1, 1, 2, 2)
    x[0, 0, 0, 0] = 5.0
    expected = torch.softmax(torch.tensor([0.0, 1.0], dtype=torch.float64), 0)
    assert torch.allclose(clf.predict_proba(x)[0], expected)


def test_recognisability_rejects_bad_input(
    digits_classifier: tuple[ReferenceClassifier, ImageData, ImageData],
) -> None:
    clf, train, test = digits_classifier
    with pytest.raises(InfoprobeError, match="fitted on images of shape"):
        clf.predict(torch.rand(3, 1, 28, 28))
    with pytest.raises(InfoprobeError, match="one label per reconstruction"):
        class_consistency(clf, test.images[:5], test.labels[:4])
    with pytest.raises(InfoprobeError, match="threshold must be in"):
        confident_fraction(clf, test.images, threshold=1.5)
    with pytest.raises(InfoprobeError, match="labelled ImageData"):
        fit_reference_classifier(train.images)
    with pytest.raises(InfoprobeError, match="at least 2 classes"):
        fit_reference_classifier(train, n_train=1)


@pytest.mark.parametrize(("successes", "n", "level"), [(0, 10, 0.95), (3, 10, 0.95), (817, 1000, 0.95),
                                                      (8170, 10000, 0.95), (40, 40, 0.9), (1, 7, 0.99)])
def test_proportion_interval_is_scipys_wilson_interval(successes: int, n: int, level: float) -> None:
    from scipy.stats import binomtest

    expected = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    assert proportion_interval(successes, n, level=level) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_proportion_interval_has_its_closed_form_at_the_ends() -> None:
    z2 = 1.959963984540054**2
    # no successes: [0, z²/(n + z²)]; all successes: [n/(n + z²), 1] (the normal interval is a point there)
    assert proportion_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)), abs=1e-12)
    assert proportion_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0), abs=1e-12)


def test_proportion_interval_rejects_impossible_counts() -> None:
    with pytest.raises(InfoprobeError, match=r"successes <= n and n >= 1, got successes=11, n=10"):
        proportion_interval(11, 10)
    with pytest.raises(InfoprobeError, match=r"level must be in \(0, 1\), got 95"):
        proportion_interval(5, 10, level=95)
