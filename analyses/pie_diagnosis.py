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
    python -m analyses.pie_diagnosis --data-root ../shared/data --sigma 0.01 --epochs 6 --subset 60000 --out p.pt
    python -m analyses.pie_diagnosis --data-root ../shared/data --test-n 10000 --subset 60000 --out p.pt --evaluate-only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

import models
from infoprobe.data import load_dataset
from infoprobe.quality import class_consistency, confident_fraction, fit_reference_classifier

__all__ = ["main", "measure", "train_by_epoch"]


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
    p.add_argument("--classifier-images", type=int, default=10_000,
                   help="training images the reference classifier is fitted on (the library's default)")
    p.add_argument("--evaluate-only", action="store_true",
                   help="train nothing: measure the model in --out on --test-n test images (e.g. all "
                        "10000) and print one row with a 95 %% binomial interval of the class-consistency")
    return p.parse_args(argv)


@torch.no_grad()
def measure(model: Any, test: Any, classifier: Any, *, pie: bool, seed: int) -> dict[str, float]:
    """Recon MSE per pixel and class-consistency on ``test``; for a PIE also its test loss on the
    first 500 images and the confident fractions of 1,000 samples at T = 1 and 0.5."""
    model.eval()
    device = model.device
    x, y = test.images, test.labels
    rec = torch.cat([model.reconstruct(x[i:i + 500].to(device)).cpu() for i in range(0, len(x), 500)])
    out = {"recon_mse": float((rec.clamp(0, 1) - x).pow(2).mean()),
           "class_consistency": class_consistency(classifier, rec, y)}
    if pie:
        torch.manual_seed(seed)
        out["test_loss"] = float(model.loss(x[:500].to(device))["loss"])
        for t in (1.0, 0.5):
            g = torch.Generator(device=device).manual_seed(seed)
            samples = model.sample(1000, temperature=t, generator=g).cpu()
            out[f"confident_T{t:g}"] = confident_fraction(classifier, samples)
    model.train()
    return out


def train_by_epoch(model: nn.Module, train_data: Any, *, epochs: int, out: Path,
                   measure_fn: Callable[[nn.Module], dict[str, float]], first_epoch: int = 1,
                   **options: Any) -> Iterator[dict[str, Any]]:
    """Train ``model`` one epoch at a time and yield one row per epoch: ``measure_fn(model)`` after it.

    Each epoch is a call of :func:`models.training.train` with ``epochs=e`` that resumes from the
    checkpoint ``out`` (a ``.pt`` path), so the run equals one uninterrupted ``train`` call (its
    data order and RNG are restored) and can be stopped and continued from ``first_epoch``.
    ``options`` go to ``train`` (``test_data``, ``subset``, ``seed``, ``lr``, ...). A row holds
    ``epoch`` (the epochs done), ``seconds`` (wall time of training and measuring),
    ``train_loss``, ``lr`` and, with ``test_data``, ``test_loss`` as the trainer logged them, then
    the measurements.
    """
    from models.training import train

    for epoch in range(first_epoch, epochs + 1):
        t0 = time.perf_counter()
        result = train(model, train_data, epochs=epoch, out=out, resume=True, progress=False, **options)
        logged = {r["epoch"]: r for r in result.history}.get(result.epochs_done, {})
        row: dict[str, Any] = {"epoch": result.epochs_done}
        row.update({k: logged[k] for k in ("train_loss", "test_loss", "lr") if k in logged})
        row.update(measure_fn(model))
        row["seconds"] = time.perf_counter() - t0
        yield row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.evaluate_only and (args.out is None or not args.out.is_file()):  # before loading data
        print(f"pie_diagnosis: --evaluate-only needs --out, an existing checkpoint; got {args.out}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    train_data = load_dataset("mnist", split="train", root=args.data_root)
    test = load_dataset("mnist", split="test", root=args.data_root).subset(args.test_n, seed=args.seed)
    classifier = fit_reference_classifier(train_data, test, n_train=args.classifier_images, seed=args.seed)
    pie = args.model == "pie"
    if args.evaluate_only:
        from analyses.pie_manifold import pca_reconstruct
        from infoprobe import checkpoint

        kept = checkpoint.load(args.out)
        model = checkpoint.build_model(kept)
        row = measure(model, test, classifier, pie=kept.model_name == "pie", seed=args.seed)
        # The linear reference: as many principal components as the code has, of the training
        # images the model saw (the trainer's seeded subset).
        seen = train_data.subset(args.subset, seed=args.seed)
        with torch.no_grad():
            code_dim = model.encode(test.images[:1].to(model.device)).numel()
        pca = pca_reconstruct(seen.images, test.images, components=code_dim)
        row["pca_class_consistency"] = class_consistency(classifier, pca, test.labels)
        row["pca_recon_mse"] = float((pca.clamp(0, 1) - test.images).pow(2).mean())
        n = len(test.images)
        intervals = {}
        for key in ("class_consistency", "pca_class_consistency"):
            p = row[key]
            half = 1.96 * math.sqrt(p * (1 - p) / n)
            intervals[f"{key}_95"] = [round(p - half, 4), round(p + half, 4)]
        print(json.dumps({"evaluated": str(args.out), "test_n": n, "train_images": len(seen.images),
                          "ceiling": classifier.accuracy, **{k: round(v, 4) for k, v in row.items()},
                          **intervals}), flush=True)
        return 0
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
        rows = train_by_epoch(model, train_data, epochs=args.epochs, out=ckpt, first_epoch=args.first_epoch,
                              measure_fn=lambda m: measure(m, test, classifier, pie=pie, seed=args.seed),
                              lr=args.lr, batch_size=args.batch_size, seed=args.seed, subset=args.subset)
        for row in rows:
            row = {"tag": args.tag, **row}
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
