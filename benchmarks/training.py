"""Training throughput (images/s) of the zoo models per dataset configuration (JSON out).

For each model and dataset, ``models.training.train`` runs a number of optimisation steps on a
seeded subset of the training images with the model's recipe (batch size from the recipe unless
``--batch-size``); the reported rate is images per second over the timed epoch (forward, loss,
backward, optimizer step; no evaluation), after one untimed warm-up epoch on a few batches.
MNIST / CIFAR-10 need ``--data-root`` (else those rows are skipped with the reason).

    python benchmarks/training.py [--quick] [--out benchmarks/results/training.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from models.training import train

MODELS = ("inn-ae", "classical-ae")
DATASETS = ("digits", "mnist", "cifar10")
# images timed per (model, dataset); the INN on CIFAR-10 runs at a few images/s on one CPU core
FULL = {"digits": 1437, "mnist": 2048, "cifar10": 512}
QUICK = {"digits": 512, "mnist": 256, "cifar10": 64}


def measure(name: str, dataset: str, n_images: int, *, batch_size: int | None, device: str,
            data_root: str | None) -> dict[str, Any]:
    data = load_dataset(dataset, split="train", root=data_root)
    torch.manual_seed(0)
    model = models.build(name, dataset=dataset)
    bs = batch_size or model.default_recipe()["batch_size"]
    warm = train(model, data, epochs=1, subset=min(2 * bs, n_images), batch_size=bs, device=device,
                 progress=False)
    start = time.perf_counter()
    result = train(model, data, epochs=1, subset=n_images, batch_size=bs, device=device, progress=False)
    wall = time.perf_counter() - start
    return {
        "model": name, "dataset": dataset, "images_per_second": result.images_per_second,
        "images": min(n_images, len(data)), "batch_size": bs, "device": result.device,
        "wall_seconds_incl_setup": wall, "warmup_images_per_second": warm.images_per_second,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"fewer images: {QUICK}")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "training.json"))
    p.add_argument("--data-root", help="folder with mnist.npz / cifar10.npz (default: $INFOPROBE_DATA)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--batch-size", type=int, help="default: each model's recipe")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rows, skipped = [], []
    for dataset in args.datasets:
        for name in args.models:
            try:
                row = measure(name, dataset, sizes[dataset], batch_size=args.batch_size,
                              device=args.device, data_root=args.data_root)
            except InfoprobeError as exc:
                skipped.append({"model": name, "dataset": dataset, "reason": str(exc)})
                print(f"skip {name} on {dataset}: {exc}", flush=True)
                continue
            rows.append(row)
            print(f"{name:>13} {dataset:>8}: {row['images_per_second']:10.1f} images/s "
                  f"(batch {row['batch_size']}, {row['images']} images)", flush=True)
    report = {
        "benchmark": "training throughput", "quick": args.quick,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": str(torch.__version__), "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.is_available()},
        "results": rows, "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
