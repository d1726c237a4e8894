"""PIE manifold learning and image sharpness on MNIST (Beitler, Sosnovik & Smeulders, Sec. 5).

Trains a PIE (784 → 10) for three values of σ, the std of the Gaussian the dropped variables are
constrained to, and draws the panels of the paper's Fig. 7 to ``figures/``:

- ``pie_reconstructions.png`` (a): test images (odd rows) and their reconstructions (even rows);
- ``pie_samples.png`` (b): decoded codes z ~ N(0, I);
- ``pie_samples_reduced.png`` (c): z ~ N(0, T² I) at the reduced temperature ``--temperature``;
- ``pie_interpolations.png`` (d): decoded linear paths between the codes of two test images;
- ``pie_umap.png`` (e): UMAP of the 10-d codes of test images, coloured by digit.

Then trains the VAE and WAE baselines and a classical AE with the same 10-d code (the reference
for reconstruction), projects the test images on the top 10 principal components of the
training images (the linear reference: what a linear 10-d code keeps), and writes the sharpness table (paper Table 1: mean variance of the
Laplace-filtered image over 10,000 images) for true MNIST test images and for 10,000 samples of
each model, with the PIE test likelihood and reconstruction error, to
``analyses/results/pie_manifold.md`` (and ``.json``).

Recognisability is read beside sharpness (``infoprobe.quality``): a logistic-regression reference
classifier fitted on 10,000 real training images gives the reconstruction class-consistency of
every model (ceiling: its accuracy on real test images) and the fraction of samples it assigns to
one class with probability ≥ 0.9. Class separation of the codes is the 10-nearest-neighbour
accuracy of their 2-d UMAP embedding (5-fold cross-validation; chance 0.1).

Learning curves. Every model is trained one epoch at a time
(:func:`analyses.pie_diagnosis.train_by_epoch`); after each epoch its test loss and the
class-consistency of its test reconstructions are recorded (``<tag>.curve.jsonl`` beside the
checkpoint, the JSON's ``training``, ``figures/pie_learning_curves.png``), and :func:`plateau`
states from the curve whether it has flattened. The Markdown page is re-rendered from the
numbers; text below ``DISCUSSION_MARK`` (the hand-written readings) is kept.

σ values: the paper compares three but its values did not survive in the text (one run uses
"σ = 3"). For pixels in [0, 1] we use σ ∈ {0.01, 0.1, 1}: a tight, a medium and a loose
constraint (σ = 1 makes the dropped variables as wide as the kept standard-normal code), which
spans the paper's qualitative range (tight: good reconstructions; loose: no reconstruction).

Usage (from the repository root)::

    python -m analyses.pie_manifold --data-root ../shared/data            # paper-scale recipe
    python -m analyses.pie_manifold --data-root ../shared/data --quick    # CPU, reduced scale
    python -m analyses.pie_manifold --data-root ../shared/data --quick --epochs 30 30 8 \\
        --checkpoints runs/pie --resume                                    # epochs per σ; resumable

``--quick`` trains on a 10,000-image subset for a few epochs; the scale used is written next to
every number. Uses only the public API: ``models.build``, ``models.training.train``,
``infoprobe.load_dataset``, ``infoprobe.quality``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

import models
from analyses.callahan2021 import write_page
from analyses.pie_diagnosis import measure, train_by_epoch
from infoprobe import checkpoint
from infoprobe.data import ImageData, load_dataset
from infoprobe.device import resolve_device
from infoprobe.errors import InfoprobeError
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
PCA_COMPONENTS = 10  # the size of PIE's code on MNIST (linear_dims[-1])
PLATEAU_FRACTION = 0.2  # the late window: the last 20 % of the epochs
PLATEAU_TOLERANCE = 0.05  # plateau: at most 5 % of the net change made in that window
PLATEAU_NOISE_Z = 2.0  # ... or a late trend less than 2 standard errors from flat (noise, not progress)

__all__ = ["curve_row", "fit", "main", "plateau", "run"]

M = TypeVar("M", bound=nn.Module)
BASELINE_TAGS = ("vae", "wae", "classical_ae10")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="folder with MNIST (default: $INFOPROBE_DATA)")
    p.add_argument("--quick", action="store_true", help="reduced scale for a CPU: subset, few epochs")
    p.add_argument("--sigmas", type=float, nargs=3, default=SIGMAS, help="three σ values")
    p.add_argument("--temperature", type=float, default=0.5, help="reduced sampling temperature")
    p.add_argument("--epochs", type=int, nargs="+", default=None,
                   help="PIE epochs: one value, or one per σ (default: recipe, or 3 with --quick)")
    p.add_argument("--baseline-epochs", type=int, default=None, help="VAE/WAE epochs (default: recipe, or 3 with --quick)")
    p.add_argument("--reference-epochs", type=int, default=None,
                   help="epochs of the classical AE with a 10-d code (default: its recipe, or --baseline-epochs with --quick)")
    p.add_argument("--subset", type=int, default=None, help="training images (default: all, or 10000 with --quick)")
    p.add_argument("--test-subset", type=int, default=None,
                   help="test images the trainer evaluates each epoch (default: all, 2000 with --quick)")
    p.add_argument("--umap-seeds", type=int, default=3,
                   help="UMAP embeddings per σ (seeds --seed, --seed + 1, ...) for the spread of the kNN accuracy")
    p.add_argument("--umap-points", type=int, default=None, help="test codes embedded (default 10000, 2000 with --quick)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", type=Path, default=None, help="where to keep trained models (default: none kept)")
    p.add_argument("--resume", action="store_true",
                   help="continue each model from its checkpoint in --checkpoints (finished ones are reused)")
    p.add_argument("--lr-drop", action="append", default=[], metavar="TAG=EPOCH",
                   help="lower one model's lr tenfold after that epoch (MultiStepLR milestone); TAG is its "
                        f"checkpoint name: pie_sigma<σ>, {', '.join(BASELINE_TAGS)}; applies on --resume too")
    p.add_argument("--figures", type=Path, default=ROOT / "figures")
    p.add_argument("--results", type=Path, default=ROOT / "analyses" / "results")
    args = p.parse_args(argv)
    tags = (*(f"pie_sigma{s:g}" for s in args.sigmas), *BASELINE_TAGS)
    args.lr_drops = {}
    for item in args.lr_drop:
        tag, _, epoch = item.partition("=")
        if tag not in tags or not epoch.isdigit():
            p.error(f"--lr-drop expects TAG=EPOCH with TAG one of {', '.join(tags)}, got {item!r}")
        args.lr_drops[tag] = int(epoch)
    if args.quick:
        args.epochs = [3] if args.epochs is None else args.epochs
        args.baseline_epochs = 3 if args.baseline_epochs is None else args.baseline_epochs
        args.reference_epochs = args.baseline_epochs if args.reference_epochs is None else args.reference_epochs
        args.subset = 10_000 if args.subset is None else args.subset
        args.umap_points = 2_000 if args.umap_points is None else args.umap_points
        args.test_subset = 2_000 if args.test_subset is None else args.test_subset
    args.umap_points = 10_000 if args.umap_points is None else args.umap_points
    epochs = [None] if args.epochs is None else args.epochs
    if len(epochs) not in (1, len(args.sigmas)):
        p.error(f"--epochs takes one value or one per σ ({len(args.sigmas)}), got {len(epochs)}")
    args.pie_epochs = dict(zip(args.sigmas, epochs * len(args.sigmas) if len(epochs) == 1 else epochs, strict=True))
    return args


# --- training ---------------------------------------------------------------------------------


def fit(name: str, model: M, train_data: ImageData, test_data: ImageData, *, epochs: int | None,
        args: argparse.Namespace, tag: str, folder: Path, classifier: ReferenceClassifier,
        curve_data: ImageData) -> tuple[M, dict[str, Any]]:
    """Train ``model`` with the zoo's trainer, one epoch at a time, measuring after each epoch.

    The learning curve has one row per epoch: the trainer's train and test loss (on the
    ``--test-subset`` images) and the reconstruction MSE and class-consistency on ``curve_data``
    (:func:`analyses.pie_diagnosis.measure`). Checkpoint ``<tag>.pt`` and curve
    ``<tag>.curve.jsonl`` live in ``folder``; with ``--resume`` both are continued. Returns the
    model (in eval mode) and its training record: epochs, batch size, optimizer steps, seconds
    (summed over the curve, so it spans resumed invocations), the curve and its plateau readings.
    """
    from models.training import resolve_recipe

    drop = args.lr_drops.get(tag)
    milestones, gamma = (None, None) if drop is None else ([drop], 0.1)
    recipe = resolve_recipe(model, {"epochs": epochs, "milestones": milestones, "gamma": gamma})
    out, curve_path = folder / f"{tag}.pt", folder / f"{tag}.curve.jsonl"
    curve: list[dict[str, Any]] = []
    if args.resume and curve_path.is_file() and out.is_file():
        curve = [json.loads(line) for line in curve_path.read_text().splitlines() if line.strip()]
    else:
        out.unlink(missing_ok=True)
        curve_path.write_text("")
    print(f"[pie_manifold] training {tag} ({name}) to {recipe['epochs']} epochs, from epoch {len(curve) + 1} ...",
          flush=True)
    rows = train_by_epoch(model, train_data, epochs=recipe["epochs"], out=out, first_epoch=len(curve) + 1,
                          measure_fn=lambda m: measure(m, curve_data, classifier, pie=False, seed=args.seed),
                          test_data=test_data, device=args.device, seed=args.seed, subset=args.subset,
                          test_subset=args.test_subset, milestones=milestones, gamma=gamma)
    if len(curve) >= recipe["epochs"]:  # nothing left to train: the weights come from the checkpoint
        model.load_state_dict(checkpoint.load(out).state_dict)
        model.to(resolve_device(args.device))
    for row in rows:
        if curve and row["epoch"] <= curve[-1]["epoch"]:
            continue
        curve.append(row)
        with curve_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"[pie_manifold] {tag} epoch {row['epoch']}: test loss {row.get('test_loss', float('nan')):.4g}, "
              f"class-consistency {row['class_consistency']:.3f}, {row['seconds']:.0f} s", flush=True)
    model.eval()
    used = checkpoint.load(out).training.get("recipe", recipe) if out.is_file() else recipe
    n_train = min(args.subset or len(train_data), len(train_data))
    record: dict[str, Any] = {
        # the schedule the checkpoint was trained with (a drop given once stays when --resume omits it)
        **{key: used.get(key) for key in ("lr", "milestones", "gamma")},
        "epochs": len(curve), "batch_size": recipe["batch_size"],
        "steps": len(curve) * -(-n_train // recipe["batch_size"]),
        "seconds": round(sum(r["seconds"] for r in curve), 1), "curve": curve,
        "plateau": {key: plateau([r[key] for r in curve]) for key in ("test_loss", "class_consistency")
                    if len(curve) >= 3 and all(key in r for r in curve)},
    }
    return model, record


def plateau(values: Sequence[float], *, fraction: float = PLATEAU_FRACTION,
            tolerance: float = PLATEAU_TOLERANCE, noise_z: float = PLATEAU_NOISE_Z) -> dict[str, Any]:
    """Whether a learning curve has flattened: the share of its net change made at its end,
    read against the curve's own epoch-to-epoch noise.

    ``values`` holds one metric per epoch (a loss or an accuracy: the direction does not matter).
    The late window is the last ``w = max(1, round(fraction · (n − 1)))`` epoch-to-epoch steps;
    ``late_share = (v[-1] − v[-1-w]) / (v[-1] − v[0])`` is the part of the net change from the
    first to the last epoch made in that window (``fraction`` for a straight line, near 0 for a
    flattened curve, negative when the end moves back). A curve with no net change has
    ``late_share`` 0 (NaN if its end still moves).

    A noisy curve can make a large late share out of noise alone, so the late trend is also
    tested: a least-squares line through the last ``max(5, w + 1)`` epochs (all, if fewer), whose
    slope counts as progress only when it lies ``noise_z`` standard errors or more from 0 in the
    direction of the net change (``late_t``; needs 4 or more epochs). ``plateau`` is true when
    ``late_share ≤ tolerance`` or the late trend is within the noise; ``reason`` says which.
    """
    v = [float(x) for x in values]
    if len(v) < 3 or not all(np.isfinite(v)):
        raise InfoprobeError(f"A plateau needs a finite curve of at least 3 epochs, got {v}; train longer.")
    if not 0.0 < fraction < 1.0:
        raise InfoprobeError(f"fraction must be in (0, 1), got {fraction}.")
    w = max(1, round(fraction * (len(v) - 1)))
    net, late = v[-1] - v[0], v[-1] - v[-1 - w]
    share = late / net if net != 0 else (0.0 if late == 0 else float("nan"))
    m = min(len(v), max(5, w + 1))
    t = float("nan")
    if m >= 4:
        x, y = np.arange(m, dtype=float), np.asarray(v[-m:])
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        se = math.sqrt(float(resid @ resid) / (m - 2) / float(((x - x.mean()) ** 2).sum()))
        t = slope / se if se > 0 else (0.0 if slope == 0 else math.copysign(math.inf, slope))
        t = t * (1.0 if net >= 0 else -1.0)  # positive: moving the way the curve has moved overall
    if share <= tolerance:
        reason = "late share within tolerance"
    elif not math.isnan(t) and t < noise_z:
        reason = "late trend within noise"
    else:
        reason = "still changing"
    return {"epochs": len(v), "window": w, "net_change": net, "late_change": late, "late_share": share,
            "tolerance": tolerance, "late_points": m, "late_t": t, "noise_z": noise_z,
            "plateau": reason != "still changing", "reason": reason}


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


def umap_panels(codes: dict[float, Tensor], labels: Tensor, path: Path, *, seed: int,
                repeats: int = 3) -> dict[float, dict[str, Any]]:
    """Draw the UMAP panels (the embedding with ``seed``) and measure class separation per σ.

    Returns, per σ, the 10-NN accuracy of the 2-d embedding for UMAP seeds ``seed``,
    ``seed + 1``, ... (``umap``: one per repeat, so that a difference between σ can be read
    against UMAP's own seed-to-seed spread) and of the 10-d codes themselves (``codes``: no
    embedding, no UMAP randomness).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    fig, axes = plt.subplots(1, len(codes), figsize=(4.5 * len(codes), 4.5))
    separation: dict[float, dict[str, Any]] = {}
    for ax, (sigma, z) in zip(axes, codes.items(), strict=True):
        embeddings = [umap.UMAP(n_components=2, random_state=seed + r, n_jobs=1).fit_transform(z.numpy())
                      for r in range(repeats)]
        accuracies = [knn_accuracy(emb, labels.numpy(), seed=seed) for emb in embeddings]
        separation[sigma] = {"umap": accuracies, "codes": knn_accuracy(z.numpy(), labels.numpy(), seed=seed)}
        first = embeddings[0]  # the panel shows the embedding with ``seed``
        sc = ax.scatter(first[:, 0], first[:, 1], c=labels.numpy(), cmap="tab10", s=2, vmin=-0.5, vmax=9.5)
        ax.set_title(f"σ = {sigma:g} (10-NN acc. {accuracies[0]:.2f})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
    fig.suptitle("UMAP of the 10-d PIE codes of MNIST test images")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return separation


def curve_panels(training: dict[str, dict[str, Any]], ceiling: float, path: Path) -> None:
    """Learning curves: each model's test loss (own units, own panel) and all class-consistencies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(training)
    layout: list[Any] = [names, ["cc"] * len(names)]
    fig, axes = plt.subplot_mosaic(layout, figsize=(2.6 * len(names), 6.5),
                                   height_ratios=[1, 1.3])
    for name in names:
        curve = training[name]["curve"]
        epochs = [r["epoch"] for r in curve]
        axes[name].plot(epochs, [r.get("test_loss", float("nan")) for r in curve], marker=".")
        axes[name].set_title(name, fontsize=9)
        axes[name].set_xlabel("epoch", fontsize=8)
        axes[name].tick_params(labelsize=7)
        axes["cc"].plot(epochs, [r["class_consistency"] for r in curve], marker=".", label=name)
    axes[names[0]].set_ylabel("test loss\n(model's own units)", fontsize=8)
    axes["cc"].axhline(ceiling, color="k", ls="--", lw=1, label=f"ceiling (classifier acc. {ceiling:.3f})")
    axes["cc"].axhline(0.8, color="grey", ls=":", lw=1, label="goal 0.80")
    axes["cc"].set_xlabel("epoch")
    axes["cc"].set_ylabel("reconstruction class-consistency")
    axes["cc"].set_ylim(0, 1)
    axes["cc"].legend(fontsize=8, ncol=2, loc="lower right")
    fig.suptitle("Learning curves (per-epoch test loss; class-consistency of test reconstructions)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def recon_consistency(model: nn.Module, data: ImageData, classifier: ReferenceClassifier) -> float:
    """Reconstruction class-consistency of ``model`` on ``data`` (see ``infoprobe.quality``)."""
    recon = batched(model.reconstruct, data.images, device=model.device)  # type: ignore[operator, arg-type]
    return class_consistency(classifier, recon, data.labels)


def pca_reconstruct(train_images: Tensor, images: Tensor, *, components: int) -> Tensor:
    """``images`` projected onto the top ``components`` principal axes of ``train_images`` and back.

    The linear reference for a 10-d code: what a code keeps beyond it is what the nonlinearity
    buys (``pie_manifold.md``: PIE σ = 0.01 matches its class-consistency, not its subspace).
    """
    x = train_images.flatten(1).double()
    mean = x.mean(0)
    basis = torch.linalg.svd(x - mean, full_matrices=False).Vh[:components]
    y = images.flatten(1).double() - mean
    return ((y @ basis.T) @ basis + mean).reshape(images.shape).float()


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.checkpoints is not None:
        args.checkpoints.mkdir(parents=True, exist_ok=True)
        return run(args, args.checkpoints, argv)
    with tempfile.TemporaryDirectory() as tmp:
        return run(args, Path(tmp), argv)


def run(args: argparse.Namespace, folder: Path, argv: list[str] | None) -> int:
    """Train every model (checkpoints and curves in ``folder``), draw the figures, write the report."""
    started = time.perf_counter()
    command = "python -m analyses.pie_manifold " + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(args.seed)
    train_data = load_dataset("mnist", split="train", root=args.data_root)
    test_data = load_dataset("mnist", split="test", root=args.data_root)
    args.figures.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)

    classifier = fit_reference_classifier(train_data, test_data, seed=args.seed)
    curve_data = test_data.subset(args.test_subset or len(test_data), seed=args.seed)
    shown = test_data.images[:16]
    pairs = test_data.images[16:22], test_data.images[22:28]
    umap_x = test_data.subset(args.umap_points, seed=args.seed)
    pies: dict[float, PIE] = {}
    report: dict[str, Any] = {"command": command, "pie": {}, "sharpness": {}, "timing_s": {},
                              "classifier": {"accuracy": classifier.accuracy, "n_train": classifier.n_train},
                              "class_consistency": {}, "confident": {}, "umap_knn_accuracy": {}, "training": {}}
    recon: dict[float, np.ndarray] = {}
    samples: dict[float, np.ndarray] = {}
    reduced: dict[float, np.ndarray] = {}
    paths: dict[float, np.ndarray] = {}
    codes: dict[float, Tensor] = {}
    common: dict[str, Any] = {"args": args, "folder": folder, "classifier": classifier, "curve_data": curve_data}
    for sigma in args.sigmas:
        name = f"PIE σ={sigma:g}"
        model = cast(PIE, models.build("pie", dataset="mnist", sigma=sigma))
        model, report["training"][name] = fit("pie", model, train_data, test_data, epochs=args.pie_epochs[sigma],
                                              tag=f"pie_sigma{sigma:g}", **common)
        pies[sigma] = model
        report["pie"][f"{sigma:g}"] = pie_test_metrics(model, test_data)
        report["class_consistency"][name] = recon_consistency(model, umap_x, classifier)
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
    separation = umap_panels(codes, umap_x.labels, f / "pie_umap.png", seed=args.seed, repeats=args.umap_seeds)
    report["umap_knn_accuracy"] = {f"{s:g}": v["umap"][0] for s, v in separation.items()}
    report["umap_knn_accuracy_seeds"] = {f"{s:g}": v["umap"] for s, v in separation.items()}
    report["code_knn_accuracy"] = {f"{s:g}": v["codes"] for s, v in separation.items()}

    true_images = test_data.images[:N_SHARPNESS]
    rows: list[tuple[str, float, float]] = [
        ("True (MNIST test images)", sharpness(true_images), confident_fraction(classifier, true_images))
    ]
    for kind in ("vae", "wae"):
        baseline, report["training"][kind.upper()] = fit(
            kind, models.build(kind, dataset="mnist"), train_data, test_data, epochs=args.baseline_epochs,
            tag=kind, **common)
        report["class_consistency"][kind.upper()] = recon_consistency(baseline, umap_x, classifier)
        images = generate(baseline, N_SHARPNESS, seed=args.seed).clamp(0, 1)
        rows.append((kind.upper(), sharpness(images), confident_fraction(classifier, images)))
    name = "classical AE (10-d code)"
    reference, report["training"][name] = fit(
        "classical-ae", models.build("classical-ae", dataset="mnist", bottleneck=10), train_data, test_data,
        epochs=args.reference_epochs, tag="classical_ae10", **common)
    report["class_consistency"][name] = recon_consistency(reference, umap_x, classifier)
    name = f"PCA, {PCA_COMPONENTS} components (linear)"
    seen = train_data.images if args.subset is None else train_data.subset(args.subset, seed=args.seed).images
    # one projection (one SVD) for the table's images and the whole test set
    both = pca_reconstruct(seen, torch.cat([umap_x.images, test_data.images]), components=PCA_COMPONENTS)
    report["class_consistency"][name] = class_consistency(classifier, both[:len(umap_x)], umap_x.labels)
    report["pca"] = {"components": PCA_COMPONENTS, "train_images": len(seen),
                     "recon_mse": float((both[len(umap_x):].clamp(0, 1) - test_data.images).pow(2).mean())}
    for sigma, pie in pies.items():
        for t in (1.0, args.temperature):
            images = generate(pie, N_SHARPNESS, temperature=t, seed=args.seed).clamp(0, 1)
            rows.append((f"PIE σ={sigma:g}, T={t:g}", sharpness(images), confident_fraction(classifier, images)))
    curve_panels(report["training"], classifier.accuracy, f / "pie_learning_curves.png")
    report["sharpness"] = {name: value for name, value, _ in rows}
    report["confident"] = {name: value for name, _, value in rows}
    report["timing_s"] = {name: rec["seconds"] for name, rec in report["training"].items()}
    report["timing_s"]["this invocation"] = round(time.perf_counter() - started, 1)
    write_report(args, report, rows)
    return 0


def write_report(args: argparse.Namespace, report: dict[str, Any], rows: list[tuple[str, float, float]]) -> None:
    pie_epochs = ", ".join(f"σ={s:g}: {e or 'recipe default'}" for s, e in args.pie_epochs.items())
    scale = (f"training images: {args.subset or 60_000} of 60,000 MNIST train; PIE epochs: {pie_epochs}; "
             f"VAE/WAE epochs: {args.baseline_epochs or 'recipe default'}; classical AE epochs: "
             f"{args.reference_epochs or 'recipe default'}; "
             + "".join(f"{name}: lr {rec['lr']:g} × {rec['gamma']:g} after epoch {', '.join(map(str, rec['milestones']))}; "
                       for name, rec in report["training"].items() if rec.get("milestones"))
             + f"per-epoch test evaluation on {args.test_subset or 10_000} images; "
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
        "chance 0.1): " + ", ".join(f"σ={s}: {v:.3f}" for s, v in report["umap_knn_accuracy"].items()) + ". "
        f"Over {args.umap_seeds} UMAP seeds (mean, min–max): "
        + ", ".join(f"σ={s}: {np.mean(v):.3f} ({min(v):.3f}–{max(v):.3f})"
                    for s, v in report["umap_knn_accuracy_seeds"].items())
        + ". The same classifier on the 10-d codes themselves (no UMAP): "
        + ", ".join(f"σ={s}: {v:.3f}" for s, v in report["code_knn_accuracy"].items()) + ".",
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
        f"Linear reference: the top {report['pca']['components']} principal components of the "
        f"{report['pca']['train_images']:,} training images reconstruct the test set at MSE "
        f"{report['pca']['recon_mse']:.4f} per pixel (clipped to [0, 1], as above).",
        "",
        "## Learning curves",
        "",
        "One row per model; the per-epoch curves are in the JSON (`training`) and "
        "`figures/pie_learning_curves.png`. Test loss: the model's own objective on the "
        f"{args.test_subset or 10_000} per-epoch test images (PIE: nats per pixel; units differ "
        "between models). Class-consistency per epoch on the same images. Late share: the part of "
        "the net change (first → last epoch) made over the last "
        f"{PLATEAU_FRACTION:.0%} of the epochs (`plateau`): {PLATEAU_FRACTION:.0%} for a straight "
        f"line, ≈ 0 when flat; plateau when ≤ {PLATEAU_TOLERANCE:g}, or \"yes (noise)\" when a line "
        f"through the last epochs has a slope less than {PLATEAU_NOISE_Z:g} standard errors from flat.",
        "",
        "| model | epochs | steps (batch) | train wall (s) | test loss first → last | late share | "
        "class-consistency first → last | late share | plateau (loss / class-consistency) |",
        "|---|---|---|---|---|---|---|---|---|",
        *[curve_row(name, rec) for name, rec in report["training"].items()],
        "",
        "Wall time (s; training and per-epoch measuring, summed over the curve): "
        + ", ".join(f"{k}: {v}" for k, v in report["timing_s"].items()),
        "",
        "Figures: `figures/pie_reconstructions.png`, `figures/pie_samples.png`, "
        "`figures/pie_samples_reduced.png`, `figures/pie_interpolations.png`, `figures/pie_umap.png`, "
        "`figures/pie_learning_curves.png`.",
        "",
    ]
    write_page(args.results / "pie_manifold.md", "\n".join(lines))
    (args.results / "pie_manifold.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


def plateau_word(reading: dict[str, Any]) -> str:
    """``yes``, ``yes (noise)`` (a late share above tolerance, but a late trend within the noise) or ``no``."""
    if not reading["plateau"]:
        return "no"
    return "yes (noise)" if reading.get("reason") == "late trend within noise" else "yes"


def curve_row(name: str, record: dict[str, Any]) -> str:
    """One Markdown row of the learning-curve table."""
    curve, readings = record["curve"], record["plateau"]

    def ends(key: str, fmt: str) -> str:
        return f"{curve[0][key]:{fmt}} → {curve[-1][key]:{fmt}}" if curve and key in curve[0] else "–"

    def share(key: str) -> str:
        return f"{readings[key]['late_share']:.3f}" if key in readings else "–"

    def flat(key: str) -> str:
        return plateau_word(readings[key]) if key in readings else "–"

    return (f"| {name} | {record['epochs']} | {record['steps']} ({record['batch_size']}) | {record['seconds']:.0f} | "
            f"{ends('test_loss', '.4g')} | {share('test_loss')} | {ends('class_consistency', '.3f')} | "
            f"{share('class_consistency')} | {flat('test_loss')} / {flat('class_consistency')} |")


if __name__ == "__main__":
    raise SystemExit(main())
