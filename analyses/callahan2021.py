"""Reproduce and extend Callahan & Paskett (2021), "Analyzing Information Loss of Invertible
Variational Autoencoders": INN autoencoder vs classical autoencoder, layer by layer.

For each dataset the script trains (or, with ``--reuse``, loads) the INN autoencoder of Nguyen,
Ardizzone & Köthe (2019) and the classical autoencoder at the main bottleneck (k = 20 for MNIST,
as the paper's classical AE implies; k = 64 for CIFAR-10, the zoo default — the paper states
none), records every layer's output on test images with ``infoprobe.record`` — the forward pass,
the bottleneck and the inverse (INN) / decoder (classical) pass — and writes:

- ``figures/callahan2021_entropy_<ds>.png``: the paper's Fig. 3, entropy of each layer's output
  with the ``callahan2021`` preset (100 bins over each layer's own range, +1 smoothing, nats);
- ``figures/callahan2021_relative_entropy_<ds>.png``: Fig. 4, KL(previous layer ‖ this layer);
- ``figures/callahan2021_bins_<ds>.png``: the same curves and the input/output KL for 10, 30,
  100, 300 and 1,000 bins;
- ``figures/callahan2021_bottleneck_<ds>.png``: entropy curves and input/output KL for several
  bottleneck sizes;
- ``figures/callahan2021_info_plane_<ds>.png``: I(X;T_l) and I(T_l;Y) per layer with a binned
  and a noisy-channel (Kolchinsky–Tracey) estimator, plus the exact invertibility of the INN
  layers before the bottleneck;
- ``analyses/results/callahan2021.json`` (raw numbers, one entry per dataset, merged across
  runs) and ``analyses/results/callahan2021.md`` (rendered from the JSON).

Usage (from the repository root)::

    python -m analyses.callahan2021 --dataset all --data-root ../shared/data           # full, GPU
    python -m analyses.callahan2021 --dataset mnist --quick --device cpu               # CPU, reduced
    python -m analyses.callahan2021 --dataset mnist --quick --reuse                    # re-analyse
    python -m analyses.callahan2021 --render-only                 # redraw figures + .md from the .json

The results file ends with a hand-written discussion below ``DISCUSSION_MARK``; re-rendering
keeps it (re-read it against the new numbers).

Only the public API is used: ``models.build``, ``models.training.train``,
``infoprobe.checkpoint``, ``infoprobe.record``, ``infoprobe.entropy / kl_divergence /
mutual_information`` and ``infoprobe.load_dataset``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import infoprobe
import models
from infoprobe import checkpoint
from infoprobe.data import ImageData, load_dataset
from infoprobe.errors import InfoprobeError
from infoprobe.estimators.histogram import bin_edges, histogram_counts
from models.base import Autoencoder
from models.inn_autoencoder import INNAutoencoder

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"inn": "inn-ae", "classical": "classical-ae"}
#: The paper's input/output relative entropy table (nats).
PAPER = {"mnist": {"inn": 10.46, "classical": 10.25}, "cifar10": {"inn": 0.76, "classical": 0.28}}
BINS = (10, 30, 100, 300, 1000)
#: Main bottleneck per dataset, and the bottleneck sweep at full / quick scale.
BOTTLENECK = {"mnist": 20, "cifar10": 64, "digits": 8}
SWEEP = {"mnist": (4, 20, 64), "cifar10": (16, 64, 256), "digits": (2, 8, 16)}
QUICK_SWEEP = {"mnist": (4, 20, 64), "cifar10": (64,), "digits": (2, 8)}
#: Reduced scale (--quick): training images, epochs per model, analysed test images.
QUICK: dict[str, dict[str, Any]] = {
    "mnist": {"subset": 5000, "epochs": {"inn": 2, "classical": 10}, "n_test": 2000, "n_ip": 1000, "n_boot": 20},
    "cifar10": {"subset": 4000, "epochs": {"inn": 1, "classical": 1}, "n_test": 1000, "n_ip": 500, "n_boot": 10},
    "digits": {"subset": None, "epochs": {"inn": 2, "classical": 2}, "n_test": 360, "n_ip": 360, "n_boot": 10},
}
#: Noise scales of the noisy-channel MI: std of the added noise as a fraction of the layer's
#: RMS distance from its mean.
NOISE_SCALES = (0.1, 0.3)
IP_BINS = 30
PRESET = "callahan2021"
#: Everything after this line of the results file is hand-written and kept when it is re-rendered.
DISCUSSION_MARK = "<!-- discussion: written by hand after reading the numbers; kept on re-render -->"

__all__ = ["DatasetConfig", "analyse_dataset", "main", "parse_args", "render_markdown"]


@dataclass
class DatasetConfig:
    """Everything that determines one dataset's run (stored in the JSON next to the numbers)."""

    dataset: str
    quick: bool
    bottleneck: int
    sweep: tuple[int, ...]
    subset: int | None
    epochs: dict[str, int | None]
    n_test: int | None
    n_joint: int
    n_ip: int
    n_boot: int
    device: str
    seed: int
    runs: str
    reuse: bool
    data_root: str | None
    figures: str = field(default=str(ROOT / "figures"))


# -- configuration ----------------------------------------------------------------------------------


