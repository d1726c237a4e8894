"""PIE manifold learning and image sharpness on MNIST (Beitler, Sosnovik & Smeulders, Sec. 5).

Trains a PIE (784 → 10) for three values of σ, the std of the Gaussian the dropped variables are
constrained to, and draws the panels of the paper's Fig. 7 to ``figures/``:

- ``pie_reconstructions.png`` (a): test images (odd rows) and their reconstructions (even rows);
- ``pie_samples.png`` (b): decoded codes z ~ N(0, I);
- ``pie_samples_reduced.png`` (c): z ~ N(0, T² I) at the reduced temperature ``--temperature``;
- ``pie_interpolations.png`` (d): decoded linear paths between the codes of two test images;
- ``pie_umap.png`` (e): UMAP of the 10-d codes of test images, coloured by digit.

Then trains the VAE and WAE baselines and a classical AE with the same 10-d code (the reference
for reconstruction), and writes the sharpness table (paper Table 1: mean variance of the
Laplace-filtered image over 10,000 images) for true MNIST test images and for 10,000 samples of
each model, with the PIE test likelihood and reconstruction error, to
``analyses/results/pie_manifold.md`` (and ``.json``).

Recognisability is read beside sharpness (``infoprobe.quality``): a logistic-regression reference
classifier fitted on 10,000 real training images gives the reconstruction class-consistency of
every model (ceiling: its accuracy on real test images) and the fraction of samples it assigns to
one class with probability ≥ 0.9. Class separation of the codes is the 10-nearest-neighbour
accuracy of their 2-d UMAP embedding (5-fold cross-validation; chance 0.1).

σ values: the paper compares three but its values did not survive in the text (one run uses
"σ = 3"). For pixels in [0, 1] we use σ ∈ {0.01, 0.1, 1}: a tight, a medium and a loose
constraint (σ = 1 makes the dropped variables as wide as the kept standard-normal code), which
spans the paper's qualitative range (tight: good reconstructions; loose: no reconstruction).

Usage (from the repository root)::

    python -m analyses.pie_manifold --data-root ../shared/data            # paper-scale recipe
    python -m analyses.pie_manifold --data-root ../shared/data --quick    # CPU, reduced scale

``--quick`` trains on a 10,000-image subset for a few epochs; the scale used is written next to
every number. Uses only the public API: ``models.build``, ``models.training.train``,
``infoprobe.load_dataset``, ``infoprobe.quality``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

import models
from infoprobe.data import ImageData, load_dataset
from infoprobe.quality import (
    ReferenceClassifier,
    class_consistency,
    confident_fraction,
    fit_reference_classifier,
    sharpness,
)
from models.pie import PIE

ROOT = Path(__file__).resolve().parents[1]
SIGMAS = (0.01, 0.1, 1.0)
N_SHARPNESS = 10_000

M = TypeVar("M", bound=nn.Module)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="folder with MNIST (default: $INFOPROBE_DATA)")
    p.add_argument("--quick", action="store_true", help="reduced scale for a CPU: subset, few epochs")
    p.add_argument("--sigmas", type=float, nargs=3, default=SIGMAS, help="three σ values")
    p.add_argument("--temperature", type=float, default=0.5, help="reduced sampling temperature")
    p.add_argument("--epochs", type=int, default=None, help="PIE epochs (default: recipe, or 3 with --quick)")
    p.add_argument("--baseline-epochs", type=int, default=None, help="VAE/WAE epochs (default: recipe, or 3 with --quick)")
    p.add_argument("--subset", type=int, default=None, help="training images (default: all, or 10000 with --quick)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="test images the trainer evaluates each epoch (default: all, 2000 with --quick)")
    p.add_argument("--umap-points", type=int, default=None, help="test codes embedded (default 10000, 2000 with --quick)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", type=Path, default=None, help="where to keep trained models (default: none kept)")
    p.add_argument("--resume", action="store_true",
                   help="continue each model from its checkpoint in --checkpoints (finished ones are reused)")
    p.add_argument("--figures", type=Path, default=ROOT / "figures")
    p.add_argument("--results", type=Path, default=ROOT / "analyses" / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 3 if args.epochs is None else args.epochs
        args.baseline_epochs = 3 if args.baseline_epochs is None else args.baseline_epochs
        args.subset = 10_000 if args.subset is None else args.subset
        args.umap_points = 2_000 if args.umap_points is None else args.umap_points
        args.test_subset = 2_000 if args.test_subset is None else args.test_subset
    args.umap_points = 10_000 if args.umap_points is None else args.umap_points
    return args


# --- training ---------------------------------------------------------------------------------


def fit(name: str, model: M, train_data: ImageData, test_data: ImageData, *,
        epochs: int | None, args: argparse.Namespace, tag: str) -> tuple[M, float]:
    """Train ``model`` with the zoo's trainer; returns it (in eval mode) and the wall time in s."""
    from models.training import train

    out = args.checkpoints / f"{tag}.pt" if args.checkpoints is not None else None
    start = time.perf_counter()
    print(f"[pie_manifold] training {tag} ({name}) ...", flush=True)
    train(model, train_data, test_data=test_data, epochs=epochs, device=args.device,
          seed=args.seed, subset=args.subset, test_subset=args.test_subset, out=out, resume=args.resume, progress=False)
    model.eval()
    return model, time.perf_counter() - start


