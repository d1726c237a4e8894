"""UMAP embeddings of bottleneck / latent codes (McInnes, Healy & Melville 2018).

As in the PIE paper's manifold experiment, the codes are mapped to 2-d and coloured by class.
``umap`` (and numba under it) is imported only when an embedding is asked for. UMAP is given
the exact kNN graph from `infoprobe.estimators.neighbors` (``precomputed_knn``, umap-learn
0.5), so it skips pynndescent's approximate search and, with it, most of the just-in-time
compilation a fresh process otherwise pays on its first fit; the graph is exact, so it does not
depend on pynndescent's random projections either. Compiled numba functions are cached in a
persistent folder (``$NUMBA_CACHE_DIR`` when the user set it, else
``$XDG_CACHE_HOME/infoprobe/numba``): those umap-learn marks ``cache=True``, and the module-level
ones it leaves uncached (the kNN smoothing, membership strengths and layout epochs), for which
`enable_umap_cache` turns on numba's own cache. Without that, every fresh process recompiled
them: the first fit of 5,000 codes took 2.3× a warm fit, 1.1× with the cache filled. numba keys
each cache entry on the source file's time stamp and size, so an upgraded umap-learn recompiles.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators.neighbors import knn_graph

__all__ = ["enable_umap_cache", "numba_cache_dir", "umap_embedding"]


def numba_cache_dir() -> Path:
    """The folder numba caches compiled code in; set ``NUMBA_CACHE_DIR`` here unless the user did."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "infoprobe" / "numba"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return folder


def enable_umap_cache() -> list[str]:
    """Turn on numba's on-disk cache for umap-learn's module-level jitted functions that were
    compiled without ``cache=True``; returns their names. Idempotent: a dispatcher whose cache is
    on is left alone. Must run before their first call in the process (a compiled function stays
    in memory and is not written out)."""
    import numba
    import umap.layouts
    import umap.umap_
    import umap.utils

    enabled = []
    for module in (umap.umap_, umap.layouts, umap.utils):
        for name, obj in vars(module).items():
            if (isinstance(obj, numba.core.dispatcher.Dispatcher)
                    and type(getattr(obj, "_cache", None)).__name__ == "NullCache" and not obj.signatures):
                obj.enable_caching()
                enabled.append(f"{module.__name__}.{name}")
    return enabled


def umap_embedding(
    codes: Any,
    labels: Any = None,
    *,
    max_samples: int | None = 5000,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    resolution: float = 0.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Embed ``codes`` (n_samples, n_features) in 2-d with UMAP; a seeded subsample of
    ``max_samples`` rows is used when there are more. Constant columns (e.g. the zeroed entries
    of an INN bottleneck) are dropped first: they do not change any distance. So are columns whose
    spread (max − min) is at most ``resolution``, e.g. float32 round-off at the input's scale;
    codes with no column left are an `InfoprobeError` (at that resolution there is nothing to embed).

    Returns plain data: ``coords`` (m × 2 list), ``labels`` (m ints, or None), ``indices`` of the
    rows used, ``n_features`` kept, ``params`` and ``seconds``.
    """
    x = np.asarray(codes, dtype=np.float32)
    x = x.reshape(x.shape[0], -1)
    if x.shape[0] < 3:
        raise InfoprobeError(f"Expected at least 3 codes to embed with UMAP, got {x.shape[0]}.")
    y = None if labels is None else np.asarray(labels).reshape(-1)
    if y is not None and y.shape[0] != x.shape[0]:
        raise InfoprobeError(f"Expected one label per code ({x.shape[0]}), got {y.shape[0]}.")
    ok = np.isfinite(x).all(axis=1)
    idx = np.flatnonzero(ok)
    if max_samples is not None and idx.size > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_samples, replace=False))
    x = x[idx]
    spread = np.ptp(x, axis=0)
    keep = spread > resolution
    if not keep.any():
        raise InfoprobeError(
            f"Expected codes that vary, got {x.shape[0]} codes whose largest spread (max − min) over "
            f"{x.shape[1]} features is {float(spread.max()):.3g}"
            + (f", within the resolution {resolution:.3g}: at that resolution every code is the same point "
               "and there is nothing to embed" if resolution > 0 else ": every code is the same point and "
               "there is nothing to embed")
        )
    x = x[:, keep]
    numba_cache_dir()
    t0 = time.perf_counter()
    if progress:
        import sys

        print(f"UMAP: embedding {x.shape[0]} codes of dimension {x.shape[1]} ...", file=sys.stderr)
    import umap  # heavy: numba compilation on first use

    enable_umap_cache()

    n_neighbors = max(2, min(n_neighbors, x.shape[0] - 1))
    graph = knn_graph(torch.from_numpy(x), n_neighbors)
    reducer = umap.UMAP(
        n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed,
        n_jobs=1, init="spectral" if x.shape[0] > n_neighbors + 2 else "random",
        precomputed_knn=(*graph, None),
    )
    with warnings.catch_warnings():
        # umap warns that transform() of new data needs its own search index; we never call it
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        coords = reducer.fit_transform(x)
    return {
        "method": "umap",
        "coords": np.round(np.asarray(coords, dtype=np.float64), 5).tolist(),
        "labels": None if y is None else [int(v) for v in y[idx]],
        "indices": [int(i) for i in idx],
        "n_features": int(x.shape[1]),
        "params": {"n_neighbors": n_neighbors, "min_dist": min_dist, "seed": seed,
                   "max_samples": max_samples},
        "seconds": time.perf_counter() - t0,
    }