def default_data_root() -> Path | None:
    """``$INFOPROBE_DATA``, else ``../shared/data`` next to the repository (or its worktree parent)."""
    if os.environ.get("INFOPROBE_DATA"):
        return Path(os.environ["INFOPROBE_DATA"])
    for candidate in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--dataset", choices=("mnist", "cifar10", "all", "digits"), default="all",
                   help="'all' = mnist then cifar10; 'digits' (sklearn 8x8) is a tiny test configuration")
    p.add_argument("--quick", action="store_true", help="reduced scale for a CPU (subset, few epochs)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder with mnist.npz / cifar10.npz or the standard files "
                        "(default: $INFOPROBE_DATA, else ../shared/data)")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "callahan2021", help="checkpoint folder")
    p.add_argument("--reuse", action="store_true", help="load existing checkpoints instead of training")
    p.add_argument("--seed", type=int, default=0, help="seeds training order, subsets and estimators")
    p.add_argument("--bottleneck", type=int, default=None, help="main bottleneck k (default 20 / 64)")
    p.add_argument("--sweep", type=int, nargs="*", default=None, help="bottleneck sizes of the sweep")
    p.add_argument("--subset", type=int, default=None, help="training images (default: all)")
    p.add_argument("--epochs-inn", type=int, default=None, help="INN epochs (default: recipe)")
    p.add_argument("--epochs-classical", type=int, default=None, help="classical AE epochs (default: recipe)")
    p.add_argument("--n-test", type=int, default=None, help="test images analysed (default: all)")
    p.add_argument("--n-joint", type=int, default=None, help="samples for the kNN KL (default 2000, quick 1000)")
    p.add_argument("--n-ip", type=int, default=None, help="samples for the information plane (default 2000; quick: 1000 MNIST, 500 CIFAR-10)")
    p.add_argument("--n-boot", type=int, default=None, help="resamples for intervals (default 100; quick: 20 MNIST, 10 CIFAR-10)")
    p.add_argument("--render-only", action="store_true",
                   help="only redraw the figures and re-render the .md from the existing .json (no training, no estimates)")
    p.add_argument("--figures", type=Path, default=ROOT / "figures")
    p.add_argument("--results", type=Path, default=ROOT / "analyses" / "results")
    return p.parse_args(argv)


def dataset_config(args: argparse.Namespace, dataset: str) -> DatasetConfig:
    quick: dict[str, Any] | None = QUICK[dataset] if args.quick else None
    epochs: dict[str, int | None] = {"inn": args.epochs_inn, "classical": args.epochs_classical}
    if quick is not None:
        epochs = {k: quick["epochs"][k] if v is None else v for k, v in epochs.items()}
    k = args.bottleneck or BOTTLENECK[dataset]
    sweep = tuple(args.sweep) if args.sweep is not None else (QUICK_SWEEP if args.quick else SWEEP)[dataset]
    data_root = args.data_root or default_data_root()
    return DatasetConfig(
        dataset=dataset, quick=bool(args.quick), bottleneck=k,
        sweep=tuple(sorted(set(sweep) | {k})),
        subset=args.subset if args.subset is not None else (quick["subset"] if quick else None),
        epochs=epochs,
        n_test=args.n_test if args.n_test is not None else (quick["n_test"] if quick else None),
        n_joint=args.n_joint or (1000 if args.quick else 2000),
        n_ip=args.n_ip or (quick["n_ip"] if quick else 2000),
        n_boot=args.n_boot or (quick["n_boot"] if quick else 100),
        device=str(args.device), seed=args.seed,
        runs=str(args.runs / (dataset + ("-quick" if args.quick else ""))),
        reuse=bool(args.reuse),
        data_root=None if data_root is None or dataset == "digits" else str(data_root),
        figures=str(args.figures),
    )


