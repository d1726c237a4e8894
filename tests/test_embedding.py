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


@pytest.mark.slow
def test_umap_functions_compiled_without_cache_are_cached_on_disk() -> None:
    # umap-learn recompiled its kNN smoothing and layout epochs in every fresh process (cold fit
    # 2.3x a warm one); infoprobe turns numba's cache on for them before their first call.
    import umap.layouts
    import umap.umap_

    from infoprobe.embedding import enable_umap_cache, numba_cache_dir

    codes, labels = _codes()
    umap_embedding(codes, labels, seed=1)
    for fn in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths,
               umap.layouts._nb_optimize_layout_euclidean_single_epoch):
        assert type(fn._cache).__name__ != "NullCache", fn.__name__
    cached = {p.name.split("-")[0] for p in numba_cache_dir().glob("**/umap_.*.nbi")}
    assert {"umap_.smooth_knn_dist", "umap_.compute_membership_strengths"} <= cached
    assert enable_umap_cache() == []  # already on: nothing to do


def test_codes_that_do_not_vary_beyond_the_resolution_are_an_error() -> None:
    from infoprobe.errors import InfoprobeError

    rng = np.random.default_rng(0)
    noise = (1e-8 * rng.standard_normal((50, 4))).astype(np.float32)
    with pytest.raises(InfoprobeError, match=r"largest spread .* within the resolution 1e-06: at that resolution every code is the same point"):
        umap_embedding(noise, resolution=1e-6)
    with pytest.raises(InfoprobeError, match="nothing to embed"):
        umap_embedding(np.zeros((50, 4), dtype=np.float32))
