"""Image-quality metrics: sharpness, and recognisability by a fixed reference classifier.

Sharpness (torch; any device). Reference for :func:`sharpness`: Beitler, Sosnovik & Smeulders, *PIE: Pseudo-Invertible
Encoder*, Sec. 5.2 — grey-scale the images, convolve with the Laplace filter (an edge
detector), take the variance of the response per image and average over the images (10,000
generated images in the paper). Blurry images have fewer edges, so more responses near zero and
a smaller variance.

Recognisability. A :class:`ReferenceClassifier` (multinomial logistic regression on raw pixels,
fitted once by :func:`fit_reference_classifier` on real training images) reads generated images:

- :func:`class_consistency`: the fraction of reconstructions classified as the label of the
  image they reconstruct (does the code keep the class?);
- :func:`confident_fraction`: the fraction of samples the classifier assigns to one class with
  probability ≥ 0.9 (does a sample look like *some* digit?).

Both are crude but honest proxies, not perceptual measures. The ceiling of class-consistency is
the classifier's own accuracy on real test images (``ReferenceClassifier.accuracy``, about 0.91
on MNIST with the defaults): a perfect reconstruction scores exactly that, not 1. A linear
pixel classifier can be fooled by images that are not digits (it is confident far from the
data), so a high confident fraction says little alone; read it beside sharpness and the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from infoprobe.errors import InfoprobeError

__all__ = [
    "GREY_WEIGHTS",
    "LAPLACE_KERNEL",
    "ReferenceClassifier",
    "class_consistency",
    "confident_fraction",
    "fit_reference_classifier",
    "laplacian_variance",
    "proportion_interval",
    "sharpness",
    "to_greyscale",
]

LAPLACE_KERNEL = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, for RGB images


def to_greyscale(images: Tensor) -> Tensor:
    """``N×1×H×W`` grey images from ``N×1×H×W``, ``N×3×H×W`` (BT.601 luma) or ``N×H×W``."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InfoprobeError(
            "Expected images shaped N×H×W, N×1×H×W or N×3×H×W, "
            f"got {tuple(images.shape)}; pass a batch of grey or RGB images."
        )
    if images.shape[1] == 1:
        return images
    w = torch.tensor(GREY_WEIGHTS, dtype=images.dtype, device=images.device)
    return (images * w[None, :, None, None]).sum(1, keepdim=True)


def laplacian_variance(images: Tensor) -> Tensor:
    """Per-image variance of the Laplace-filtered grey image, shape ``(N,)``.

    The 3×3 Laplace kernel ``[[0,1,0],[1,-4,1],[0,1,0]]`` is applied without padding (only
    interior pixels, so a constant image scores exactly 0); the variance is the population
    variance over the response's pixels. Units: (image intensity)², e.g. for images in [0, 1].
    """
    grey = to_greyscale(images)
    if grey.shape[-1] < 3 or grey.shape[-2] < 3:
        raise InfoprobeError(f"Images must be at least 3×3 for the Laplace filter, got {tuple(images.shape)}.")
    if not grey.is_floating_point():
        grey = grey.float()
    kernel = torch.tensor(LAPLACE_KERNEL, dtype=grey.dtype, device=grey.device)[None, None]
    response = F.conv2d(grey, kernel)
    return response.flatten(1).var(dim=1, unbiased=False)


@torch.no_grad()
def sharpness(images: Tensor, *, batch_size: int = 4096) -> float:
    """Sharpness of a set of images: mean over images of :func:`laplacian_variance` (PIE Sec. 5.2).

    ``images``: ``N×C×H×W`` (C = 1 or 3) or ``N×H×W``, on any device; processed in batches of
    ``batch_size``. Returns a float in (intensity units)²; larger is sharper.
    """
    if images.shape[0] == 0:
        raise InfoprobeError("sharpness needs at least one image, got an empty batch.")
    total = 0.0
    for start in range(0, images.shape[0], batch_size):
        total += laplacian_variance(images[start:start + batch_size]).double().sum().item()
    return total / images.shape[0]


