"""Benchmark of the UMAP embedding: a cold fit in a fresh process against a warm one.

umap-learn compiles its numba functions just in time, once per process. infoprobe hands it the
exact kNN graph (``precomputed_knn``), which skips pynndescent and its compilation; this script
measures what a fresh process still pays. For 5,000 codes of dimension 20 (seeded Gaussian
clusters, like a bottleneck's codes):

- ``cold``: a fresh subprocess, timing ``import umap`` and the first ``umap_embedding``;
- ``warm``: a second ``umap_embedding`` of the same codes in that same process (median of
  ``--repeats``), which also checks that the same seed gives identical coordinates.

Goal (issue 14): cold ≤ 2 × warm. Writes ``benchmarks/results/embedding.json``.

    python benchmarks/embedding.py [--quick] [--out benchmarks/results/embedding.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]


def child(n: int, d: int, repeats: int) -> dict[str, object]:
    """Runs in the fresh process: cold import + fit, then warm fits."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from infoprobe.embedding import umap_embedding

    rng = np.random.default_rng(0)
    centres = 4.0 * rng.standard_normal((10, d))
    labels = rng.integers(0, 10, n)
    codes = (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)
    start = time.perf_counter()
    import umap  # noqa: F401  (the import is part of the cold cost)

    import_seconds = time.perf_counter() - start
    first = umap_embedding(codes, labels, max_samples=None, seed=0)
    cold = time.perf_counter() - start
    warm, identical = [], True
    for _ in range(repeats):
        t0 = time.perf_counter()
        again = umap_embedding(codes, labels, max_samples=None, seed=0)
        warm.append(time.perf_counter() - t0)
        identical = identical and again["coords"] == first["coords"]
    warm.sort()
    return {"n": n, "d": d, "import_seconds": import_seconds, "cold_seconds": cold,
            "cold_fit_seconds": cold - import_seconds, "warm_seconds": warm,
            "warm_median_seconds": warm[len(warm) // 2], "same_seed_identical": identical}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 codes and one warm repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, help="codes embedded (default 5,000; 2,000 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embedding.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, repeats = (2000, 1) if args.quick else (5000, args.repeats)
    n = args.n or n
    if args.child:
        print(json.dumps(child(n, 20, repeats)))
        return 0
    cmd = [sys.executable, __file__, "--child", "--repeats", str(repeats), "--n", str(n)]
    load_before = os.getloadavg()
    sys.path.insert(0, str(ROOT))
    from infoprobe.embedding import numba_cache_dir

    cache = numba_cache_dir()
    cached_files = sum(1 for _ in cache.glob("**/*.nbi"))  # numba's index files: 0 = a first-ever run
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    out = proc.stdout
    inner = json.loads(out.strip().splitlines()[-1])
    ratio = inner["cold_seconds"] / inner["warm_median_seconds"]
    result = {
        "benchmark": "embedding (UMAP)", "quick": args.quick, **inner,
        "cold_over_warm": round(ratio, 2), "goal_cold_over_warm": 2.0, "meets_goal": ratio <= 2.0,
        "numba_cache_dir": str(cache), "numba_cache_index_files_before": cached_files,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("import_seconds", "cold_seconds", "warm_median_seconds",
                                             "cold_over_warm", "same_seed_identical")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
