"""Benchmark of ``infoprobe analyze``: 10,000 MNIST test images through the MNIST INN
autoencoder, every layer, default estimators, UMAP on.

The analysis runs in a child process, so its peak resident memory is the parent's
``getrusage(RUSAGE_CHILDREN).ru_maxrss``; wall time is measured around it. Writes
``benchmarks/results/analyze.json``. ``--quick`` analyses 2,000 images.

    python benchmarks/analyze.py [--quick] [--checkpoint CKPT] [--data-root DIR]

Without ``--checkpoint`` the INN is built untrained (its blocks start as identities, so
the activations differ from a trained model's, but the work per layer is the same).
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

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> str | None:
    """../shared/data next to the repository (or next to a worktree's parent), if present."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "mnist.npz").is_file():
            return str(base / "shared" / "data")
    return None


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    import models
    from infoprobe.analysis import analyze
    from infoprobe.checkpoint import build_model, load
    from infoprobe.data import load_dataset

    if args.checkpoint:
        model = build_model(load(args.checkpoint))
    else:
        model = models.build("inn-ae", dataset="mnist", bottleneck=args.bottleneck)
    data = load_dataset("mnist", split="test", root=args.data_root)
    t_setup = time.perf_counter() - t0
    result = analyze(model, data, samples=args.samples, umap=not args.no_umap, progress=False,
                     batch_size=args.batch_size, seed=0)
    t_analyze = time.perf_counter() - t0 - t_setup
    Path(args.child).write_text(json.dumps({
        "setup_seconds": t_setup, "analyze_seconds": t_analyze, "timings": result.timings,
        "n_layers": len(result.layers), "n_samples": result.dataset["n_samples"],
        "kl_data_reconstruction": {k: v.value for k, v in result.globals["kl_data_reconstruction"].items()},
        "warnings": result.warnings[:20],
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images instead of 10,000")
    parser.add_argument("--checkpoint", help="a trained MNIST inn-ae checkpoint (default: untrained)")
    parser.add_argument("--bottleneck", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-umap", action="store_true")
    parser.add_argument("--data-root", default=os.environ.get("INFOPROBE_DATA", _shared_data()),
                        help="folder with mnist.npz (default: $INFOPROBE_DATA, else ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analyze.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.samples = 2000 if args.quick else 10000
    if args.child:
        child(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", str(report), "--bottleneck", str(args.bottleneck),
               "--batch-size", str(args.batch_size)]
        cmd += ["--data-root", args.data_root] if args.data_root else []
        cmd += ["--quick"] if args.quick else []
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
        "wall_seconds": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
        # CPU time does not grow when other processes compete for the cores; wall time does
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        **inner,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "omp_threads": os.environ.get("OMP_NUM_THREADS")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_seconds", "cpu_seconds", "peak_rss_mb", "n_samples",
                                             "n_layers", "load_average_before")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
