"""Bottleneck comparison of Nguyen, Ardizzone & Köthe (2019): INN vs classical autoencoder.

Trains the INN autoencoder (``inn-ae``) and the classical autoencoder (``classical-ae``) for a
list of bottleneck sizes k and plots the test reconstruction error, mean |x̂ − x| over pixels in
[0, 1], against k. The paper's claim: the INN is similar to the classical autoencoder at small
k and better at large k, with fewer parameters.

Usage (from the repository root)::

    python -m analyses.bottleneck_sweep --data-root ../shared/data            # reference recipes
    python -m analyses.bottleneck_sweep --data-root ../shared/data --quick    # CPU, reduced scale

Writes ``figures/bottleneck_sweep_<dataset>.png`` and ``analyses/results/bottleneck_sweep.md``
(and ``.json``) with the numbers, the exact command and the scale used. Every run keeps its
checkpoint in ``--runs`` (default ``runs/bottleneck_sweep``) and is resumed if present, so an
interrupted sweep continues where it stopped. Uses only the public API: ``models.build``,
``models.training.train``, ``infoprobe.load_dataset``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from analyses.callahan2021 import write_page  # noqa: E402
from infoprobe.data import load_dataset  # noqa: E402
from models.training import train  # noqa: E402

MODELS = ("inn-ae", "classical-ae")
FULL_KS = {"mnist": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
           "cifar10": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
           "digits": [1, 2, 4, 8, 16, 32, 64]}
# --quick: a subset and a few epochs. The MNIST INN trains at ~210 images/s on 2 idle cores, so
# 12,000 images x 2 epochs (750 steps of 32, enough to leave the all-black solution) cost ~2 min
# per bottleneck size; the whole sweep ~15 min.
QUICK = {"ks": [2, 4, 8, 16, 32, 64], "subset": 12000, "test_subset": 1000, "epochs": 2, "batch_size": 32}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=sorted(FULL_KS))
    p.add_argument("--data-root", help="folder with MNIST / CIFAR-10 (default: $INFOPROBE_DATA)")
    p.add_argument("--quick", action="store_true",
                   help=f"reduced scale: {json.dumps(QUICK)} unless given explicitly")
    p.add_argument("--ks", type=int, nargs="+", help="bottleneck sizes (default: the paper's list)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--epochs", type=int, help="epochs (default: each model's recipe)")
    p.add_argument("--batch-size", type=int, help="batch size (default: each model's recipe)")
    p.add_argument("--subset", type=int, help="train on a seeded subset of N images")
    p.add_argument("--test-subset", type=int, help="evaluate on a seeded subset of N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "bottleneck_sweep"), help="folder of the per-run checkpoints")
    p.add_argument("--results", default=str(ROOT / "analyses" / "results" / "bottleneck_sweep"),
                   help="results path without suffix (.md and .json are written)")
    p.add_argument("--figures", default=str(ROOT / "figures"), help="folder of the figure")
    args = p.parse_args(argv)
    if args.quick:
        for key in ("ks", "subset", "test_subset", "epochs", "batch_size"):
            if getattr(args, key) is None:
                setattr(args, key, QUICK[key])
    args.ks = args.ks or FULL_KS[args.dataset]
    return args


def run_sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    train_data = load_dataset(args.dataset, split="train", root=args.data_root)
    test_data = load_dataset(args.dataset, split="test", root=args.data_root)
    rows = []
    for name in args.models:
        for k in args.ks:
            torch.manual_seed(args.seed)
            model = models.build(name, dataset=args.dataset, bottleneck=k)
            start = time.perf_counter()
            result = train(model, train_data, test_data=test_data, epochs=args.epochs,
                           batch_size=args.batch_size, subset=args.subset,
                           test_subset=args.test_subset, seed=args.seed, device=args.device,
                           out=Path(args.runs) / f"{args.dataset}-{name}-k{k}", resume=True,
                           progress=False)
            final = result.final
            row = {
                "model": name, "k": k,
                "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "test_l1": final.get("test_l1"), "train_l1": final.get("train_l1"),
                "test_loss": final.get("test_loss"), "epochs": result.epochs_done,
                "recipe": result.recipe, "seconds_this_call": time.perf_counter() - start,
                "images_per_second": final.get("images_per_second"),
            }
            rows.append(row)
            print(f"{name:>13} k={k:<5} test L1 {row['test_l1']:.4f}  train L1 {row['train_l1']:.4f}  "
                  f"({row['seconds_this_call']:.0f} s)", flush=True)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=150)
    styles = {"inn-ae": ("INN autoencoder", "o-"), "classical-ae": ("classical autoencoder", "s--")}
    for name, (label, style) in styles.items():
        mine = sorted((r for r in rows if r["model"] == name), key=lambda r: r["k"])
        if mine:
            params = mine[0]["parameters"]
            ax.plot([r["k"] for r in mine], [r["test_l1"] for r in mine], style,
                    label=f"{label} ({params / 1e6:.2f} M params at k={mine[0]['k']})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bottleneck size k")
    ax.set_ylabel("test reconstruction error, mean |x̂ − x|")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def scale_text(args: argparse.Namespace) -> str:
    return (f"dataset {args.dataset}; training images: {args.subset or 'all'}; test images: "
            f"{args.test_subset or 'all'}; epochs: {args.epochs or 'recipe'}; batch size: "
            f"{args.batch_size or 'recipe'}; seed {args.seed}; bottlenecks {args.ks}")


def write_results(rows: list[dict[str, Any]], args: argparse.Namespace, command: str,
                  figure: Path, seconds: float) -> None:
    base = Path(args.results)
    base.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": command, "scale": scale_text(args), "quick": bool(args.quick),
            "dataset": args.dataset, "wall_seconds": seconds, "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "figure": str(figure.relative_to(ROOT) if figure.is_relative_to(ROOT) else figure)}
    base.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    by = {(r["model"], r["k"]): r for r in rows}
    lines = [
        "# Bottleneck sweep: INN vs classical autoencoder",
        "",
        "Test reconstruction error mean |x̂ − x| (pixels in [0, 1]) against the bottleneck size k,",
        "the comparison of Nguyen, Ardizzone & Köthe (2019). Produced by `analyses/bottleneck_sweep.py`.",
        "",
        f"- Command: `{command}`",
        *(f"- Rows of {m} from an earlier run: `{c}`" for m, c in sorted(
            {(r["model"], r["command"]) for r in rows if r.get("command", command) != command})),
        f"- Scale: {meta['scale']}",
        f"- Wall time: {seconds / 60:.1f} min on {meta['threads']} torch thread(s), torch {meta['torch']}",
        f"- Figure: `{meta['figure']}`",
        "",
        "| k | INN test L1 | classical test L1 | INN train L1 | classical train L1 |",
        "|---:|---:|---:|---:|---:|",
    ]

    def fmt(model: str, k: int, key: str) -> str:
        r = by.get((model, k))
        return f"{r[key]:.4f}" if r and r.get(key) is not None else "–"

    for k in args.ks:
        lines.append(f"| {k} | {fmt('inn-ae', k, 'test_l1')} | {fmt('classical-ae', k, 'test_l1')} | "
                     f"{fmt('inn-ae', k, 'train_l1')} | {fmt('classical-ae', k, 'train_l1')} |")
    params = {m: next((r["parameters"] for r in rows if r["model"] == m), None) for m in MODELS}
    lines += ["", "Trainable parameters: " + ", ".join(
        f"{m} {p:,}" + (" at the smallest k (grows with k)" if m == "classical-ae" else " (independent of k)")
        for m, p in params.items() if p is not None) + "."]
    if args.quick:
        lines += ["", "This is the reduced `--quick` scale (a training subset and a few epochs), far below",
                  "the reference recipes (MNIST: 60,000 images, 10 epochs for the INN, 100 for the classical",
                  "autoencoder); the numbers show the trend at this scale only, not the paper's values."]
    write_page(base.with_suffix(".md"), "\n".join(lines) + "\n")


def kept_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows of the models not run this time, from the previous results at the same scale: a
    re-run of one model (``--models classical-ae``) keeps the other's column. Each row keeps
    the command that produced it."""
    previous = Path(args.results).with_suffix(".json")
    if not previous.is_file():
        return []
    old = json.loads(previous.read_text())
    if old.get("scale") != scale_text(args):
        return []
    return [{**r, "command": r.get("command", old["command"])} for r in old["rows"] if r["model"] not in args.models]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python -m analyses.bottleneck_sweep " + shlex.join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    rows = run_sweep(args)
    seconds = time.perf_counter() - start
    kept = kept_rows(args)
    if kept:
        print(f"kept {len(kept)} rows of {sorted({r['model'] for r in kept})} from the previous run "
              f"({kept[0]['command']})")
    for r in rows:
        r["command"] = command
    rows = kept + rows
    figure = plot(rows, Path(args.figures) / f"bottleneck_sweep_{args.dataset}.png",
                  title=f"{args.dataset}: {args.subset or 'all'} training images, "
                        f"{args.epochs or 'recipe'} epochs, test on {args.test_subset or 'all'}")
    write_results(rows, args, command, figure, seconds)
    print(f"wrote {figure}, {Path(args.results).with_suffix('.md')} and .json ({seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
