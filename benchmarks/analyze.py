"""Benchmark of ``infoprobe analyze``: 10,000 MNIST test images through the MNIST INN
autoencoder, every layer, default estimators, UMAP on, as a ratio of the model's own pass.

In one child process (issue 14): the plain reconstruction pass (``model.reconstruct`` under
``torch.no_grad``, in batches of ``analyze``'s default size) over the same images, timed before
and after; then ``infoprobe.analyze(model, data, umap=True, progress=False, seed=0)`` with its
defaults. ``ratio`` is the analysis wall time over the mean plain pass (goal ≤ 2.0, stretch
1.5); only the ratio is comparable across machines. Peak resident memory is the parent's
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (goal ≤ 2 GB). Only the public ``infoprobe.analyze``
and ``AnalysisResult.timings`` are used. Writes ``benchmarks/results/analyze.json``.
``--quick`` uses 2,000 images (``--samples`` any number).

    python benchmarks/analyze.py [--quick] [--checkpoint CKPT] [--data-root DIR]

``--checkpoint`` defaults to the shipped full-recipe INN (``checkpoints/``) when it is there.
Without one the INN is built untrained: its blocks start as identities, so its 20-d code is
constant up to round-off (spread 1.5e-8) and the analysis skips UMAP, which it used to run on
that round-off (28 of 109 s; ratio 2.01 against 1.72 for an INN trained 3 epochs, same machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "mnist-inn-ae-k20.pt"


def _shared_data() -> str | None:
    """../shared/data next to the repository (or next to a worktree's parent), if present."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "mnist.npz").is_file():
            return str(base / "shared" / "data")
    return None


def _plain_pass(model: Any, images: Any, batch_size: int) -> float:
    """Seconds for the reconstruction over ``images`` in batches, without gradients: as in
    ``analyze``, ``model.reconstruct`` or, for a model without it, ``model``."""
    import torch

    run = getattr(model, "reconstruct", model)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            run(images[i : i + batch_size])
    return time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    import infoprobe
    import models
    from infoprobe.checkpoint import build_model, load
    from infoprobe.spec import AnalysisSpec

    if args.checkpoint:
        model = build_model(load(args.checkpoint))
    else:
        model = models.build("inn-ae", dataset="mnist", bottleneck=args.bottleneck)
    model.eval()
    data = infoprobe.load_dataset("mnist", split="test", root=args.data_root).subset(args.samples, seed=0)
    batch_size = AnalysisSpec().batch_size  # analyze's default
    t_setup = time.perf_counter() - t0
    _plain_pass(model, data.images[:batch_size], batch_size)  # warm-up: first-call allocations
    plain_before = _plain_pass(model, data.images, batch_size)
    start = time.perf_counter()
    result = infoprobe.analyze(model, data, umap=not args.no_umap, progress=False, seed=0)
    t_analyze = time.perf_counter() - start
    plain_after = _plain_pass(model, data.images, batch_size)
    plain = 0.5 * (plain_before + plain_after)
    Path(args.child).write_text(json.dumps({
        "setup_seconds": t_setup, "analyze_seconds": t_analyze,
        "plain_pass_seconds": {"before": plain_before, "after": plain_after, "mean": plain},
        "plain_pass_batch_size": batch_size,
        "ratio": t_analyze / plain, "goal_ratio": 2.0, "stretch_ratio": 1.5,
        "timings": result.timings, "n_layers": len(result.layers), "n_samples": len(data),
        "warnings": result.warnings[:20],
    }, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images instead of 10,000")
    parser.add_argument("--checkpoint", default=str(SHIPPED) if SHIPPED.is_file() else None,
                        help="a trained MNIST inn-ae checkpoint (default: checkpoints/mnist-inn-ae-k20.pt when "
                             "shipped, else an untrained INN, whose codes are constant and get no UMAP)")
    parser.add_argument("--bottleneck", type=int, default=20)
    parser.add_argument("--samples", type=int, help="images (default 10,000; 2,000 with --quick)")
    parser.add_argument("--no-umap", action="store_true")
    parser.add_argument("--data-root", default=os.environ.get("INFOPROBE_DATA", _shared_data()),
                        help="folder with mnist.npz (default: $INFOPROBE_DATA, else ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analyze.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.samples = args.samples or (2000 if args.quick else 10000)
    if args.child:
        child(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", str(report), "--bottleneck", str(args.bottleneck),
               "--samples", str(args.samples)]
        cmd += ["--data-root", args.data_root] if args.data_root else []
        cmd += ["--no-umap"] if args.no_umap else []
        cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        inner = json.loads(report.read_text())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    result = {
        "benchmark": "analyze", "model": f"inn-ae (MNIST, bottleneck {args.bottleneck})",
        "trained": bool(args.checkpoint), "umap": not args.no_umap, "quick": args.quick,
        "wall_seconds": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1), "goal_peak_rss_mb": 2048,
        # CPU time does not grow when other processes compete for the cores; wall time does
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        **inner,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "omp_threads": os.environ.get("OMP_NUM_THREADS")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("ratio", "analyze_seconds", "plain_pass_seconds", "peak_rss_mb",
                                             "n_samples", "n_layers", "load_average_before")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
