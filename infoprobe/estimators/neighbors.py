"""Exact nearest-neighbour search, dispatched by dimension and device.

Every estimator in `knn` and the UMAP graph of `infoprobe.embedding` search here. The answer
is exact in float64 whichever method runs; only the speed differs:

- ``"sort"``: d = 1 on the CPU. The k nearest of a point lie among the k sorted values on
  either side of it, so one sort and a (n × 2k) window replace the search.
- ``"tree"``: scipy's ``cKDTree`` (queries on ``torch.get_num_threads()`` workers), on the
  CPU for 2 ≤ d ≤ `TREE_MAX_D` (Euclidean) or `TREE_MAX_D_MAXNORM` (max-norm).
- ``"brute"``: all pairs in row blocks with no Python loop over samples, on any device, at
  high d on the CPU and at every d on a GPU. Euclidean: a float32 GEMM ranks candidates
  and their distances are recomputed from float64 coordinate differences (`knn_distances`'s
  error bound decides when a row must be redone in float64). Max-norm: ``torch.cdist(p=inf)``
  in float64, which is exact (a maximum of absolute differences).

The crossovers were measured, not guessed: ``python benchmarks/estimators.py --sections
crossover`` times the tree and the brute force for the k-th neighbour alone at n = 5,000 and
20,000, d from 4 to 64, and writes them under ``"crossover"`` in
``benchmarks/results/estimators.json``. On the 2-core development machine (heavily shared
when measured: load average 15) the tree won up to d = 20 (n = 5,000) and by 2-3x at d = 12
(n = 20,000), Euclidean and max-norm alike; on the idle machine of issue 14 the GEMM already
won at d = 10 (n = 5,000, 1.7x). The tree's advantage grows with n (n log n against n²), the
GEMM's with idle cores and d. ``TREE_MAX_D = 12`` sits between the two; the max-norm brute force
has no BLAS behind it, so the tree keeps it up to ``TREE_MAX_D_MAXNORM = 20``. Rerun the
crossover section on the target machine before moving them.

Max-norm counts (KSG's n_x, n_y; Ross's m_i) keep the estimators' comparisons exactly: strict
``<`` for "strictly inside ε" and ``<=`` for "within d_i"; the tree gets the strict one as
``<= nextafter(ε, −∞)``, which is the same set of float64 distances.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators._base import rows_per_chunk

__all__ = [
    "METHODS",
    "TREE_MAX_D",
    "TREE_MAX_D_MAXNORM",
    "count_within",
    "knn_distances",
    "knn_graph",
    "ksg_search",
    "search_method",
]

Metric = Literal["euclidean", "chebyshev"]
METHODS = ("auto", "sort", "tree", "brute")
#: largest d searched by the KD-tree on the CPU (Euclidean); above it the blocked GEMM. Measured
#: (benchmarks/results/estimators.json, "crossover", idle 2-core machine): the tree wins at d = 8,
#: the GEMM from d = 12 at n = 5,000 and 20,000, and the d = 10 tree cells (0.12 s at n = 5,000)
#: are slower than the GEMM at d = 20 (0.05 s)
TREE_MAX_D = 9
#: largest d searched by the KD-tree on the CPU (max-norm); above it blocked ``cdist(p=inf)``.
#: Measured: brute force wins from d = 16 at n = 5,000 and from d = 20 at n = 20,000
TREE_MAX_D_MAXNORM = 16


def search_method(d: int, device: torch.device, *, metric: Metric = "euclidean") -> str:
    """The method ``"auto"`` picks for ``d`` features on ``device``: sort, tree or brute."""
    if device.type != "cpu":
        return "brute"
    if d == 1:
        return "sort"
    limit = TREE_MAX_D if metric == "euclidean" else TREE_MAX_D_MAXNORM
    return "tree" if d <= limit else "brute"


def _resolve(method: str, d: int, device: torch.device, metric: Metric) -> str:
    if method not in METHODS:
        raise InfoprobeError(f"Expected a search method in {METHODS}, got {method!r}; pass method='auto'")
    if method == "auto":
        return search_method(d, device, metric=metric)
    if method == "sort" and d != 1:
        raise InfoprobeError(f"Expected 1 feature for method='sort', got {d}; pass method='auto'")
    return method


def _workers(n_query: int) -> int:
    """cKDTree query threads: torch's count, but one for small queries, where starting threads
    costs more than it saves."""
    return 1 if n_query < 4096 else max(1, torch.get_num_threads())


def _numpy64(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())


# ---------------------------------------------------------------------------------------------
# k nearest neighbours: (distances, indices), both (n_query, k), distances ascending, float64


def _search(query: torch.Tensor, ref: torch.Tensor, k: int, *, exclude_self: bool, metric: Metric,
            method: str) -> tuple[torch.Tensor, torch.Tensor]:
    if query.shape[1] != ref.shape[1]:
        raise InfoprobeError(f"Expected query and reference with the same number of features, got "
                             f"{query.shape[1]} and {ref.shape[1]}; pass samples of one space")
    available = ref.shape[0] - int(exclude_self)
    if not 1 <= k <= available:
        raise InfoprobeError(f"Expected 1 <= k <= {available} (the reference points), got k={k}; lower k")
    how = _resolve(method, ref.shape[1], ref.device, metric)
    if how == "sort":
        return _sort_knn(query, ref, k, exclude_self)
    if how == "tree":
        return _tree_knn(query, ref, k, exclude_self, metric)
    if metric == "euclidean":
        return _gemm_knn(query, ref, k, exclude_self)
    return _maxnorm_knn(query, ref, k, exclude_self)


def knn_distances(query: torch.Tensor, ref: torch.Tensor, k: int, *, exclude_self: bool,
                  metric: Metric = "euclidean", method: str = "auto") -> torch.Tensor:
    """Distance (float64, on ``ref``'s device) from each query row to its k-th nearest row of
    ``ref``. With ``exclude_self`` the query is ``ref`` itself and each point's own row is
    skipped (its exact duplicates are not). ``metric`` "euclidean" or "chebyshev" (max-norm)."""
    return _search(query, ref, k, exclude_self=exclude_self, metric=metric, method=method)[0][:, -1]


def knn_graph(x: torch.Tensor, n_neighbors: int, *, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The exact Euclidean kNN graph of ``x`` as UMAP expects it (McInnes et al. 2018): int64
    indices and float32 distances, both (n, n_neighbors), each point counted as its own
    nearest neighbour (first column, unless exact duplicates share distance 0 with it)."""
    x = torch.as_tensor(x)
    distances, indices = _search(x, x, n_neighbors, exclude_self=False, metric="euclidean", method=method)
    return indices.cpu().numpy().astype(np.int64), distances.cpu().numpy().astype(np.float32)


def _sort_knn(query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """d = 1: the k nearest among the k sorted neighbours on either side. In numpy: these small
    single-threaded operations do not wait on torch's intra-op threads."""
    r = _numpy64(ref)[:, 0]
    order = np.argsort(r, kind="stable")
    values = r[order]
    if exclude_self:
        q = r
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        offsets = np.r_[np.arange(-k, 0), np.arange(1, k + 1)]
    else:
        q = _numpy64(query)[:, 0]
        position = np.searchsorted(values, q)
        offsets = np.arange(-k, k)
    window = position[:, None] + offsets
    inside = (window >= 0) & (window < values.size)
    np.clip(window, 0, values.size - 1, out=window)
    distance = np.abs(values[window] - q[:, None])
    distance[~inside] = np.inf
    column = np.argsort(distance, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(distance, column, 1)
    index = order[np.take_along_axis(window, column, 1)]
    return torch.from_numpy(best).to(ref.device), torch.from_numpy(index.astype(np.int64)).to(ref.device)


def _tree_knn(query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool,
              metric: Metric) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.spatial import cKDTree

    r = _numpy64(ref)
    q = r if exclude_self else _numpy64(query)
    p = 2.0 if metric == "euclidean" else math.inf
    count = k + int(exclude_self)
    dist, index = cKDTree(r).query(q, k=[*range(1, count + 1)], p=p, workers=_workers(q.shape[0]))
    if exclude_self:
        # drop each point's own column; with more than k exact duplicates it may be missing,
        # then any zero-distance column can go (the last one is one)
        own = index == np.arange(index.shape[0])[:, None]
        own[~own.any(1), -1] = True
        keep = ~own
        dist, index = dist[keep].reshape(-1, k), index[keep].reshape(-1, k)
    device = ref.device
    return torch.from_numpy(dist).to(device), torch.from_numpy(index.astype(np.int64)).to(device)


def _candidates(
    q: torch.Tensor, r: torch.Tensor, start: int, count: int, exclude_self: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and squared distances (as computed, in q's dtype) of the ``count`` nearest rows."""
    q_sq, r_sq = (q * q).sum(1), (r * r).sum(1)
    d2 = torch.addmm(r_sq[None, :], q, r.T, alpha=-2.0).add_(q_sq[:, None])
    if exclude_self:
        own = torch.arange(q.shape[0], device=q.device)
        d2[own, own + start] = math.inf
    values, index = d2.topk(count, dim=1, largest=False)
    return index, values


def _gemm_knn(query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked brute-force Euclidean search, exact in float64.

    Candidates are found in float32 (k + 4 of them) and their distances recomputed exactly in
    float64. A row is accepted only if a rigorous bound on the float32 rounding error,
    (d + 8)·2⁻²³·(‖q‖² + max‖r‖²), proves that no non-candidate can be nearer than the k-th
    exact distance; the other rows (rare, e.g. clusters at very different scales) are redone
    from float64 coordinate differences.
    """
    n_ref, d = ref.shape
    # everything in row blocks: no full float64 copy of the data is ever held (also not by
    # torch's reductions with dtype=, which upcast the whole tensor first)
    step = rows_per_chunk(d, bytes_per_entry=8, device=ref.device)
    blocks = range(0, n_ref, step)
    # the float32 search works on centred data, to limit cancellation
    centre = sum(ref[i : i + step].to(torch.float64).sum(0) for i in blocks) / n_ref
    r32 = torch.empty((n_ref, d), dtype=torch.float32, device=ref.device)
    r_sq_max = 0.0
    for i in blocks:
        r32[i : i + step] = ref[i : i + step].to(torch.float64) - centre
        r_sq_max = max(r_sq_max, float(r32[i : i + step].double().pow(2).sum(1).max()))
    count = min(k + 4, n_ref - int(exclude_self))
    # a user's torch.set_float32_matmul_precision("high"/"medium") lets float32 products run in
    # TF32 (10 mantissa bits) or bfloat16 (7): the bound must use that precision, or a row could
    # be accepted wrongly (more rows are then redone in float64; the result stays exact)
    mantissa = {"highest": 23, "high": 10}.get(torch.get_float32_matmul_precision(), 7)
    bound_factor = (d + 8) * 2.0**-mantissa
    # with many features the block product is compute-bound and larger blocks pay off
    min_rows = 256 if d > 64 else 1
    rows = min(rows_per_chunk(n_ref, bytes_per_entry=4, device=ref.device, min_rows=min_rows),
               rows_per_chunk(count * d, bytes_per_entry=8, device=ref.device, min_rows=min_rows))
    out_distance, out_index = [], []
    for start in range(0, query.shape[0], rows):
        qc = query[start : start + rows].to(torch.float64)
        qc32 = (qc - centre).float()
        index, approx = _candidates(qc32, r32, start, count, exclude_self)
        exact, order = (ref[index].to(torch.float64) - qc[:, None, :]).pow_(2).sum(-1).sort(1)
        exact, index = exact[:, :k], index.gather(1, order[:, :k])
        if count < n_ref - int(exclude_self):
            error = bound_factor * (qc32.double().pow(2).sum(1) + r_sq_max)
            unsure = approx[:, -1].double() - error < exact[:, -1]
            if bool(unsure.any()):
                rows_unsure = torch.nonzero(unsure).flatten()
                own = start + rows_unsure if exclude_self else None
                redo_index = _nearest_float64(qc[rows_unsure], ref.to(torch.float64), own, k)
                redo, redo_order = (ref[redo_index].to(torch.float64) - qc[rows_unsure, None, :]).pow_(2).sum(-1).sort(1)
                exact, index = exact.clone(), index.clone()
                exact[rows_unsure], index[rows_unsure] = redo, redo_index.gather(1, redo_order)
        out_distance.append(exact.sqrt_())
        out_index.append(index)
    return torch.cat(out_distance), torch.cat(out_index)


def _nearest_float64(q: torch.Tensor, r: torch.Tensor, own: torch.Tensor | None, k: int) -> torch.Tensor:
    """Indices of the k nearest rows of ``r`` to each row of ``q``, skipping own[i], from
    float64 coordinate differences (no ‖q‖² + ‖r‖² − 2q·r cancellation)."""
    d2 = torch.cdist(q, r, compute_mode="donot_use_mm_for_euclid_dist")
    if own is not None:
        d2[torch.arange(q.shape[0], device=q.device), own] = math.inf
    return d2.topk(k, dim=1, largest=False).indices


def _maxnorm_knn(query: torch.Tensor, ref: torch.Tensor, k: int, exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocked brute-force max-norm search in float64 (exact: no rounding in max |a − b|)."""
    r = ref.to(torch.float64)
    q = r if exclude_self else query.to(torch.float64)
    rows = rows_per_chunk(r.shape[0], bytes_per_entry=8, device=r.device)
    out_distance, out_index = [], []
    for start in range(0, q.shape[0], rows):
        dist = torch.cdist(q[start : start + rows], r, p=math.inf)
        if exclude_self:
            own = torch.arange(dist.shape[0], device=r.device)
            dist[own, own + start] = math.inf
        values, index = dist.topk(k, dim=1, largest=False, sorted=True)
        out_distance.append(values)
        out_index.append(index)
    return torch.cat(out_distance), torch.cat(out_index)


# ---------------------------------------------------------------------------------------------
# max-norm counts


def count_within(x: torch.Tensor, radius: torch.Tensor, *, strict: bool, method: str = "auto") -> torch.Tensor:
    """For each row i of ``x``, how many rows j (i itself included) have the max-norm distance
    ‖x_j − x_i‖_∞ < radius_i (``strict``) or ≤ radius_i; int64, on ``x``'s device."""
    x64 = x.to(torch.float64)
    radius = radius.to(device=x.device, dtype=torch.float64)
    how = _resolve(method, x.shape[1], x.device, "chebyshev")
    if how in ("tree", "sort"):  # a 1-d tree is as fast as a sort here and keeps the comparison exact
        return _tree_count(x64, radius, strict)
    rows = rows_per_chunk(x64.shape[0], bytes_per_entry=8, device=x.device)
    counts = []
    for start in range(0, x64.shape[0], rows):
        dist = torch.cdist(x64[start : start + rows], x64, p=math.inf)
        inside = dist.lt(radius[start : start + rows, None]) if strict else dist.le(radius[start : start + rows, None])
        counts.append(inside.sum(1, dtype=torch.int64))
    return torch.cat(counts)


def _tree_count(x: torch.Tensor, radius: torch.Tensor, strict: bool) -> torch.Tensor:
    from scipy.spatial import cKDTree

    points, r = _numpy64(x), _numpy64(radius)
    if strict:
        positive = r > 0
        r = np.where(positive, np.nextafter(r, -np.inf), 0.0)
    counts = cKDTree(points).query_ball_point(points, r, p=np.inf, return_length=True,
                                                 workers=_workers(points.shape[0]))
    counts = np.asarray(counts, dtype=np.int64)
    if strict:
        counts[~positive] = 0  # nothing is strictly closer than 0
    return torch.from_numpy(counts).to(x.device)


def ksg_search(x: torch.Tensor, y: torch.Tensor, k: int, *, method: str = "auto") -> torch.Tensor:
    """(3, n) float64 for KSG (Kraskov et al. 2004, estimator 1): the max-norm distance ε_i from
    (x_i, y_i) to its k-th joint neighbour (itself skipped), then how many x_j and y_j (j = i
    included) lie strictly inside ε_i in each marginal space."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    how = _resolve(method, x.shape[1] + y.shape[1], x.device, "chebyshev")
    if how != "brute":
        eps = knn_distances(torch.cat([x, y], 1), torch.cat([x, y], 1), k, exclude_self=True,
                            metric="chebyshev", method=how)
        nx = count_within(x, eps, strict=True, method=search_method(x.shape[1], x.device, metric="chebyshev"))
        ny = count_within(y, eps, strict=True, method=search_method(y.shape[1], y.device, metric="chebyshev"))
        return torch.stack([eps, nx.to(torch.float64), ny.to(torch.float64)])
    # one pass: the marginal distance blocks give both the joint distance and the counts
    n = x.shape[0]
    rows = rows_per_chunk(n, bytes_per_entry=8, device=x.device)
    out = []
    for start in range(0, n, rows):
        dx = torch.cdist(x[start : start + rows], x, p=math.inf)
        dy = torch.cdist(y[start : start + rows], y, p=math.inf)
        joint = torch.maximum(dx, dy)
        own = torch.arange(joint.shape[0], device=x.device)
        joint[own, own + start] = math.inf
        eps = joint.topk(k, dim=1, largest=False).values[:, -1]
        # int32 sums of the comparison masks are about twice as fast as the default int64 ones
        nx = dx.lt(eps[:, None]).sum(1, dtype=torch.int32)
        ny = dy.lt(eps[:, None]).sum(1, dtype=torch.int32)
        out.append(torch.stack([eps, nx.to(torch.float64), ny.to(torch.float64)]))
    return torch.cat(out, 1)
