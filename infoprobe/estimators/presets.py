"""Named presets: exactly how a published analysis computed its numbers.

``callahan2021`` — Callahan & Paskett (2021), "Analyzing Information Loss of Invertible
Variational Autoencoders": every array is flattened to one pooled vector of values, binned in
100 uniform bins over *its own* min..max, 1 is added to every bin count, the counts are
normalised and the Shannon entropy is taken in nats (``scipy.stats.entropy(p)``). Their
"relative entropy" is ``scipy.stats.entropy(p, q)`` = KL(p ‖ q) between two such smoothed
histograms, each binned over its own range (bin i of p and bin i of q are different
intervals); call it as ``kl_divergence(previous_layer, this_layer, preset="callahan2021")``.
"""

from __future__ import annotations

from typing import Any

from infoprobe.errors import InfoprobeError

__all__ = ["PRESETS", "preset_options"]

# preset -> quantity -> (method, options)
PRESETS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "callahan2021": {
        "entropy": ("histogram", {"bins": 100, "range": None, "smoothing": 1.0, "correction": None}),
        "kl_divergence": ("histogram", {"bins": 100, "edges": "separate", "smoothing": 1.0}),
    },
}


def preset_options(preset: str, quantity: str) -> tuple[str, dict[str, Any]]:
    """(method, options) that reproduce ``preset`` for ``quantity``."""
    if preset not in PRESETS:
        raise InfoprobeError(f"Unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    if quantity not in PRESETS[preset]:
        raise InfoprobeError(
            f"Preset {preset!r} defines no {quantity}; it covers {sorted(PRESETS[preset])}"
        )
    method, options = PRESETS[preset][quantity]
    return method, dict(options)
