"""``infoprobe analyze CHECKPOINT``: per-layer entropy, relative entropy, input/output KL,
information plane and UMAP of a trained autoencoder, written as metrics.json, layers.csv,
figures/*.png and report.html. A thin layer over :func:`infoprobe.analysis.analyze`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

HELP = "analyse a checkpoint layer by layer: entropy, relative entropy, KL, info plane, UMAP"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint (.pt) written by 'infoprobe train' or a state_dict")
    add_model_data_options(parser)
    parser.add_argument("--estimator", action="append", metavar="ROLE=METHOD(...)", dest="estimators",
                        help="an estimator, repeatable: entropy=knn(k=5), kl=histogram(bins=30, edges='shared'), "
                        "mi_input=noisy(scale=0.3), mi_label=probe; roles entropy, kl, mi_input, mi_label "
                        "(default: the honest default set, see the README)")
    parser.add_argument("--preset", choices=["callahan2021"],
                        help="reproduce the paper only: pooled-histogram entropy and KL")
    parser.add_argument("--layers", nargs="+", metavar="GLOB",
                        help="record only modules whose names match these glob patterns")
    parser.add_argument("--exclude", nargs="+", metavar="GLOB", default=(),
                        help="do not record modules whose names match these glob patterns")
    parser.add_argument("--joint-samples", type=int, default=1000, metavar="N",
                        help="rows used by the joint estimators and mutual information (default: %(default)s)")
    parser.add_argument("--ci", type=float, default=0.95, help="interval level (default: %(default)s)")
    parser.add_argument("--n-boot", type=int, default=30, metavar="B",
                        help="resamples for the intervals (default: %(default)s)")
    parser.add_argument("--no-exact", action="store_true",
                        help="skip the exact entropy change of invertible blocks")
    parser.add_argument("--out", type=Path, help="output folder (default: <checkpoint>_analysis next to it)")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP embedding")
    parser.add_argument("--wide", action="store_true",
                        help="print every estimate with its interval (default: a table that fits 120 columns)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def add_model_data_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``analyze`` and ``embed``: which model, which data, where to run."""
    parser.add_argument("--model", metavar="MODULE:FACTORY",
                        help="build the model with this factory (package.module:function) instead of "
                        "the zoo registry; the checkpoint may then be a bare state_dict")
    parser.add_argument("--dataset", help="dataset name (default: the one named in the checkpoint)")
    parser.add_argument("--data-root", type=Path, help="folder with the dataset files ($INFOPROBE_DATA)")
    parser.add_argument("--download", action="store_true",
                        help="download missing MNIST / CIFAR-10 files (checksums verified)")
    parser.add_argument("--split", default="test", choices=["train", "test"], help="(default: %(default)s)")
    parser.add_argument("--samples", type=int, metavar="N", help="analyse a seeded random subset of N images")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, metavar="B", help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every subsample (default: %(default)s)")


def _import_factory(spec: str) -> Any:
    from infoprobe.errors import InfoprobeError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InfoprobeError(f"Expected --model as package.module:factory, got {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        # a user's own module in the working directory (the console script does not put it on the path)
        if os.getcwd() in sys.path:
            raise InfoprobeError(f"Cannot import module {module_name!r} given in --model {spec}.") from None
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            raise InfoprobeError(
                f"Cannot import module {module_name!r} given in --model {spec}; run from the folder "
                "that holds it or install it."
            ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise InfoprobeError(f"Module {module_name!r} has no callable {attr!r} (from --model {spec}).")
    return factory


def load_model(path: str | os.PathLike[str], *, model_spec: str | None = None) -> tuple[Any, Any]:
    """The checkpoint and its model (on the CPU, in eval mode), via the registry or ``model_spec``."""
    from infoprobe.checkpoint import build_model, load

    ckpt = load(path)
    factory = None if model_spec is None else _import_factory(model_spec)
    return ckpt, build_model(ckpt, factory=factory)


def load_data(ckpt: Any, args: argparse.Namespace) -> Any:
    """The dataset split to analyse: ``--dataset`` or the one named in the checkpoint."""
    from infoprobe.data import load_dataset
    from infoprobe.errors import InfoprobeError

    name = args.dataset or (ckpt.dataset or {}).get("name")
    if not name:
        raise InfoprobeError(
            f"{ckpt.path} names no dataset; pass --dataset (digits, mnist, cifar10 or synthetic)."
        )
    return load_dataset(name, split=args.split, root=args.data_root, download=args.download)


def run(args: argparse.Namespace) -> int:
    from infoprobe.analysis import analyze

    t0 = time.perf_counter()
    ckpt, model = load_model(args.checkpoint, model_spec=args.model)
    data = load_data(ckpt, args)
    out = args.out or Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_analysis")
    progress = not args.quiet and sys.stderr.isatty()
    result = analyze(
        model, data, samples=args.samples, estimators=args.estimators, preset=args.preset,
        layers=args.layers, exclude=args.exclude, device=args.device, batch_size=args.batch_size,
        seed=args.seed, umap=not args.no_umap, progress=progress, joint_samples=args.joint_samples,
        ci=args.ci, n_boot=args.n_boot, exact=not args.no_exact,
        model_info={"checkpoint": str(Path(args.checkpoint).resolve())},
    )
    files = write_outputs(result, out)
    if not args.quiet:
        print_summary(result, wide=args.wide)
        print(f"wrote {', '.join(sorted(p.name for p in files))} in {out} "
              f"({time.perf_counter() - t0:.1f} s)")
        print(f"open {out / 'report.html'}")
    return 0


def write_outputs(result: Any, out: Path) -> list[Path]:
    """metrics.json, layers.csv, figures/*.png and report.html in ``out``."""
    from infoprobe.plotting import plot_all
    from infoprobe.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    figures = plot_all(result, out / "figures")
    files = [result.to_json(out / "metrics.json"), result.to_csv(out / "layers.csv")]
    files.append(write_report(result, out / "report.html", figures))
    return files + list(figures.values())


def print_summary(result: Any, *, wide: bool = False) -> None:
    """The per-layer table (120 columns unless ``wide``), the headline numbers and the legend."""
    from infoprobe.summary import STATUS_LEGEND, fit_table, headline, interval_schemes, layer_table

    header, rows = layer_table(result, wide=wide)
    for line in fit_table(header, rows, width=10_000 if wide else 120):
        print(line)
    print("marks: " + "; ".join(f"[{m}] {text.split(':')[0]}" for m, text in STATUS_LEGEND.items())
          + " (reasons in report.html and layers.csv)")
    print(f"intervals: {interval_schemes(result)}")
    for method, est in result.globals.kl_data_reconstruction.items():
        print(f"KL(data ‖ reconstruction) [{method}]: {est.text('.4g')} nats")
    print("read first:")
    for name, value, what in headline(result):
        print(f"  {name}: {value}  ({what})")
    for w in result.warnings:
        print(f"warning: {w}")
