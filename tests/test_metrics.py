"""Sharpness (PIE Sec. 5.2): Laplace-filter variance, checked on images with known answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from infoprobe.metrics import laplacian_variance, sharpness, to_greyscale


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