# -- models -----------------------------------------------------------------------------------------


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def get_model(kind: str, k: int, cfg: DatasetConfig, train_data: ImageData,
              test_data: ImageData) -> tuple[Autoencoder, dict[str, Any]]:
    """Train ``kind`` at bottleneck ``k`` (or load its checkpoint with ``--reuse``)."""
    from models.training import train

    run_dir = Path(cfg.runs) / f"{kind}-k{k}"
    path = run_dir / "checkpoint.pt"
    device = resolve_device(cfg.device)
    if cfg.reuse and path.is_file():
        ckpt = checkpoint.load(path)
        model = checkpoint.build_model(ckpt, device=device)
        history = ckpt.metrics.get("history", [])
        seconds = [h.get("seconds") for h in history]
        info = {"source": "loaded", "checkpoint": str(path), "created": ckpt.created,
                "epochs": ckpt.training.get("epochs_done"), "train_images": (ckpt.dataset or {}).get("n"),
                "train_seconds": sum(seconds) if seconds and None not in seconds else None,
                "recipe": ckpt.training.get("recipe")}
    else:
        model = models.build(KINDS[kind], dataset=cfg.dataset, bottleneck=k)
        start = time.perf_counter()
        result = train(model, train_data, test_data=test_data, epochs=cfg.epochs[kind],
                       device=cfg.device, seed=cfg.seed, subset=cfg.subset, out=run_dir, progress=False)
        model = result.model
        info = {"source": "trained", "checkpoint": str(path), "epochs": result.epochs_done,
                "train_images": min(cfg.subset or len(train_data), len(train_data)),
                "train_seconds": time.perf_counter() - start, "recipe": result.recipe,
                "images_per_second": result.images_per_second}
    if not isinstance(model, Autoencoder):
        raise InfoprobeError(f"Expected a zoo autoencoder in {path}, got {type(model).__name__}")
    model.eval()
    info["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, info


# -- recording ------------------------------------------------------------------------------------


@dataclass
class Layer:
    """One recorded layer output along the pass: label, plot name, region, values (n, d)."""

    label: str
    name: str
    region: str  # "input", "forward", "bottleneck", "inverse"
    values: Tensor


_INN_NAMES = {"inn.haar": "Haar", "inn.glow1": "glow 1", "inn.glow2": "glow 2", "inn.glow3": "glow 3",
              "inn.fc": "fc coupling", "inn.haar_up": "Haar up (z)", "bottleneck": "code",
              "pad": "zero-padded z"}


def _inn_layer(label: str) -> tuple[str, str]:
    base, _, direction = label.partition(":")
    name = _INN_NAMES.get(base, base)
    if direction:
        return name + " inv", "inverse"
    return name, "bottleneck" if base in ("bottleneck", "pad") else "forward"


def _classical_layer(label: str) -> tuple[str, str]:
    part, _, layer = label.partition(".")
    if label == "encoder.out":
        return "encoder out (code)", "bottleneck"
    return f"{'enc' if part == 'encoder' else 'dec'} {layer}", "forward" if part == "encoder" else "inverse"


@torch.no_grad()
def record_pass(model: Autoencoder, kind: str, images: Tensor, *, batch_size: int = 250) -> list[Layer]:
    """Every layer output of ``model.reconstruct`` on ``images``, input first, flattened to (n, d).

    INN: the Haar/coupling blocks forward, the code and the zero-padded latent, the blocks
    inverted; FrEIA's Flatten/Reshape are left out (they only reshape: identical pooled values).
    """
    device = next(model.parameters()).device
    exclude = ["inn.flatten", "inn.unflatten"] if kind == "inn" else None
    with infoprobe.record(model, exclude=exclude, memory_budget=None) as rec:
        for batch in images.split(batch_size):
            model.reconstruct(batch.to(device))
    layers = [Layer("<input>", "input", "input", rec.input.flatten(1))]
    for label in rec.labels:
        name, region = (_inn_layer if kind == "inn" else _classical_layer)(label)
        layers.append(Layer(label, name, region, rec[label].flatten(1)))
    return layers


@torch.no_grad()
def inn_inversion_errors(model: INNAutoencoder, layers: list[Layer]) -> dict[str, float]:
    """max |x − f_{1..l}^{-1}(T_l)| for every forward INN block l: exact invertibility check."""
    blocks = list(model.inn.items())
    x = layers[0].values
    errors: dict[str, float] = {}
    for layer in layers[1:]:
        if layer.region != "forward":
            continue
        position = [name for name, _ in blocks].index(layer.label.removeprefix("inn."))
        shapes = model.input_shape
        out: Tensor = layer.values.float()
        # Shape of the block's output: run one sample forward through the blocks up to l.
        probe = x[:1].float().view(1, *shapes)
        for _, module in blocks[: position + 1]:
            (probe,), _ = module((probe,), rev=False, jac=False)
        t = out.view(out.shape[0], *probe.shape[1:]).clone()
        for _, module in reversed(blocks[: position + 1]):
            (t,), _ = module((t,), rev=True, jac=False)
        errors[layer.name] = float((t.flatten(1).double() - x).abs().max())
    return errors


# -- estimates ------------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def layer_curves(layers: list[Layer], *, bins: int | None = None) -> dict[str, list[float]]:
    """Entropy of every layer and KL(previous ‖ this), pooled-value histograms.

    ``bins=None`` is the ``callahan2021`` preset; otherwise the preset's method with that many bins.
    """
    if bins is None:
        ent = [infoprobe.entropy(layer.values, preset=PRESET).value for layer in layers]
        kl = [infoprobe.kl_divergence(a.values, b.values, preset=PRESET).value
              for a, b in itertools.pairwise(layers)]
    else:
        ent = [infoprobe.entropy(layer.values, method="histogram", bins=bins, smoothing=1.0).value
               for layer in layers]
        kl = [infoprobe.kl_divergence(a.values, b.values, method="histogram", bins=bins,
                                      edges="separate", smoothing=1.0).value
              for a, b in itertools.pairwise(layers)]
    return {"entropy": ent, "kl_previous": kl}


def io_kl(x: Tensor, x_hat: Tensor, *, bins: int, edges: str) -> float:
    return infoprobe.kl_divergence(x, x_hat, method="histogram", bins=bins, edges=edges, smoothing=1.0).value


def _bin_of(value: float, edges: Tensor) -> int:
    """Index of the histogram bin that holds ``value`` (clamped to the first / last bin)."""
    index = int((edges.cpu() <= value).sum()) - 1
    return min(max(index, 0), edges.numel() - 2)


def io_kl_anatomy(x: Tensor, x_hat: Tensor, *, bins: int = 100) -> dict[str, Any]:
    """Where the preset's KL(input ‖ reconstruction) comes from: each histogram over its own range.

    Returns both ranges, the (smoothed) probability of the first bin of each histogram, and the
    share of the KL contributed by the bin with the largest term.
    """
    p_counts = histogram_counts(x, bin_edges(x, bins=bins)) + 1.0
    q_counts = histogram_counts(x_hat, bin_edges(x_hat, bins=bins)) + 1.0
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    terms = p * torch.log(p / q)
    top = int(terms.argmax())
    return {"input_range": [float(x.min()), float(x.max())],
            "output_range": [float(x_hat.min()), float(x_hat.max())],
            "p_first_bin": float(p[0]), "q_first_bin": float(q[0]),
            "q_bin_holding_zero": float(q[_bin_of(0.0, bin_edges(x_hat, bins=bins))]),
            "kl": float(terms.sum()), "largest_term_bin": top, "largest_term": float(terms[top])}


def _estimate_dict(estimate: Any) -> dict[str, Any]:
    return {"value": _finite(estimate.value), "ci": None if estimate.ci is None else list(estimate.ci),
            "method": estimate.method, "n": estimate.n, "d": estimate.d,
            "warnings": list(estimate.warnings)}


def joint_kl(x: Tensor, x_hat: Tensor, cfg: DatasetConfig) -> dict[str, Any]:
    """KL(test inputs ‖ reconstructions) with estimators of the joint (per-image) distributions."""
    generator = torch.Generator().manual_seed(cfg.seed)
    index = torch.randperm(x.shape[0], generator=generator)[: cfg.n_joint]
    out: dict[str, Any] = {}
    try:
        out["knn"] = _estimate_dict(infoprobe.kl_divergence(
            x[index], x_hat[index], method="knn", k=3, ci=0.95, n_boot=cfg.n_boot, seed=cfg.seed))
    except InfoprobeError as error:
        out["knn"] = {"value": None, "error": str(error)}
    try:
        out["gaussian"] = _estimate_dict(infoprobe.kl_divergence(
            x, x_hat, method="gaussian", shrinkage="ledoit-wolf", ci=0.95, n_boot=cfg.n_boot, seed=cfg.seed))
    except InfoprobeError as error:
        out["gaussian"] = {"value": None, "error": str(error)}
    return out


def information_plane(layers: list[Layer], labels: Tensor, cfg: DatasetConfig) -> dict[str, Any]:
    """I(X;T_l) and I(T_l;Y) for every layer on ``n_ip`` test images.

    - ``binned``: every unit binned in ``IP_BINS`` bins over the layer's range, plug-in MI of
      the joint patterns (Shwartz-Ziv & Tishby 2017). With n samples it cannot exceed log n.
    - ``noisy_<s>``: I(X; T_l + ε) with ε ~ N(0, (s·r_l)² I), r_l the layer's RMS distance from
      its mean — the Kolchinsky–Tracey pairwise bound of H(T + ε) minus H(ε) (Saxe et al. 2018),
      at a noise scaled to each layer; also ≤ log n. I(T_l + ε; Y) by the same estimator.
    """
    n = min(cfg.n_ip, labels.shape[0])
    index = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(cfg.seed + 1))[:n]
    x = layers[0].values[index]
    y = labels[index]
    result: dict[str, Any] = {"n": n, "log_n": math.log(n), "bins": IP_BINS, "noise_scales": list(NOISE_SCALES),
                              "binned": {"ixt": [], "ity": []}}
    for s in NOISE_SCALES:
        result[f"noisy_{s}"] = {"ixt": [], "ity": []}
    for layer in layers:
        t = layer.values[index]
        result["binned"]["ixt"].append(infoprobe.mutual_information(x, t, method="binned", bins=IP_BINS).value)
        result["binned"]["ity"].append(infoprobe.mutual_information(t, y, method="binned", bins=IP_BINS).value)
        centred = t - t.mean(0)
        radius = float(centred.pow(2).sum(1).mean().sqrt())
        for s in NOISE_SCALES:
            if radius == 0:
                result[f"noisy_{s}"]["ixt"].append(0.0)
                result[f"noisy_{s}"]["ity"].append(0.0)
                continue
            var = (s * radius) ** 2
            d = t.shape[1]
            h = infoprobe.entropy(t, method="kde", noise_var=var).value
            noise_entropy = 0.5 * d * math.log(2 * math.pi * math.e * var)
            result[f"noisy_{s}"]["ixt"].append(h - noise_entropy)
            result[f"noisy_{s}"]["ity"].append(
                infoprobe.mutual_information(t, y, method="kde", noise_var=var).value)
    return result


