"""Every neighbour-search path against brute-force float64 distances from scipy's ``cdist``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from infoprobe.errors import InfoprobeError
from infoprobe.estimators import neighbors

SCIPY_METRIC = {"euclidean": "euclidean", "chebyshev": "chebyshev"}
DIMENSIONS = (1, 2, 5, 30)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _methods(d: int) -> list[str]:
    return ["sort", "tree", "brute"] if d == 1 else ["tree", "brute"]


def _data(d: int, kind: str, n: int = 240, seed: int = 0) -> np.ndarray:
    """Gaussian rows with a block of exact duplicates, or a small integer grid (ties everywhere)."""
    rng = np.random.default_rng(seed + d)
    if kind == "grid":
        return rng.integers(0, 3, size=(n, d)).astype(np.float64)
    x = rng.standard_normal((n, d))
    x[10:16] = x[3]  # point 3 and six exact copies
    return x


def _reference_kth(q: np.ndarray, r: np.ndarray, k: int, metric: str, exclude_self: bool) -> np.ndarray:
    dist = cdist(q, r, metric=SCIPY_METRIC[metric])
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    return np.sort(dist, axis=1)[:, k - 1]


@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("kind", ["gauss", "grid"])
@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
@pytest.mark.parametrize("k", [1, 3])
def test_kth_distance_every_path_matches_cdist(d: int, kind: str, metric: str, k: int) -> None:
    x = _data(d, kind)
    q = _data(d, kind, n=90, seed=7)
    self_ref = _reference_kth(x, x, k, metric, exclude_self=True)
    cross_ref = _reference_kth(q, x, k, metric, exclude_self=False)
    xt, qt = torch.from_numpy(x), torch.from_numpy(q)
    for method in [*_methods(d), "auto"]:
        own = neighbors.knn_distances(xt, xt, k, exclude_self=True, metric=metric, method=method)
        other = neighbors.knn_distances(qt, xt, k, exclude_self=False, metric=metric, method=method)
        assert own.dtype == torch.float64
        np.testing.assert_allclose(own.numpy(), self_ref, rtol=1e-12, atol=0, err_msg=method)
        np.testing.assert_allclose(other.numpy(), cross_ref, rtol=1e-12, atol=0, err_msg=method)


def test_duplicates_give_exact_zero_on_every_path() -> None:
    x = torch.from_numpy(_data(5, "gauss"))
    for method in _methods(5):
        kth = neighbors.knn_distances(x, x, 3, exclude_self=True, method=method)
        assert bool((kth[[3, 10, 11]] == 0).all()), method
        assert bool((kth[20:] > 0).all()), method


def test_float32_input_is_searched_in_float64() -> None:
    x32 = torch.from_numpy(_data(30, "gauss")).float()
    reference = _reference_kth(x32.double().numpy(), x32.double().numpy(), 3, "euclidean", exclude_self=True)
    for method in _methods(30):
        kth = neighbors.knn_distances(x32, x32, 3, exclude_self=True, method=method)
        np.testing.assert_allclose(kth.numpy(), reference, rtol=1e-12, atol=0, err_msg=method)


@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("kind", ["gauss", "grid"])
@pytest.mark.parametrize("strict", [True, False])
def test_max_norm_counts_match_cdist_at_tied_radii(d: int, kind: str, strict: bool) -> None:
    x = _data(d, kind)
    dist = cdist(x, x, metric="chebyshev")
    # radii equal to actual distances, so points lie exactly on the boundary; and radius 0
    radius = np.sort(dist, axis=1)[:, 4]
    radius[:5] = 0.0
    expected = (dist < radius[:, None]).sum(1) if strict else (dist <= radius[:, None]).sum(1)
    for method in [*_methods(d), "auto"]:
        counts = neighbors.count_within(torch.from_numpy(x), torch.from_numpy(radius), strict=strict, method=method)
        assert counts.dtype == torch.int64
        np.testing.assert_array_equal(counts.numpy(), expected, err_msg=method)


@pytest.mark.parametrize("dx,dy", [(1, 1), (2, 3), (15, 15)])
@pytest.mark.parametrize("kind", ["gauss", "grid"])
def test_ksg_search_matches_cdist(dx: int, dy: int, kind: str) -> None:
    xy = _data(dx + dy, kind)
    x, y = xy[:, :dx], xy[:, dx:]
    mx, my = cdist(x, x, metric="chebyshev"), cdist(y, y, metric="chebyshev")
    joint = np.maximum(mx, my)
    np.fill_diagonal(joint, np.inf)
    eps = np.sort(joint, axis=1)[:, 2]
    expected = np.stack([eps, (mx < eps[:, None]).sum(1), (my < eps[:, None]).sum(1)])
    for method in ("tree", "brute", "auto"):
        got = neighbors.ksg_search(torch.from_numpy(x), torch.from_numpy(y), 3, method=method)
        np.testing.assert_array_equal(got[1:].numpy(), expected[1:], err_msg=method)
        np.testing.assert_allclose(got[0].numpy(), expected[0], rtol=1e-12, atol=0, err_msg=method)


@pytest.mark.parametrize("d", DIMENSIONS)
def test_knn_graph_is_the_exact_neighbour_graph(d: int) -> None:
    x = _data(d, "gauss")
    dist = cdist(x, x)
    expected = np.sort(dist, axis=1)[:, :6]
    for method in _methods(d):
        index, distance = neighbors.knn_graph(torch.from_numpy(x), 6, method=method)
        assert index.shape == distance.shape == (x.shape[0], 6)
        assert index.dtype == np.int64 and distance.dtype == np.float32
        np.testing.assert_allclose(distance, expected.astype(np.float32), rtol=1e-6, err_msg=method)
        # the indices point at rows at those distances, and each point is in its own list
        np.testing.assert_allclose(np.take_along_axis(dist, index, 1), expected, rtol=1e-12, err_msg=method)
        assert all(i in row or expected[i, 1] == 0 for i, row in enumerate(index))


def test_dispatch_by_dimension_and_device() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert neighbors.search_method(1, cpu) == "sort"
    assert neighbors.search_method(2, cpu) == "tree"
    assert neighbors.search_method(neighbors.TREE_MAX_D, cpu) == "tree"
    assert neighbors.search_method(neighbors.TREE_MAX_D + 1, cpu) == "brute"
    assert neighbors.search_method(neighbors.TREE_MAX_D_MAXNORM + 1, cpu, metric="chebyshev") == "brute"
    assert neighbors.search_method(784, cpu) == "brute"
    assert neighbors.search_method(1, gpu) == neighbors.search_method(2, gpu) == "brute"


def test_bad_method_and_k_are_user_errors() -> None:
    x = torch.zeros(5, 2)
    with pytest.raises(InfoprobeError, match="Expected a search method in"):
        neighbors.knn_distances(x, x, 1, exclude_self=True, method="ball")
    with pytest.raises(InfoprobeError, match="Expected 1 feature for method='sort', got 2"):
        neighbors.knn_distances(x, x, 1, exclude_self=True, method="sort")
    with pytest.raises(InfoprobeError, match=r"Expected 1 <= k <= 4 \(the reference points\), got k=5"):
        neighbors.knn_distances(x, x, 5, exclude_self=True)


@CUDA
@pytest.mark.parametrize("d", DIMENSIONS)
@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
def test_cuda_path_matches_cdist(d: int, metric: str) -> None:
    x = _data(d, "grid")
    xt = torch.from_numpy(x).cuda()
    kth = neighbors.knn_distances(xt, xt, 3, exclude_self=True, metric=metric)
    assert kth.device.type == "cuda"
    np.testing.assert_allclose(kth.cpu().numpy(), _reference_kth(x, x, 3, metric, True), rtol=1e-12, atol=0)
    radius = torch.from_numpy(np.sort(cdist(x, x, metric="chebyshev"), axis=1)[:, 4]).cuda()
    counts = neighbors.count_within(xt, radius, strict=True)
    expected = (cdist(x, x, metric="chebyshev") < radius.cpu().numpy()[:, None]).sum(1)
    np.testing.assert_array_equal(counts.cpu().numpy(), expected)


def test_reduced_matmul_precision_keeps_the_search_exact() -> None:
    # TF32 / bfloat16 products (set by a user, on a GPU) must not let the float32 ranking accept a
    # wrong row; on the CPU the products stay float32 and this guards the bound's bookkeeping
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((400, 40)))
    expected = np.sort(cdist(x.numpy(), x.numpy()), axis=1)[:, 3]  # k = 3, own point at column 0
    before = torch.get_float32_matmul_precision()
    try:
        for precision in ("high", "medium"):
            torch.set_float32_matmul_precision(precision)
            got = neighbors.knn_distances(x, x, 3, exclude_self=True, method="brute")
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    finally:
        torch.set_float32_matmul_precision(before)
