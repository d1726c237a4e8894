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
    python -m analyses.pie_diagnosis --data-root ../shared/data --test-n 10000 --samples runs/pie/pie_sigma0.01.pt

``--samples`` asks why a lower temperature gives fewer confidently classified samples (see
:func:`sample_diagnostics`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import models
from infoprobe.data import ImageData, load_dataset, subset_indices
from infoprobe.quality import class_consistency, confident_fraction, fit_reference_classifier

__all__ = ["ink_matched", "main", "measure", "sample_diagnostics", "train_by_epoch"]


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
                        "10000) and print one row with a 95 %% (Wilson) binomial interval of the class-consistency")
    p.add_argument("--samples", type=Path, nargs="+", default=None, metavar="CHECKPOINT",
                   help="train nothing: sample each checkpoint at --temperatures and print the sample "
                        "diagnostics (ink, confidence, nearest training images) beside ink-matched real images")
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25])
    p.add_argument("--n-samples", type=int, default=2000)
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


def _per_image(images: Tensor, classifier: Any, seen: Tensor, unseen: Tensor, unseen_labels: Tensor, *,
               k: int = 10, batch_size: int = 1000) -> dict[str, Tensor]:
    """Per image: ink (mean pixel), the reference classifier's top probability, the agreement of the
    ``k`` nearest ``unseen`` training images' labels, the distance to the nearest ``unseen`` one, and
    the distance to the nearest ``seen`` one beside that to the nearest of an equally large seeded
    subset of ``unseen`` (a copy test needs sets of one size; pixels in [0, 1], Euclidean)."""
    x = images.clamp(0, 1).flatten(1)
    equal = subset_indices(len(unseen), len(seen), seed=0)
    parts: dict[str, list[Tensor]] = {"nn_seen": [], "nn_unseen_equal": [], "nn_unseen": [], "knn_agreement": []}
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        parts["nn_seen"].append(torch.cdist(chunk, seen).min(1).values)
        distances = torch.cdist(chunk, unseen)
        parts["nn_unseen_equal"].append(distances[:, equal].min(1).values)
        dist, idx = distances.topk(k, largest=False)
        labels = unseen_labels[idx]
        parts["nn_unseen"].append(dist[:, 0])
        parts["knn_agreement"].append((labels == labels.mode(1).values[:, None]).double().mean(1))
    return {"ink": x.mean(1).double(), "top_p": classifier.predict_proba(images).max(1).values,
            **{key: torch.cat(v).double() for key, v in parts.items()}}


def _summary(values: dict[str, Tensor], weights: Tensor | None = None) -> dict[str, float]:
    w = torch.ones_like(values["ink"]) if weights is None else weights
    w = w / w.sum()

    def mean(v: Tensor) -> float:
        return round(float((w * v).sum()), 4)

    return {"ink": mean(values["ink"]), "confident": mean((values["top_p"] >= 0.9).double()),
            "knn_confident": mean((values["knn_agreement"] >= 0.9).double()),
            "nn_unseen": mean(values["nn_unseen"]), "nn_seen": mean(values["nn_seen"]),
            "nn_unseen_equal": mean(values["nn_unseen_equal"])}


def ink_matched(real_ink: Tensor, sample_ink: Tensor, *, bins: int = 10) -> Tensor:
    """Weights on the real images that give them the samples' ink distribution: both are binned on
    the real images' ink deciles (samples outside the range fall into the end bins), and each real
    image gets (samples' share of its bin) / (real images' share of it)."""
    edges = torch.quantile(real_ink, torch.linspace(0, 1, bins + 1, dtype=real_ink.dtype)[1:-1])
    real_bin, sample_bin = torch.bucketize(real_ink, edges), torch.bucketize(sample_ink, edges)
    real_share = torch.bincount(real_bin, minlength=bins).double() / len(real_ink)
    sample_share = torch.bincount(sample_bin, minlength=bins).double() / len(sample_ink)
    return (sample_share / real_share.clamp_min(1e-12))[real_bin]


@torch.no_grad()
def sample_diagnostics(model: Any, test: Any, classifier: Any, seen: Tensor, unseen: Any, *,
                       temperatures: list[float], n: int, seed: int) -> Iterator[dict[str, Any]]:
    """For each temperature T, ``n`` samples of ``model`` measured as real images are, beside the
    real test images reweighted to the samples' ink distribution (:func:`ink_matched`).

    The reference classifier is linear in the pixels, so its confidence grows with the amount of
    ink: a sample set with thinner strokes is confidently classified less often even where its
    digits are as legible. The nonlinear measures (agreement of the 10 nearest unseen training
    images' labels; distance to the nearest of them) and the ink-matched real reference separate
    the two readings. The distance to the nearest image the model was trained on, against that
    to the nearest of as many unseen ones, tests for copies of training images.
    """
    from analyses.pie_manifold import generate

    model.eval()
    real = _per_image(test.images, classifier, seen, unseen.images.flatten(1), unseen.labels)
    yield {"images": "real test", "n": len(test.images), **_summary(real)}
    for t in temperatures:
        samples = generate(model, n, temperature=t, seed=seed, batch_size=500)
        ours = _per_image(samples, classifier, seen, unseen.images.flatten(1), unseen.labels)
        matched = _summary(real, ink_matched(real["ink"], ours["ink"]))
        yield {"images": f"samples T={t:g}", "n": n, **_summary(ours),
               **{f"real_ink_matched_{key}": v for key, v in matched.items() if key != "ink"}}


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
    if args.samples:
        from infoprobe import checkpoint

        for path in args.samples:
            kept = checkpoint.load(path)
            seed = int(kept.training.get("seed", 0))
            n_seen = int((kept.dataset or {}).get("n", len(train_data)))
            chosen = subset_indices(len(train_data), n_seen, seed=seed)  # the trainer's seeded subset
            seen = train_data.images[chosen].flatten(1)
            others = torch.ones(len(train_data), dtype=torch.bool)
            others[chosen] = False
            rest = others.nonzero().squeeze(1)  # every training image the model did not see
            if len(rest) == 0:
                print(f"pie_diagnosis: {path} saw every training image; no unseen ones to compare", file=sys.stderr)
                return 2
            unseen = ImageData(train_data.images[rest], train_data.labels[rest], train_data.name,
                               train_data.split, train_data.classes, train_data.preprocessing)
            model = checkpoint.build_model(kept)
            for row in sample_diagnostics(model, test, classifier, seen, unseen, temperatures=args.temperatures,
                                          n=args.n_samples, seed=args.seed):
                print(json.dumps({"checkpoint": str(path), "train_images": n_seen, **row}), flush=True)
        return 0
    if args.evaluate_only:
        from analyses.pie_manifold import pca_reconstruct
        from infoprobe import checkpoint
        from infoprobe.quality import proportion_interval

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
        intervals = {f"{key}_95": [round(v, 4) for v in proportion_interval(round(row[key] * n), n)]
                     for key in ("class_consistency", "pca_class_consistency")}
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
