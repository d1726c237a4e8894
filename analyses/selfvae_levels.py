"""VAE (RealNVP prior) vs selfVAE-downscale on CIFAR-10 at reduced scale: bpd, RE and KL per level
next to the selfVAE paper's Table 1, and reconstructions in all five selfVAE modes.

Paper (Gatopoulos & Tomczak, seed 002, Table 1, CIFAR-10 test set, 512 importance samples):
VAE 3.51 bpd (RE 5540, KL 1966 nats), selfVAE-downscale 3.65 bpd (RE 6348, KL 1438 nats), with
32–42 M parameters trained on the full training set. This script trains far smaller networks on
the CIFAR-10 subset in ``../shared/data`` (4,000 training images) for a few epochs on a CPU, so its
numbers show the terms' shape per level, not the paper's values.

Usage (from the repository root)::

    python -m analyses.selfvae_levels --root ../shared/data            # reduced scale
    python -m analyses.selfvae_levels --root ../shared/data --quick    # smoke run (~1 min)
    python -m analyses.selfvae_levels --root DATA --scale paper --device cuda \
        --checkpoints runs/selfvae_levels --resume                      # GPU, full CIFAR-10

On a CPU the two models can train in parallel, one process each, and be evaluated afterwards::

    python -m analyses.selfvae_levels --root ../shared/data --epochs 40 --checkpoints runs/selfvae --resume --train-only vae-realnvp &
    python -m analyses.selfvae_levels --root ../shared/data --epochs 40 --checkpoints runs/selfvae --resume --train-only selfvae-downscale
    python -m analyses.selfvae_levels --root ../shared/data --epochs 40 --checkpoints runs/selfvae --resume   # evaluates both

``--kl-warmup-control EPOCHS`` adds a third model, the selfVAE trained with its KL weight rising
from 0 to 1 over EPOCHS epochs (the recipe key ``kl_warmup``; not the paper's recipe): a control
that tells whether a z the paper's objective leaves unused can carry information at this scale.

``--scale paper`` uses the zoo's CIFAR-10 networks (the paper's 16×8×8 latents and RealNVP prior,
about 6–8 M parameters, not the paper's 32–42 M), the full training and test sets, the recipe's
100 epochs and 512 importance samples; it needs the standard CIFAR-10 files in ``--root``.

Writes ``figures/selfvae_modes.png``, ``figures/selfvae_terms.png`` and
``analyses/results/selfvae_levels.md`` / ``.json`` (numbers, command, scale, timings); with
``--quick`` the same names with a ``_quick`` suffix.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

import models
from infoprobe import load_dataset

REPO = Path(__file__).resolve().parents[1]

PAPER = {  # Table 1 (CIFAR-10): bpd, RE, KL in nats per image
    "vae-realnvp": {"bpd": 3.51, "re": 5540, "kl": 1966},
    "selfvae-downscale": {"bpd": 3.65, "re": 6348, "kl": 1438},
}

SCALES: dict[str, dict[str, Any]] = {
    # Latents stay at the paper's 16×8×8; the networks are much narrower than the paper's.
    "reduced": {"net": {"width": 24, "growth": 12, "dense_layers": 2, "flow_hidden": 32,
                        "flow_blocks": 2, "flow_couplings": 4},
                "epochs": 6, "batch_size": 32, "train": 4000, "test": 1000, "bpd_images": 200,
                "n_importance": 64},
    "paper": {"net": {}, "epochs": 100, "batch_size": 64, "train": 50000, "test": 10000,
              "bpd_images": 10000, "n_importance": 512},
    "quick": {"net": {"width": 8, "growth": 4, "dense_layers": 1, "flow_hidden": 8,
                      "flow_blocks": 1, "flow_couplings": 2},
              "epochs": 1, "batch_size": 32, "train": 256, "test": 64, "bpd_images": 16,
              "n_importance": 4},
}


def _terms(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 100,
           repeats: int = 2) -> dict[str, float]:
    """Test-set averages of every term of ``model.loss`` (nats per image), ``repeats`` samples."""
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for _ in range(repeats):
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size]
                for key, value in model.loss(x).items():
                    sums[key] = sums.get(key, 0.0) + float(value) * len(x)
                n += len(x)
    return {k: v / n for k, v in sums.items()}


def _z_gain(model: Any, images: torch.Tensor, *, batch_size: int = 100) -> dict[str, float]:
    """Test-set means of :meth:`SelfVAE.z_gain` (nats per image) and the standard error of the gain."""
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            for key, value in model.z_gain(images[start:start + batch_size]).items():
                parts.setdefault(key, []).append(value.double().cpu())
    cat = {k: torch.cat(v) for k, v in parts.items()}
    out = {k: float(v.mean()) for k, v in cat.items()}
    out["z_gain_se"] = float(cat["z_gain"].std() / math.sqrt(len(cat["z_gain"])))
    return out


def marginal_histogram_bpd(train: torch.Tensor, test: torch.Tensor) -> float:
    """Bits per dim of ``test`` under independent pixels: each value drawn from its channel's
    256-level histogram over every position of the ``train`` images (add-one smoothed). A model
    that has learned no spatial structure at all; images in [0, 1] from 8-bit values."""
    bits = 0.0
    for c in range(train.shape[1]):
        counts = torch.bincount((train[:, c] * 255).round().long().flatten(), minlength=256).double() + 1.0
        log2_p = (counts / counts.sum()).log2()
        bits -= float(log2_p[(test[:, c] * 255).round().long().flatten()].sum())
    return bits / test.numel()


def _bpd(model: Any, images: torch.Tensor, *, n_importance: int, batch_size: int = 8) -> float:
    total = 0.0
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        total += float(model.bpd(x, n_importance=n_importance)) * len(x)
    return total / len(images)


def _grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols + 1.6, 1.15 * len(rows)))
    for r, (label, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            img = imgs[c].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img,
                      cmap="gray" if img.shape[2] == 1 else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _terms_figure(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, name in zip(axes[0], results, strict=True):
        terms = {k: v for k, v in results[name]["test_terms"].items()
                 if k.startswith(("re_", "kl_")) or k in ("re", "kl")}
        if name.startswith("vae"):
            terms = {"re_x": terms["re"], "kl_z": terms["kl"]}
        labels = list(terms)
        ax.bar(labels, [terms[k] for k in labels],
               color=["tab:blue" if k.startswith("re") else "tab:orange" for k in labels])
        for i, k in enumerate(labels):
            ax.text(i, terms[k], f"{terms[k]:.0f}", ha="center", va="bottom", fontsize=8)
        paper = f" (paper {PAPER[name]['bpd']:.2f})" if name in PAPER else ""
        ax.set_title(f"{name}: {results[name]['bpd']:.2f} bpd{paper}", fontsize=9)
        ax.set_ylabel("nats per image (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: the selfVAE trained with a KL warm-up (``--kl-warmup-control``), beside the paper's two models
WARMUP = "selfvae-downscale-klwarmup"

#: test images the trainer evaluates after each epoch (the learning curve's monitor)
MONITOR_IMAGES = 200


def _elbo_bpd(nats: float, dims: int) -> float:
    return nats / (dims * math.log(2))


def _curves_figure(results: dict[str, dict[str, Any]], monitor: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, r in results.items():
        epochs = [h["epoch"] for h in r["history"]]
        ax.plot(epochs, [_elbo_bpd(h["train_loss"], r["dims"]) for h in r["history"]], "--", label=f"{name} train")
        if all("test_loss" in h for h in r["history"]):
            ax.plot(epochs, [_elbo_bpd(h["test_loss"], r["dims"]) for h in r["history"]], "-o", ms=3,
                    label=f"{name} test ({monitor} images)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO, bits per dim")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from analyses.callahan2021 import write_page
    from models.training import train  # the zoo's trainer (Model zoo I)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"),
                        help="folder with cifar10.npz or the CIFAR-10 python batches")
    parser.add_argument("--quick", action="store_true", help="tiny networks, 1 epoch, few images")
    parser.add_argument("--scale", choices=("reduced", "paper"), default="reduced",
                        help="reduced (CPU, default) or paper (GPU, full CIFAR-10); --quick overrides")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--n-importance", type=int, default=None)
    parser.add_argument("--train-images", type=int, default=None, help="training subset size")
    parser.add_argument("--test-images", type=int, default=None,
                        help="test images for the ELBO terms")
    parser.add_argument("--bpd-images", type=int, default=None,
                        help="test images for the importance-sampled bpd")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "analyses" / "results"))
    parser.add_argument("--figures", default=str(REPO / "figures"))
    parser.add_argument("--checkpoints", default=None,
                        help="folder for <model>.pt checkpoints (default: none kept)")
    parser.add_argument("--resume", action="store_true",
                        help="continue each model from its checkpoint in --checkpoints")
    parser.add_argument("--kl-warmup-control", type=float, default=None, metavar="EPOCHS",
                        help=f"also train and evaluate {WARMUP}: the selfVAE with the KL weight rising "
                             "from 0 to 1 over EPOCHS epochs (not the paper's recipe; a control for a "
                             "collapsing z)")
    parser.add_argument("--train-only", choices=("vae-realnvp", "selfvae-downscale", WARMUP), default=None,
                        help="train this model into --checkpoints and stop (no evaluation): run one "
                             "per process to train both in parallel, then once without it to evaluate")
    args = parser.parse_args(argv)
    if args.train_only and args.checkpoints is None:
        parser.error("--train-only needs --checkpoints (the folder the trained model is kept in)")
    if args.train_only == WARMUP and args.kl_warmup_control is None:
        parser.error(f"--train-only {WARMUP} needs --kl-warmup-control EPOCHS")

    scale_name = "quick" if args.quick else args.scale
    scale = dict(SCALES[scale_name])
    if args.epochs is not None:
        scale["epochs"] = args.epochs
    for key in ("n_importance", "train", "test", "bpd_images"):
        value = getattr(args, {"train": "train_images", "test": "test_images"}.get(key, key))
        if value is not None:
            scale[key] = value
    torch.manual_seed(args.seed)
    train_data = load_dataset("cifar10", split="train", root=args.root).subset(scale["train"],
                                                                               seed=args.seed)
    test_data = load_dataset("cifar10", split="test", root=args.root).subset(scale["test"],
                                                                             seed=args.seed)
    out, figures = Path(args.out), Path(args.figures)
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    selfvae_config = {"dataset": "cifar10", "transform": "downscale", "levels": 1, "prior": "realnvp",
                      **scale["net"]}
    specs: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
        "vae-realnvp": ("vae", {"dataset": "cifar10", "prior": "realnvp", **scale["net"]}, {}),
        "selfvae-downscale": ("selfvae", selfvae_config, {}),
    }
    if args.kl_warmup_control is not None:
        specs[WARMUP] = ("selfvae", selfvae_config, {"kl_warmup": args.kl_warmup_control})
    results: dict[str, dict[str, Any]] = {}
    trained: dict[str, Any] = {}
    for name, (registry, config, recipe) in specs.items():
        if args.train_only not in (None, name):
            continue
        torch.manual_seed(args.seed)  # each model's init is its own, whatever trained before it
        model = models.build(registry, **config)
        t0 = time.time()
        # Per-epoch test loss on a 200-image subset (monitoring only; the table uses all).
        res = train(model, train_data, test_data=test_data.subset(MONITOR_IMAGES, seed=args.seed),
                    epochs=scale["epochs"],
                    batch_size=scale["batch_size"], device=args.device, seed=args.seed,
                    out=None if args.checkpoints is None else Path(args.checkpoints) / f"{name}.pt",
                    resume=args.resume, progress=False, recipe=recipe)
        train_seconds = time.time() - t0
        if args.train_only:
            print(f"{name}: trained {len(res.history)} epochs in {train_seconds:.0f} s", flush=True)
            return 0
        model = res.model.eval()
        device = next(model.parameters()).device
        test_images = test_data.images.to(device)
        t0 = time.time()
        terms = _terms(model, test_images)
        # as many training images as test images: the part of the test ELBO lost to generalisation
        train_terms = _terms(model, train_data.images[:len(test_images)].to(device))
        z_gain = _z_gain(model, test_images) if hasattr(model, "z_gain") else None
        bpd = _bpd(model, test_images[:scale["bpd_images"]], n_importance=scale["n_importance"])
        results[name] = {
            "registry": registry, "config": model.config,
            "parameters": sum(p.numel() for p in model.parameters()),
            # From the per-epoch clock, so a model trained earlier (--resume) keeps its real time.
            "recipe": res.recipe,
            "train_seconds": round(sum(h.get("seconds") or 0.0 for h in res.history) or train_seconds, 1),
            "eval_seconds": round(time.time() - t0, 1),
            "test_terms": terms, "bpd": bpd, "z_gain": z_gain,
            "dims": math.prod(model.input_shape),
            "elbo_bpd": _elbo_bpd(terms["loss"], math.prod(model.input_shape)),
            "train_terms": train_terms,
            "train_elbo_bpd": _elbo_bpd(train_terms["loss"], math.prod(model.input_shape)),
            "history": res.history,
        }
        trained[name] = model
        print(f"{name}: bpd {bpd:.3f} (IS {scale['n_importance']}), ELBO terms "
              + ", ".join(f"{k} {v:.1f}" for k, v in terms.items()), flush=True)

    x = test_data.images[:8].to(next(trained["vae-realnvp"].parameters()).device)
    gen = torch.Generator(device=x.device).manual_seed(args.seed)
    self_vae, vae = trained["selfvae-downscale"], trained["vae-realnvp"]
    modes = self_vae.modes(x, generator=gen)
    y_up = torch.nn.functional.interpolate(modes["y"], scale_factor=2, mode="nearest")
    rows = [("original x", x), ("y = d(x)", y_up),
            ("generation", modes["generation"]),
            ("cond. generation", modes["conditional_generation"]),
            ("cond. reconstr.", modes["conditional_reconstruction"]),
            ("reconstruction 1", modes["reconstruction_1"]),
            ("reconstruction 2", modes["reconstruction_2"]),
            ("VAE reconstr.", vae.reconstruct(x)),
            ("VAE samples", vae.sample(8, generator=gen))]
    if WARMUP in trained:  # does its z matter? z from the prior vs z inferred from x
        warm = trained[WARMUP].modes(x, generator=gen)
        rows += [("warm-up cond. gen.", warm["conditional_generation"]),
                 ("warm-up cond. rec.", warm["conditional_reconstruction"])]
    suffix = "_quick" if args.quick else ""
    with torch.no_grad():
        _grid(rows, figures / f"selfvae_modes{suffix}.png",
              f"CIFAR-10 test images, selfVAE-downscale modes and VAE+RealNVP ({scale_name} scale)")
    _terms_figure(results, figures / f"selfvae_terms{suffix}.png")
    _curves_figure(results, min(MONITOR_IMAGES, scale["test"]), figures / f"selfvae_learning_curves{suffix}.png")

    command = "python -m analyses.selfvae_levels " + " ".join(sys.argv[1:] if argv is None
                                                               else argv)
    summary = {"command": command, "scale": scale_name, "settings": scale,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "torch": torch.__version__, "device": str(device), "paper": PAPER,
               "marginal_histogram_bpd": marginal_histogram_bpd(train_data.images, test_data.images),
               "results": results}
    (out / f"selfvae_levels{suffix}.json").write_text(json.dumps(summary, indent=2, default=str))
    write_page(out / f"selfvae_levels{suffix}.md", _markdown(summary))
    print(f"wrote {out / f'selfvae_levels{suffix}.md'} and figures in {figures}")
    return 0


def _markdown(summary: dict[str, Any]) -> str:
    from analyses.pie_manifold import PLATEAU_NOISE_Z, plateau, plateau_word

    s, res = summary["settings"], summary["results"]
    # the epochs each model has trained (a resumed model may have trained more than --epochs)
    done = {name: max((h["epoch"] for h in r["history"]), default=0) for name, r in res.items()}
    epochs = (f"{s['epochs']} epochs" if set(done.values()) == {s["epochs"]}
              else "epochs " + ", ".join(f"{n} {e}" for n, e in done.items()))
    lines = [
        f"# selfVAE levels on CIFAR-10 ({summary['scale']} scale)", "",
        f"Command: `{summary['command']}`  ",
        f"Date: {summary['date']}, torch {summary['torch']}, {summary.get('device', 'cpu')}.", "",
        f"Scale: **{summary['scale']}**. Training on {s['train']} CIFAR-10 training images "
        f"(at most the set in --root), {epochs}, batch {s['batch_size']}, "
        "Adamax lr 2e-3 (the paper's optimiser); networks "
        + (", ".join(f"{k}={v}" for k, v in s["net"].items()) or "at the zoo's CIFAR-10 defaults")
        + " with the paper's 16×8×8 latents. Test terms: negative-ELBO terms averaged over "
        f"{s['test']} test images (2 posterior samples each). bpd: importance-sampled NLL with "
        f"{s['n_importance']} samples on the first {s['bpd_images']} of them (the paper: 512 "
        "samples, the full test set, 32–42 M parameters, many more epochs).", "",
        "| model | params | bpd (IS) | ELBO bpd | ELBO bpd, train images | RE | KL | paper bpd | paper RE | paper KL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in res.items():
        t, p = r["test_terms"], summary["paper"].get(name, {"bpd": "–", "re": "–", "kl": "–"})
        train_bpd = f"{r['train_elbo_bpd']:.3f}" if "train_elbo_bpd" in r else "–"
        lines.append(f"| {name} | {r['parameters'] / 1e6:.2f} M | {r['bpd']:.3f} | "
                     f"{r['elbo_bpd']:.3f} | {train_bpd} | {t['re']:.0f} | {t['kl']:.0f} | {p['bpd']} | "
                     f"{p['re']} | {p['kl']} |")
    if "marginal_histogram_bpd" in summary:
        lines += ["", "ELBO bpd, train images: the same terms on as many training images as test images, "
                  "so the difference from the test column is what the model lost to generalisation. "
                  "For scale: independent pixels drawn from the training set's per-channel histogram "
                  f"(no spatial structure learned) score **{summary['marginal_histogram_bpd']:.3f} bpd** "
                  "on these test images, and uniform 8-bit values 8 bpd."]
    lines += ["", "Terms per level (nats per image, test set; RE = −E log p(·|·); KL_z is the "
              "closed-form Gaussian KL, KL of the RealNVP prior a one-sample estimate of "
              "log q − log p):", "",
              "| model | term | value |", "| --- | --- | ---: |"]
    for name, r in res.items():
        for k, v in r["test_terms"].items():
            if k.startswith(("re_", "kl_")):
                lines.append(f"| {name} | {k} | {v:.1f} |")
    for name, r in res.items():
        g = r.get("z_gain")
        if g:
            kl_z = r["test_terms"][f"kl_z{r['config']['levels']}"]  # the last level's z, the one z_gain measures
            lines += ["", f"What z carries beyond y ({name}, `SelfVAE.z_gain`, {s['test']} test images, nats "
                      f"per image): −log p(x | y, z) is {g['re_x_posterior']:.1f} with z from the posterior "
                      f"q(z | x) and {g['re_x_prior']:.1f} with z drawn from the conditional prior p(z | y, u): "
                      f"a gain of **{g['z_gain']:.1f} ± {g['z_gain_se']:.1f}** (standard error), for a rate of "
                      f"KL_z = {kl_z:.1f}. A gain near 0 means x is "
                      "decoded from y alone. The gain is not an amount of information: the information z "
                      "carries about x beyond y is at most the rate KL_z, while the gain also grows when the "
                      "conditional prior draws z unlike the posterior's, so it can exceed the rate."]
    lines += ["", "Learning curves (`figures/selfvae_learning_curves.png`): negative ELBO in bits per dim on "
              f"{min(MONITOR_IMAGES, s['test'])} test images after each epoch (the trainer's monitor; one posterior sample, so noisier "
              "than the table). Late share: the part of the net change made over the last 20 % of the "
              "epochs (`analyses.pie_manifold.plateau`; plateau when ≤ 0.05, or \"yes (noise)\" when a "
              f"line through the last epochs has a slope less than {PLATEAU_NOISE_Z:g} standard errors from flat).", "",
              "| model | epochs | test bpd first → last | every epoch | late share | plateau |",
              "| --- | ---: | --- | --- | ---: | --- |"]
    for name, r in res.items():
        curve = [_elbo_bpd(h["test_loss"], r["dims"]) for h in r["history"] if "test_loss" in h]
        if not curve:
            continue
        reading = plateau(curve) if len(curve) >= 3 else None
        lines.append(f"| {name} | {len(curve)} | {curve[0]:.3f} → {curve[-1]:.3f} | "
                     + ", ".join(f"{v:.2f}" for v in curve) + " | "
                     + (f"{reading['late_share']:.3f} | {plateau_word(reading)} |"
                        if reading else "– | too short to tell |"))
    rates = [(name, key) for name, r in res.items() for key in (r["history"][0] if r["history"] else {})
             if key.startswith("test_kl")]
    if rates:
        lines += ["", f"The rate per level along training (KL in nats per image on the same "
                  f"{min(MONITOR_IMAGES, s['test'])} monitor images, one posterior sample, after each epoch):", "",
                  "| model | term | every epoch |", "| --- | --- | --- |"]
        lines += [f"| {name} | {key.removeprefix('test_')} | "
                  + ", ".join(f"{h[key]:.1f}" for h in res[name]["history"] if key in h) + " |"
                  for name, key in rates]
    lines += ["", "Training time: " + ", ".join(
        f"{n} {r['train_seconds']:.0f} s (+{r['eval_seconds']:.0f} s evaluation)"
        for n, r in res.items()) + ".", "",
        "Figures: `figures/selfvae_modes.png` (original, y, the five modes, VAE reconstructions "
        "and samples), `figures/selfvae_terms.png` (terms per level), "
        "`figures/selfvae_learning_curves.png`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