# -- one dataset ----------------------------------------------------------------------------------


def _load(cfg: DatasetConfig) -> tuple[ImageData, ImageData, dict[str, Any]]:
    root = None if cfg.data_root is None else Path(cfg.data_root)
    kwargs: dict[str, Any] = {} if cfg.dataset == "digits" else {"root": root}
    train_data = load_dataset(cfg.dataset, split="train", **kwargs)
    test_data = load_dataset(cfg.dataset, split="test", **kwargs)
    test_used = test_data.subset(cfg.n_test, seed=cfg.seed) if cfg.n_test else test_data
    source = {"root": cfg.data_root if cfg.dataset != "digits" else "sklearn (bundled)",
              "train_available": len(train_data), "test_available": len(test_data),
              "train_used": min(cfg.subset or len(train_data), len(train_data)),
              "test_used": len(test_used)}
    return train_data, test_used, source


def analyse_dataset(cfg: DatasetConfig, *, log: Any = print) -> dict[str, Any]:
    """Train/load, record, estimate and plot one dataset; returns the JSON-able results."""
    torch.manual_seed(cfg.seed)
    started = time.perf_counter()
    train_data, test_data, source = _load(cfg)
    log(f"[{cfg.dataset}] data: {source}")
    x_test = test_data.images
    out: dict[str, Any] = {"config": {**asdict(cfg), "sweep": list(cfg.sweep)}, "data": source,
                           "paper": PAPER.get(cfg.dataset), "models": {}, "sweep": {}}
    main_layers: dict[str, list[Layer]] = {}
    for k in cfg.sweep:
        for kind in KINDS:
            t0 = time.perf_counter()
            model, info = get_model(kind, k, cfg, train_data, test_data)
            layers = record_pass(model, kind, x_test)
            x, x_hat = layers[0].values, layers[-1].values
            entry: dict[str, Any] = {
                "training": info,
                "test_l1": float((x_hat - x).abs().mean()),
                "io_kl_preset": infoprobe.kl_divergence(x, x_hat, preset=PRESET).value,
                "io_kl_anatomy": io_kl_anatomy(x, x_hat),
                "io_kl_bins": {str(b): io_kl(x, x_hat, bins=b, edges="separate") for b in BINS},
                "io_kl_shared_bins": {str(b): io_kl(x, x_hat, bins=b, edges="shared") for b in BINS},
                "layers": [layer.name for layer in layers],
                "regions": [layer.region for layer in layers],
                "curves": layer_curves(layers),
            }
            if k == cfg.bottleneck:
                entry["curves_bins"] = {str(b): layer_curves(layers, bins=b) for b in BINS}
                entry["joint_kl"] = joint_kl(x, x_hat, cfg)
                entry["info_plane"] = information_plane(layers, test_data.labels, cfg)
                if isinstance(model, INNAutoencoder):
                    entry["inversion_error"] = inn_inversion_errors(model, layers)
                main_layers[kind] = layers
                out["models"][kind] = entry
            else:
                out["sweep"].setdefault(str(k), {})[kind] = {
                    key: entry[key] for key in ("training", "test_l1", "io_kl_preset", "io_kl_anatomy", "layers", "regions", "curves")}
            log(f"[{cfg.dataset}] {kind} k={k}: L1 {entry['test_l1']:.4f}, "
                f"io KL (preset) {entry['io_kl_preset']:.3f} nats ({time.perf_counter() - t0:.0f} s)")
            del model
    out["sweep"].setdefault(str(cfg.bottleneck), {}).update({
        kind: {key: out["models"][kind][key] for key in ("training", "test_l1", "io_kl_preset", "io_kl_anatomy",
                                                          "layers", "regions", "curves")} for kind in KINDS})
    out["wall_seconds"] = time.perf_counter() - started
    plot_all(out, Path(cfg.figures), cfg.dataset)
    return out


