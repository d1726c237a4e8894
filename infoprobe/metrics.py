"""Image-quality metrics computed on batches of images (torch; any device).

Reference for :func:`sharpness`: Beitler, Sosnovik & Smeulders, *PIE: Pseudo-Invertible
Encoder*, Sec. 5.2 — grey-scale the images, convolve with the Laplace filter (an edge
detector), take the variance of the response per image and average over the images (10,000
generated images in the paper). Blurry images have fewer edges, so more responses near zero and
a smaller variance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from infoprobe.errors import InfoprobeError

__all__ = ["GREY_WEIGHTS", "LAPLACE_KERNEL", "laplacian_variance", "sharpness", "to_greyscale"]

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
