"""Why PIE's reconstructions collapse: short MNIST runs measured with the recognisability metric.

Trains one model (a PIE with the given σ and option overrides, or the classical AE with a 10-d
code as reference) on a seeded subset of MNIST, one epoch at a time, and after each epoch prints
one JSON line: test loss, reconstruction MSE, reconstruction class-consistency
(:func:`infoprobe.quality.class_consistency`) on ``--test-n`` test images, and the fraction of
confident samples at T = 1 and 0.5 (PIE only). Findings: ``analyses/results/pie_diagnosis.md``.

Usage (from the repository root; keep torch on one thread on a shared CPU)::

    python -m analyses.pie_diagnosis --data-root ../shared/data --sigma 0.01 --epochs 4
    python -m analyses.pie_diagnosis --data-root ../shared/data --sigma 0.01 --set clamp=0.5
    python -m analyses.pie_diagnosis --data-root ../shared/data --model classical-ae
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import models
from infoprobe.data import load_dataset
from infoprobe.quality import class_consistency, confident_fraction, fit_reference_classifier


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--model", default="pie", choices=["pie", "classical-ae"])
    p.add_argument("--sigma", type=float, default=0.01)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="PIE config overrides, e.g. clamp=0.5 dequantize=0 (JSON values)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--subset", type=int, default=5000)
    p.add_argument("--test-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (.pt) to keep; a later call with more --epochs and "
                        "--first-epoch continues it")
    p.add_argument("--first-epoch", type=int, default=1,
                   help="first epoch to train and measure (1 + the epochs already in --out)")
    return p.parse_args(argv)


@torch.no_grad()
def measure(model: Any, test: Any, classifier: Any, *, pie: bool, seed: int) -> dict[str, float]:
    model.eval()
    x, y = test.images, test.labels
    rec = torch.cat([model.reconstruct(x[i:i + 500]) for i in range(0, len(x), 500)])
    out = {"recon_mse": float((rec.clamp(0, 1) - x).pow(2).mean()),
           "class_consistency": class_consistency(classifier, rec, y)}
    if pie:
        torch.manual_seed(seed)
        out["test_loss"] = float(model.loss(x[:500])["loss"])
        for t in (1.0, 0.5):
            g = torch.Generator().manual_seed(seed)
            out[f"confident_T{t:g}"] = confident_fraction(classifier, model.sample(1000, temperature=t, generator=g))
    model.train()
    return out


def main(argv: list[str] | None = None) -> int:
    from models.training import train

    args = parse_args(argv)
    torch.manual_seed(args.seed)
    train_data = load_dataset("mnist", split="train", root=args.data_root)
    test = load_dataset("mnist", split="test", root=args.data_root).subset(args.test_n, seed=args.seed)
    classifier = fit_reference_classifier(train_data, test, seed=args.seed)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    config = {k: _value(v) for k, v in overrides.items()}
    if args.model == "pie":
        model = models.build("pie", dataset="mnist", sigma=args.sigma, **config)
    else:
        model = models.build("classical-ae", dataset="mnist", bottleneck=10)
    print(json.dumps({"tag": args.tag, "model": args.model, "sigma": args.sigma, "set": config,
                      "lr": args.lr, "subset": args.subset, "ceiling": classifier.accuracy}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.out if args.out is not None else Path(tmp) / "model.pt"
        for epoch in range(args.first_epoch, args.epochs + 1):
            t0 = time.perf_counter()
            result = train(model, train_data, epochs=epoch, lr=args.lr, batch_size=args.batch_size,
                           seed=args.seed, subset=args.subset, out=ckpt, resume=True, progress=False)
            row = {"tag": args.tag, "epoch": epoch, "seconds": round(time.perf_counter() - t0, 1),
                   "train_loss": result.final.get("train_loss")}
            row.update(measure(model, test, classifier, pie=args.model == "pie", seed=args.seed))
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