# -- figures --------------------------------------------------------------------------------------

_COLORS = {"inn": "tab:blue", "classical": "tab:orange"}
_REGION_SHADE = {"forward": "#e8f0fb", "bottleneck": "#fde3c8", "inverse": "#e6f4e6"}
_TITLES = {"inn": "INN autoencoder", "classical": "classical autoencoder"}


def _shade_regions(ax: Any, regions: list[str], offset: float = 0.0) -> None:
    for i, region in enumerate(regions):
        if region in _REGION_SHADE:
            ax.axvspan(i - 0.5 + offset, i + 0.5 + offset, color=_REGION_SHADE[region], lw=0, zorder=0)


def _pass_axis(ax: Any, names: list[str], regions: list[str], *, offset: float = 0.0) -> None:
    _shade_regions(ax, regions, offset)
    ax.set_xticks(np.arange(len(names)) + offset)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.5 + offset, len(names) - 0.5 + offset)


def _legend_regions(ax: Any) -> None:
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    labels = {"forward": "forward / encoder", "bottleneck": "bottleneck", "inverse": "inverse / decoder"}
    patches = [Patch(color=c, label=labels[r]) for r, c in _REGION_SHADE.items()]
    ax.legend(handles=handles + patches, fontsize=7, loc="best")


def _figure(n_panels: int, *, width: float = 6.0, height: float = 4.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _scale_note(out: dict[str, Any]) -> str:
    cfg = out["config"]
    return (f"{cfg['dataset']}, k={cfg['bottleneck']}, {out['data']['test_used']} test images"
            + (", REDUCED SCALE (--quick)" if cfg["quick"] else ""))


def plot_all(out: dict[str, Any], folder: Path, dataset: str) -> None:
    """The five figures of one dataset."""
    note = _scale_note(out)
    m = out["models"]

    fig, axes = _figure(2)
    for ax, kind in zip(axes, KINDS, strict=True):
        names, regions = m[kind]["layers"], m[kind]["regions"]
        _pass_axis(ax, names, regions)
        ax.plot(m[kind]["curves"]["entropy"], "o-", color=_COLORS[kind], label="entropy (callahan2021 preset)")
        ax.set_ylabel("entropy of pooled values [nats]")
        ax.set_title(f"{_TITLES[kind]}: layer-wise entropy")
        _legend_regions(ax)
    fig.suptitle(f"Fig. 3 analogue — {note}", fontsize=9)
    _save(fig, folder / f"callahan2021_entropy_{dataset}.png")

    fig, axes = _figure(2)
    for ax, kind in zip(axes, KINDS, strict=True):
        names, regions = m[kind]["layers"], m[kind]["regions"]
        _pass_axis(ax, names[1:], regions[1:])
        ax.plot(m[kind]["curves"]["kl_previous"], "o-", color=_COLORS[kind], label="KL(previous ‖ this)")
        ax.set_ylabel("relative entropy [nats]")
        ax.set_title(f"{_TITLES[kind]}: layer-wise relative entropy")
        _legend_regions(ax)
    fig.suptitle(f"Fig. 4 analogue (callahan2021 preset) — {note}", fontsize=9)
    _save(fig, folder / f"callahan2021_relative_entropy_{dataset}.png")

    fig, axes = _figure(3, width=5.5)
    cmap = _cmap("viridis")
    for ax, kind in zip(axes[:2], KINDS, strict=True):
        names, regions = m[kind]["layers"], m[kind]["regions"]
        _pass_axis(ax, names, regions)
        for j, b in enumerate(BINS):
            ax.plot(m[kind]["curves_bins"][str(b)]["entropy"], "o-", ms=3, color=cmap(j / (len(BINS) - 1)),
                    label=f"{b} bins")
        ax.set_ylabel("entropy [nats]")
        ax.set_title(f"{_TITLES[kind]}: entropy vs bins")
        ax.legend(fontsize=7)
    ax = axes[2]
    for kind in KINDS:
        ax.plot(BINS, [m[kind]["io_kl_bins"][str(b)] for b in BINS], "o-", color=_COLORS[kind],
                label=f"{kind}: own-range bins (paper)")
        ax.plot(BINS, [m[kind]["io_kl_shared_bins"][str(b)] for b in BINS], "s--", color=_COLORS[kind],
                label=f"{kind}: shared bins")
    if out["paper"]:
        for kind in KINDS:
            ax.axhline(out["paper"][kind], color=_COLORS[kind], ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("bins")
    ax.set_ylabel("KL(input ‖ reconstruction) [nats]")
    ax.set_title("input/output relative entropy vs bins (dotted: paper)")
    ax.legend(fontsize=7)
    fig.suptitle(f"Sensitivity to the number of bins — {note}", fontsize=9)
    _save(fig, folder / f"callahan2021_bins_{dataset}.png")

    ks = sorted(int(k) for k in out["sweep"])
    fig, axes = _figure(3, width=5.5)
    for ax, kind in zip(axes[:2], KINDS, strict=True):
        for j, k in enumerate(ks):
            entry = out["sweep"][str(k)][kind]
            if j == 0:
                _pass_axis(ax, entry["layers"], entry["regions"])
            ax.plot(entry["curves"]["entropy"], "o-", ms=3, color=cmap(j / max(1, len(ks) - 1)), label=f"k={k}")
        ax.set_ylabel("entropy (callahan2021 preset) [nats]")
        ax.set_title(f"{_TITLES[kind]}: entropy vs bottleneck")
        ax.legend(fontsize=7)
    ax = axes[2]
    for kind in KINDS:
        ax.plot(ks, [out["sweep"][str(k)][kind]["io_kl_preset"] for k in ks], "o-", color=_COLORS[kind], label=kind)
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("bottleneck k")
    ax.set_ylabel("KL(input ‖ reconstruction), preset [nats]")
    ax.set_title("input/output relative entropy vs bottleneck")
    ax.legend(fontsize=7)
    fig.suptitle(f"Sensitivity to the bottleneck size — {note}", fontsize=9)
    _save(fig, folder / f"callahan2021_bottleneck_{dataset}.png")

    plot_info_plane(out, folder / f"callahan2021_info_plane_{dataset}.png", note)


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def plot_info_plane(out: dict[str, Any], path: Path, note: str) -> None:
    m = out["models"]
    estimators = ["binned", *[f"noisy_{s}" for s in NOISE_SCALES]]
    titles = {"binned": f"binned ({IP_BINS} bins/unit)",
              **{f"noisy_{s}": f"noisy channel, noise = {s}·RMS radius" for s in NOISE_SCALES}}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 9))
    grid = fig.add_gridspec(2, 6)
    log_n = m["inn"]["info_plane"]["log_n"]
    styles = {"binned": "s-", **{f"noisy_{s}": ("o-" if i == 0 else "^-") for i, s in enumerate(NOISE_SCALES)}}
    for col, kind in enumerate(KINDS):
        ax = fig.add_subplot(grid[0, 3 * col : 3 * col + 3])
        _pass_axis(ax, m[kind]["layers"], m[kind]["regions"])
        for est in estimators:
            ax.plot(m[kind]["info_plane"][est]["ixt"], styles[est], ms=4, label=titles[est])
        ax.axhline(log_n, color="k", ls=":", lw=1, label="log n (ceiling of both estimators)")
        ax.set_ylabel("I(X;T_l) [nats]")
        ax.set_title(f"{_TITLES[kind]}: I(X;T_l) along the pass", fontsize=9)
        _legend_regions(ax)
    for j, est in enumerate(estimators):
        ax = fig.add_subplot(grid[1, 2 * j : 2 * j + 2])
        for kind in KINDS:
            ip = m[kind]["info_plane"][est]
            ax.plot(ip["ixt"], ip["ity"], "-", color=_COLORS[kind], lw=1, alpha=0.6)
            ax.scatter(ip["ixt"], ip["ity"], c=np.arange(len(ip["ixt"])), cmap="viridis", s=25,
                       edgecolors=_COLORS[kind], label=kind, zorder=3)
        ax.axvline(log_n, color="k", ls=":", lw=1)
        ax.set_xlabel("I(X;T_l) [nats]")
        ax.set_ylabel("I(T_l;Y) [nats] (Y = class label)")
        ax.set_title(f"information plane, {titles[est]}\n(fill colour: layer index along the pass)", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"Information plane — {note}; n = {m['inn']['info_plane']['n']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- results files --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return f"{value:.{digits}f}"


def _ci(entry: dict[str, Any]) -> str:
    if entry.get("value") is None:
        return f"failed: {entry.get('error', '')}"
    text = _fmt(entry["value"], 2)
    if entry.get("ci"):
        text += f" [{_fmt(entry['ci'][0], 2)}, {_fmt(entry['ci'][1], 2)}]"
    return text


def render_markdown(results: dict[str, Any]) -> str:
    """The results file, rendered from the JSON of every dataset run so far."""
    lines = ["# Callahan & Paskett (2021) reproduced and extended: INN vs classical autoencoder", "",
             "Generated by `analyses/callahan2021.py` from `analyses/results/callahan2021.json`; every "
             "number below was measured by the run whose command, date and wall time are given in its "
             "section. Units: nats.", ""]
    for dataset in ("mnist", "cifar10", "digits"):
        if dataset in results:
            lines += _dataset_section(dataset, results[dataset])
    return "\n".join(lines) + "\n"


def _dataset_section(dataset: str, r: dict[str, Any]) -> list[str]:
    cfg, m, data = r["config"], r["models"], r["data"]
    scale = "REDUCED SCALE (`--quick`)" if cfg["quick"] else "full scale"
    lines = [f"## {dataset}", "",
             f"- Run: `{r['command']}` on {r['date']} (UTC), wall time {r['wall_seconds'] / 60:.1f} min, "
             f"device `{r['device']}`, torch threads {r.get('threads')}. **{scale}.**",
             f"- Data: `{data['root']}` — {data['train_used']} of {data['train_available']} training images "
             f"(seeded subset), {data['test_used']} of {data['test_available']} test images analysed."
             + (" The CIFAR-10 file there is a 4,000/1,000 subset of CIFAR-10." if dataset == "cifar10" else ""),
             f"- Main bottleneck k = {cfg['bottleneck']}"
             + (" (implied by the paper's classical AE)." if dataset == "mnist" else
                " (the paper states none; 64 = the zoo default, 2 % of 3,072 dimensions)." if dataset == "cifar10"
                else "."),
             ""]
    lines += ["| model | epochs | training images | train time | parameters | test L1 mean\\|x̂−x\\| |",
              "|---|---|---|---|---|---|"]
    for kind in KINDS:
        t = m[kind]["training"]
        seconds = "?" if t.get("train_seconds") is None else f"{t['train_seconds']:.0f} s"
        if t.get("source") == "loaded":
            seconds += f" (checkpoint of {t.get('created') or '?'}, loaded with --reuse)"
        lines.append(f"| {kind} | {t.get('epochs')} | {t.get('train_images')} | {seconds} | "
                     f"{t.get('parameters'):,} | {_fmt(m[kind]['test_l1'], 4)} |")
    lines += ["", "### Input/output relative entropy KL(test inputs ‖ reconstructions)", ""]
    paper = r.get("paper") or {}
    lines += ["| estimator | INN | classical |", "|---|---|---|"]
    lines.append(f"| **paper** (Callahan & Paskett 2021) | {_fmt(paper.get('inn'), 2)} | {_fmt(paper.get('classical'), 2)} |")
    lines.append(f"| `callahan2021` preset (pooled values, 100 bins over each array's own range, +1) | "
                 f"{_fmt(m['inn']['io_kl_preset'])} | {_fmt(m['classical']['io_kl_preset'])} |")
    lines.append(f"| pooled values, 100 bins on shared edges, +1 | {_fmt(m['inn']['io_kl_shared_bins']['100'])} | "
                 f"{_fmt(m['classical']['io_kl_shared_bins']['100'])} |")
    knn, gauss = m["inn"]["joint_kl"]["knn"], m["inn"]["joint_kl"]["gaussian"]
    lines.append(f"| joint kNN (Wang–Kulkarni–Verdú, k=3, n={knn.get('n')} images, d={knn.get('d')}), 95 % "
                 f"subsampling CI | {_ci(knn)} | {_ci(m['classical']['joint_kl']['knn'])} |")
    lines.append(f"| joint Gaussian fit, Ledoit–Wolf shrinkage (n={gauss.get('n')}), 95 % bootstrap CI | "
                 f"{_ci(gauss)} | {_ci(m['classical']['joint_kl']['gaussian'])} |")
    warns = sorted({w for kind in KINDS for e in m[kind]["joint_kl"].values() for w in e.get("warnings", [])})
    if warns:
        lines += ["", "Estimator warnings: " + "; ".join(warns)]
    lines += ["", f"### Sensitivity to the number of bins (figure `figures/callahan2021_bins_{dataset}.png`)", "",
              "Input/output KL with each array binned over its own range (the paper's method) / on shared edges:", "",
              "| bins | " + " | ".join(str(b) for b in BINS) + " |", "|---" * (len(BINS) + 1) + "|"]
    for kind in KINDS:
        lines.append(f"| {kind}, own range | " + " | ".join(_fmt(m[kind]["io_kl_bins"][str(b)]) for b in BINS) + " |")
        lines.append(f"| {kind}, shared | " + " | ".join(_fmt(m[kind]["io_kl_shared_bins"][str(b)]) for b in BINS) + " |")
    lines += ["", "Entropy of the input and of the reconstruction (callahan2021 method, varying bins):", "",
              "| bins | " + " | ".join(str(b) for b in BINS) + " |", "|---" * (len(BINS) + 1) + "|"]
    lines.append("| H(input) | " + " | ".join(_fmt(m["inn"]["curves_bins"][str(b)]["entropy"][0]) for b in BINS) + " |")
    for kind in KINDS:
        lines.append(f"| H(output), {kind} | "
                     + " | ".join(_fmt(m[kind]["curves_bins"][str(b)]["entropy"][-1]) for b in BINS) + " |")
        lines.append(f"| max layer-wise KL, {kind} | "
                     + " | ".join(_fmt(max(m[kind]["curves_bins"][str(b)]["kl_previous"])) for b in BINS) + " |")
    lines += ["", f"### Sensitivity to the bottleneck size (figure `figures/callahan2021_bottleneck_{dataset}.png`)", "",
              "| k | INN L1 | INN io KL (preset) | classical L1 | classical io KL (preset) |", "|---|---|---|---|---|"]
    for k in sorted(int(k) for k in r["sweep"]):
        s = r["sweep"][str(k)]
        lines.append(f"| {k} | {_fmt(s['inn']['test_l1'], 4)} | {_fmt(s['inn']['io_kl_preset'])} | "
                     f"{_fmt(s['classical']['test_l1'], 4)} | {_fmt(s['classical']['io_kl_preset'])} |")
    lines += ["", "Anatomy of the preset's input/output KL (100 bins, each over its own range, +1): the "
              "reconstruction's range, the input's mass in its first bin (the value 0 for MNIST), the "
              "reconstruction's mass in its first bin and in the bin that holds 0, and the largest single "
              "bin term of the KL sum:", "",
              "| k | model | output range | p(first bin) | q(first bin) | q(bin of 0) | largest term (bin) | KL |",
              "|---|---|---|---|---|---|---|---|"]
    for k in sorted(int(k) for k in r["sweep"]):
        for kind in KINDS:
            a = r["sweep"][str(k)][kind].get("io_kl_anatomy")
            if a:
                lines.append(f"| {k} | {kind} | [{a['output_range'][0]:.3f}, {a['output_range'][1]:.3f}] | "
                             f"{a['p_first_bin']:.3f} | {a['q_first_bin']:.2e} | {a['q_bin_holding_zero']:.3f} | "
                             f"{a['largest_term']:.2f} ({a['largest_term_bin']}) | {a['kl']:.3f} |")
    lines += ["", f"### Layer-wise entropy and relative entropy (figures `callahan2021_entropy_{dataset}.png`, "
              f"`callahan2021_relative_entropy_{dataset}.png`)", ""]
    for kind in KINDS:
        c = m[kind]["curves"]
        lines.append(f"- {kind}: " + ", ".join(
            f"{name} {_fmt(h, 2)}" + ("" if i == 0 else f" (KL {_fmt(c['kl_previous'][i - 1], 2)})")
            for i, (name, h) in enumerate(zip(m[kind]["layers"], c["entropy"], strict=True))))
    ip_inn, ip_cl = m["inn"]["info_plane"], m["classical"]["info_plane"]
    lines += ["", f"### Information plane (figure `figures/callahan2021_info_plane_{dataset}.png`)", "",
              f"n = {ip_inn['n']} test images, ceiling log n = {ip_inn['log_n']:.2f} nats. "
              "I(X;T_l) per layer, input first:", ""]
    for est in ["binned", *[f"noisy_{s}" for s in NOISE_SCALES]]:
        for kind, ip in (("inn", ip_inn), ("classical", ip_cl)):
            lines.append(f"- {est}, {kind}: " + ", ".join(
                f"{name} {_fmt(v, 2)}" for name, v in zip(m[kind]["layers"], ip[est]["ixt"], strict=True)))
    lines += ["", "I(T_l;Y) with the class label Y (ceiling H(Y) ≈ log 10 = 2.30), input first:", ""]
    for est in ["binned", *[f"noisy_{s}" for s in NOISE_SCALES]]:
        for kind, ip in (("inn", ip_inn), ("classical", ip_cl)):
            lines.append(f"- {est}, {kind}: " + ", ".join(_fmt(v, 2) for v in ip[est]["ity"]))
    if "inversion_error" in m["inn"]:
        worst = max(m["inn"]["inversion_error"].values())
        lines += ["", f"Exact invertibility of the INN before the bottleneck: inverting the blocks up to layer l "
                  f"recovers the input from T_l with max |error| ≤ {worst:.2e} over all forward layers "
                  f"({', '.join(f'{k}: {v:.1e}' for k, v in m['inn']['inversion_error'].items())})."]
    lines.append("")
    return lines


def _kept_discussion(path: Path) -> str:
    """The hand-written discussion after ``DISCUSSION_MARK`` in an existing results file (kept on re-render)."""
    if not path.is_file():
        return ""
    text = path.read_text()
    return text[text.index(DISCUSSION_MARK):] if DISCUSSION_MARK in text else ""


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    """JSON without NaN/Infinity tokens: non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_markdown(folder: Path, results: dict[str, Any]) -> None:
    md_path = folder / "callahan2021.md"
    discussion = _kept_discussion(md_path)
    md_path.write_text(render_markdown(results) + ("\n" + discussion if discussion else ""))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    datasets = ("mnist", "cifar10") if args.dataset == "all" else (args.dataset,)
    command = "python -m analyses.callahan2021 " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    json_path = args.results / "callahan2021.json"
    if args.render_only:
        stored = json.loads(json_path.read_text())
        for dataset, out in stored.items():
            plot_all(out, args.figures, dataset)
        _write_markdown(args.results, stored)
        return 0
    for dataset in datasets:
        cfg = dataset_config(args, dataset)
        out = analyse_dataset(cfg)
        out.update(command=command, date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
                   device=str(resolve_device(cfg.device)), threads=torch.get_num_threads())
        # Read just before writing, so that runs of other datasets meanwhile are kept.
        results: dict[str, Any] = json.loads(json_path.read_text()) if json_path.is_file() else {}
        results[dataset] = _clean(json.loads(json.dumps(out, default=_json_default)))
        args.results.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
        _write_markdown(args.results, results)
        print(f"[{dataset}] done in {out['wall_seconds'] / 60:.1f} min; wrote {json_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