# --- recognisability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceClassifier:
    """A linear softmax classifier on pixels: ``p(k | x) = softmax(W x + b)_k``.

    ``coef`` is ``K×D`` (D = C·H·W), ``intercept`` ``(K,)``, ``classes`` the K labels;
    ``accuracy`` is its accuracy on real test images (the ceiling of :func:`class_consistency`),
    NaN when it was not measured; ``n_train`` the number of training images it was fitted on.
    Images are flattened and clipped to [0, 1] (the range of real pixels) before scoring.
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    image_shape: tuple[int, ...]
    accuracy: float = float("nan")
    n_train: int = 0

    @torch.no_grad()
    def predict_proba(self, images: Tensor) -> Tensor:
        """Class probabilities, ``N×K`` float64 (columns in the order of ``classes``)."""
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            raise InfoprobeError(
                f"The reference classifier was fitted on images of shape {tuple(self.image_shape)}, "
                f"got a batch shaped {tuple(images.shape)}; score images of the same dataset."
            )
        x = images.detach().to("cpu", torch.float64).clamp(0.0, 1.0).flatten(1)
        w = torch.from_numpy(np.asarray(self.coef, dtype=np.float64))
        b = torch.from_numpy(np.asarray(self.intercept, dtype=np.float64))
        return torch.softmax(x @ w.T + b, dim=1)

    def predict(self, images: Tensor) -> Tensor:
        """The most probable label of each image, ``(N,)`` int64."""
        classes = torch.as_tensor(np.asarray(self.classes), dtype=torch.int64)
        return classes[self.predict_proba(images).argmax(1)]


def fit_reference_classifier(
    train: Any,
    test: Any = None,
    *,
    n_train: int = 10_000,
    seed: int = 0,
    C: float = 0.05,
    max_iter: int = 500,
) -> ReferenceClassifier:
    """Fit the reference classifier on real training images (scikit-learn, imported here).

    ``train`` / ``test``: :class:`~infoprobe.data.ImageData` (``images`` in [0, 1], ``labels``).
    The classifier is multinomial logistic regression (L-BFGS, L2 penalty ``C``) on the raw
    pixels of a seeded random subset of ``n_train`` training images (all if fewer), so the same
    data, ``n_train`` and ``seed`` give the same classifier; on MNIST the defaults take a few
    seconds on one core and score about 0.91 on the 10,000 test images. Fitting on demand, rather
    than shipping coefficients, keeps no binary artefact tied to one dataset file and works for
    any dataset ``load_dataset`` returns. With ``test`` given, its accuracy there is stored as
    ``accuracy``, the ceiling of :func:`class_consistency`.
    """
    from sklearn.linear_model import LogisticRegression

    images, labels = _images_and_labels(train, "train")
    if n_train < 1:
        raise InfoprobeError(f"n_train must be at least 1, got {n_train}.")
    if len(images) > n_train:
        idx = np.sort(np.random.default_rng(seed).permutation(len(images))[:n_train])
        images, labels = images[idx], labels[idx]
    if len(np.unique(labels)) < 2:
        raise InfoprobeError(
            f"The reference classifier needs at least 2 classes among its {len(labels)} training "
            "images, got 1; pass more (or labelled) training images."
        )
    x = images.detach().to("cpu", torch.float64).clamp(0.0, 1.0).flatten(1).numpy()
    model = LogisticRegression(C=C, max_iter=max_iter).fit(x, labels)
    classifier = ReferenceClassifier(
        coef=model.coef_, intercept=model.intercept_, classes=model.classes_,
        image_shape=tuple(images.shape[1:]), n_train=len(labels),
    )  # fmt: skip
    if test is None:
        return classifier
    test_images, test_labels = _images_and_labels(test, "test")
    accuracy = class_consistency(classifier, test_images, torch.as_tensor(test_labels))
    return ReferenceClassifier(
        coef=classifier.coef, intercept=classifier.intercept, classes=classifier.classes,
        image_shape=classifier.image_shape, accuracy=accuracy, n_train=classifier.n_train,
    )  # fmt: skip


def _images_and_labels(data: Any, what: str) -> tuple[Tensor, np.ndarray]:
    images, labels = getattr(data, "images", None), getattr(data, "labels", None)
    if not isinstance(images, Tensor) or labels is None:
        raise InfoprobeError(
            f"Expected the {what} data as a labelled ImageData (infoprobe.load_dataset), "
            f"got {type(data).__name__}."
        )
    return images, np.asarray(torch.as_tensor(labels).cpu().numpy())


def class_consistency(classifier: ReferenceClassifier, reconstructions: Tensor, labels: Tensor) -> float:
    """Fraction of ``reconstructions`` the classifier labels as their source image's ``labels``.

    A crude proxy for "the code keeps the class". Real test images in place of reconstructions
    score the classifier's accuracy, the ceiling; labels unrelated to the images score chance.
    """
    labels = torch.as_tensor(labels).cpu()
    if reconstructions.shape[0] != labels.shape[0] or reconstructions.shape[0] == 0:
        raise InfoprobeError(
            f"Expected one label per reconstruction (at least one), got {reconstructions.shape[0]} "
            f"reconstructions and {labels.shape[0]} labels."
        )
    return float((classifier.predict(reconstructions) == labels.long()).double().mean())


def confident_fraction(classifier: ReferenceClassifier, samples: Tensor, *, threshold: float = 0.9) -> float:
    """Fraction of ``samples`` assigned to one class with probability ≥ ``threshold``.

    A crude proxy for "a sample looks like some digit" (a linear classifier is also confident on
    some non-digits; read it beside :func:`sharpness` and the images).
    """
    if not 0.0 < threshold <= 1.0:
        raise InfoprobeError(f"threshold must be in (0, 1], got {threshold}.")
    if samples.shape[0] == 0:
        raise InfoprobeError("confident_fraction needs at least one sample, got an empty batch.")
    return float((classifier.predict_proba(samples).max(1).values >= threshold).double().mean())


def proportion_interval(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (e.g. a class-consistency).

    Unlike the normal approximation p ± z·sqrt(p(1 − p)/n), it stays inside [0, 1] and does not
    shrink to a point at 0 or n successes, where the normal interval claims certainty.
    """
    if n < 1 or not 0 <= successes <= n:
        raise InfoprobeError(f"Expected 0 <= successes <= n and n >= 1, got successes={successes}, n={n}.")
    if not 0.0 < level < 1.0:
        raise InfoprobeError(f"level must be in (0, 1), got {level}.")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
