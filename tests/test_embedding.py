"""UMAP on infoprobe's exact kNN graph (the graph itself is checked in estimators/test_neighbors)."""

from __future__ import annotations

import numpy as np
import pytest

from infoprobe.embedding import umap_embedding


def _codes(n: int = 300, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, n)
    centres = 5.0 * rng.standard_normal((3, d))
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32), labels


@pytest.mark.slow
def test_same_seed_gives_identical_coordinates() -> None:
    codes, labels = _codes()
    first = umap_embedding(codes, labels, seed=1)
    again = umap_embedding(codes, labels, seed=1)
    other = umap_embedding(codes, labels, seed=2)
    assert first["coords"] == again["coords"]
    assert first["coords"] != other["coords"]
    assert np.isfinite(np.asarray(first["coords"])).all()