@torch.no_grad()
def batched(fn: Any, x: Tensor, *, device: torch.device, batch_size: int = 500) -> Tensor:
    return torch.cat([fn(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def generate(model: nn.Module, n: int, *, temperature: float = 1.0, seed: int,
             batch_size: int = 1000) -> Tensor:
    """``n`` images ``model.sample(k, temperature=T)`` (PIE, VAE and WAE all decode z ~ N(0, T² I))."""
    g = torch.Generator(device=model.device).manual_seed(seed)  # type: ignore[arg-type]
    chunks = [model.sample(min(batch_size, n - i), temperature=temperature, generator=g).cpu()  # type: ignore[operator]
              for i in range(0, n, batch_size)]
    return torch.cat(chunks)


@torch.no_grad()
def pie_test_metrics(model: PIE, test_data: ImageData) -> dict[str, float]:
    """Test NLL (nats/dim, dequantised) and reconstruction MSE / per-pixel for all test images."""
    device = model.device
    torch.manual_seed(0)
    totals: dict[str, float] = {}
    n = len(test_data)
    for i in range(0, n, 500):
        x = test_data.images[i:i + 500].to(device)
        terms = model.loss(x)
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(x)
        mse = (model.reconstruct(x).clamp(0, 1) - x).pow(2).mean().item()
        totals["recon_mse"] = totals.get("recon_mse", 0.0) + mse * len(x)
    return {k: v / n for k, v in totals.items()}


# --- figures -----------------------------------------------------------------------------------


def tile(images: Tensor, ncol: int) -> np.ndarray:
    """Tile ``N×1×H×W`` images into one grey array, ``ncol`` per row, 1-pixel white borders."""
    images = images.clamp(0, 1)[:, 0]
    n, h, w = images.shape
    nrow = -(-n // ncol)
    canvas = np.ones((nrow * (h + 1) + 1, ncol * (w + 1) + 1), dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncol)
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = images[k].numpy()
    return canvas


def image_panels(grids: dict[float, np.ndarray], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = next(iter(grids.values())).shape
    fig, axes = plt.subplots(1, len(grids), figsize=(4 * len(grids), 4 * h / w + 0.8))
    for ax, (sigma, grid) in zip(axes, grids.items(), strict=True):
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"σ = {sigma:g}")
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0) -> float:
    """5-fold cross-validated accuracy of a k-nearest-neighbour classifier on ``embedding``."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = KFold(n_splits=5, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), embedding, labels, cv=folds).mean())


def umap_panels(codes: dict[float, Tensor], labels: Tensor, path: Path, *, seed: int) -> dict[float, float]:
    """Draw the UMAP panels; returns the kNN accuracy of each 2-d embedding (class separation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    fig, axes = plt.subplots(1, len(codes), figsize=(4.5 * len(codes), 4.5))
    separation: dict[float, float] = {}
    for ax, (sigma, z) in zip(axes, codes.items(), strict=True):
        emb = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(z.numpy())
        separation[sigma] = knn_accuracy(emb, labels.numpy(), seed=seed)
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=labels.numpy(), cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
        ax.set_title(f"σ = {sigma:g} (10-NN acc. {separation[sigma]:.2f})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
    fig.suptitle("UMAP of the 10-d PIE codes of MNIST test images")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return separation


def recon_consistency(model: nn.Module, data: ImageData, classifier: ReferenceClassifier) -> float:
    """Reconstruction class-consistency of ``model`` on ``data`` (see ``infoprobe.quality``)."""
    recon = batched(model.reconstruct, data.images, device=model.device)  # type: ignore[operator, arg-type]
    return class_consistency(classifier, recon, data.labels)


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    command = "python -m analyses.pie_manifold " + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(args.seed)
    train_data = load_dataset("mnist", split="train", root=args.data_root)
    test_data = load_dataset("mnist", split="test", root=args.data_root)
    args.figures.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.checkpoints is not None:
        args.checkpoints.mkdir(parents=True, exist_ok=True)

    classifier = fit_reference_classifier(train_data, test_data, seed=args.seed)
    shown = test_data.images[:16]
    pairs = test_data.images[16:22], test_data.images[22:28]
    umap_x = test_data.subset(args.umap_points, seed=args.seed)
    pies: dict[float, PIE] = {}
    report: dict[str, Any] = {"command": command, "pie": {}, "sharpness": {}, "timing_s": {},
                              "classifier": {"accuracy": classifier.accuracy, "n_train": classifier.n_train},
                              "class_consistency": {}, "confident": {}, "umap_knn_accuracy": {}}
    recon: dict[float, np.ndarray] = {}
    samples: dict[float, np.ndarray] = {}
    reduced: dict[float, np.ndarray] = {}
    paths: dict[float, np.ndarray] = {}
    codes: dict[float, Tensor] = {}
    for sigma in args.sigmas:
        model = cast(PIE, models.build("pie", dataset="mnist", sigma=sigma))
        model, seconds = fit("pie", model, train_data, test_data, epochs=args.epochs, args=args,
                             tag=f"pie_sigma{sigma:g}")
        pies[sigma] = model
        report["timing_s"][f"pie σ={sigma:g}"] = round(seconds, 1)
        report["pie"][f"{sigma:g}"] = pie_test_metrics(model, test_data)
        report["class_consistency"][f"PIE σ={sigma:g}"] = recon_consistency(model, umap_x, classifier)
        device = model.device
        with torch.no_grad():
            rec = model.reconstruct(shown.to(device)).cpu()
            recon[sigma] = tile(torch.stack([shown[:8], rec[:8], shown[8:], rec[8:]]).flatten(0, 1), 8)
            samples[sigma] = tile(generate(model, 64, seed=args.seed), 8)
            reduced[sigma] = tile(generate(model, 64, temperature=args.temperature, seed=args.seed), 8)
            path = model.interpolate(pairs[0].to(device), pairs[1].to(device), steps=10).cpu()
            paths[sigma] = tile(path.flatten(0, 1), 10)
            codes[sigma] = batched(model.encode, umap_x.images, device=device)

    f = args.figures
    image_panels(recon, "(a) reconstructions: test images and their reconstructions (alternate rows)",
                 f / "pie_reconstructions.png")
    image_panels(samples, "(b) samples, z ~ N(0, I)", f / "pie_samples.png")
    image_panels(reduced, f"(c) samples at reduced temperature, z ~ N(0, {args.temperature:g}² I)",
                 f / "pie_samples_reduced.png")
    image_panels(paths, "(d) interpolations between the codes of two test images",
                 f / "pie_interpolations.png")
    separation = umap_panels(codes, umap_x.labels, f / "pie_umap.png", seed=args.seed)
    report["umap_knn_accuracy"] = {f"{s:g}": v for s, v in separation.items()}

    true_images = test_data.images[:N_SHARPNESS]
    rows: list[tuple[str, float, float]] = [
        ("True (MNIST test images)", sharpness(true_images), confident_fraction(classifier, true_images))
    ]
    for name in ("vae", "wae"):
        baseline, seconds = fit(name, models.build(name, dataset="mnist"), train_data, test_data,
                                epochs=args.baseline_epochs, args=args, tag=name)
        report["timing_s"][name] = round(seconds, 1)
        report["class_consistency"][name.upper()] = recon_consistency(baseline, umap_x, classifier)
        images = generate(baseline, N_SHARPNESS, seed=args.seed).clamp(0, 1)
        rows.append((name.upper(), sharpness(images), confident_fraction(classifier, images)))
    reference, seconds = fit("classical-ae", models.build("classical-ae", dataset="mnist", bottleneck=10),
                             train_data, test_data, epochs=args.baseline_epochs, args=args, tag="classical_ae10")
    report["timing_s"]["classical-ae (10-d)"] = round(seconds, 1)
    report["class_consistency"]["classical AE (10-d code)"] = recon_consistency(reference, umap_x, classifier)
    for sigma, pie in pies.items():
        for t in (1.0, args.temperature):
            images = generate(pie, N_SHARPNESS, temperature=t, seed=args.seed).clamp(0, 1)
            rows.append((f"PIE σ={sigma:g}, T={t:g}", sharpness(images), confident_fraction(classifier, images)))
    report["sharpness"] = {name: value for name, value, _ in rows}
    report["confident"] = {name: value for name, _, value in rows}
    report["timing_s"]["total run"] = round(time.perf_counter() - started, 1)
    write_report(args, report, rows)
    return 0


def write_report(args: argparse.Namespace, report: dict[str, Any], rows: list[tuple[str, float, float]]) -> None:
    scale = (f"training images: {args.subset or 60_000} of 60,000 MNIST train; PIE epochs: "
             f"{args.epochs or 'recipe default'}; VAE/WAE epochs: {args.baseline_epochs or 'recipe default'}; "
             f"per-epoch test evaluation on {args.test_subset or 10_000} images; "
             f"device: {args.device}; seed {args.seed}; UMAP on {args.umap_points} test codes; "
             f"sharpness over {N_SHARPNESS:,} images per row")
    report["scale"] = scale
    report["quick"] = bool(args.quick)
    lines = [
        "# PIE on MNIST: manifold learning (Fig. 7) and image sharpness (Table 1)",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Scale: {'REDUCED (--quick); ' if args.quick else ''}{scale}.",
        "",
        "## Sharpness",
        "",
        "Mean over images of the variance of the Laplace-filtered image "
        "(`infoprobe.quality.sharpness`, pixels in [0, 1], generated images clipped to [0, 1]). "
        "Larger is sharper. Confident: fraction of the images the reference classifier assigns "
        "to one class with probability ≥ 0.9 (`infoprobe.quality.confident_fraction`; a crude "
        "proxy for \"looks like some digit\", to be read with sharpness).",
        "",
        "| images | sharpness | confident (p ≥ 0.9) |",
        "|---|---|---|",
        *[f"| {name} | {value:.5f} | {conf:.3f} |" for name, value, conf in rows],
        "",
        "## Recognisability of reconstructions",
        "",
        f"Reference classifier: logistic regression on {report['classifier']['n_train']:,} real "
        f"training images; accuracy on the 10,000 real test images {report['classifier']['accuracy']:.3f} "
        "(the ceiling). Class-consistency: fraction of reconstructions of "
        f"{args.umap_points} test images classified as the source image's label "
        "(`infoprobe.quality.class_consistency`).",
        "",
        "| model | class-consistency |",
        "|---|---|",
        *[f"| {name} | {value:.3f} |" for name, value in report["class_consistency"].items()],
        "",
        "Class separation of the PIE codes: 10-NN accuracy of the 2-d UMAP embedding (5-fold CV, "
        "chance 0.1): " + ", ".join(f"σ={s}: {v:.3f}" for s, v in report["umap_knn_accuracy"].items()) + ".",
        "",
        "## PIE on the MNIST test set",
        "",
        "NLL: −log p of dequantised images, nats per pixel (σ-relaxed likelihood, Eq. 13/17; its "
        "residual term contains −log σ per dropped variable, so values are comparable only at "
        "equal σ). Reconstruction MSE per pixel, decoding with every dropped part at 0.",
        "",
        "| σ | NLL (nats/dim) | NLL latent | NLL residual | log-det | residual RMS | recon MSE |",
        "|---|---|---|---|---|---|---|",
        *[f"| {s} | {m['loss']:.3f} | {m['nll_latent']:.3f} | {m['nll_residual']:.3f} | "
          f"{m['logdet']:.3f} | {m['residual_rms']:.4f} | {m['recon_mse']:.4f} |"
          for s, m in report["pie"].items()],
        "",
        "Wall time (s): " + ", ".join(f"{k}: {v}" for k, v in report["timing_s"].items()),
        "",
        "Figures: `figures/pie_reconstructions.png`, `figures/pie_samples.png`, "
        "`figures/pie_samples_reduced.png`, `figures/pie_interpolations.png`, `figures/pie_umap.png`.",
        "",
    ]
    (args.results / "pie_manifold.md").write_text("\n".join(lines), encoding="utf-8")
    (args.results / "pie_manifold.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
