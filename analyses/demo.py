"""The first run (``make demo``): an invertible and a classical autoencoder, analysed and compared.

Trains one small INN autoencoder (Nguyen et al. 2019) and one classical autoencoder on the
embedded scikit-learn 8×8 digits (seconds each), runs ``infoprobe analyze`` on both (UMAP on)
and ``infoprobe compare`` on the two analyses, then prints where the reports are and the three
numbers worth reading first. Each step is the command a user would type, run in this one process
so that UMAP's numba compilation is paid once. No file, no network; about 2–3 minutes of one CPU
core. ``--checkpoints`` analyses given checkpoints instead (e.g. trained MNIST models) on a few
hundred test images. The all-families tour is ``make demo-zoo`` (``analyses/demo_zoo.py``).

    python analyses/demo.py --out demo-output
    python analyses/demo.py --checkpoints a.pt b.pt --samples 300 --data-root ~/data
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from infoprobe.cli import main as infoprobe

__all__ = ["EPOCHS", "main"]

#: Epochs on digits (1,437 training images): the INN's test L1 has levelled off (0.165 after 6
#: epochs, 0.156 after 10) and the classical AE converges, in about 15 s and 5 s of one CPU core.
EPOCHS = {"inn-ae": 6, "classical-ae": 30}


def run(command: list[str]) -> None:
    print("\n$ infoprobe " + " ".join(command), flush=True)
    code = infoprobe(command)
    if code:
        raise SystemExit(f"demo: 'infoprobe {' '.join(command)}' failed with exit status {code}")


def _names(paths: list[Path]) -> list[str]:
    """Short, distinct run names: the checkpoint file names, or their folders' when those clash."""
    names = [p.stem for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}-{p.stem}" for p in paths]
    if len(set(names)) < len(names):
        names = [f"{i}-{name}" for i, name in enumerate(names)]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--checkpoints", type=Path, nargs="+", metavar="CKPT",
                        help="analyse these checkpoints instead of training on digits")
    parser.add_argument("--samples", type=int, default=None,
                        help="test images analysed (default: all 360 of digits; 300 with --checkpoints)")
    parser.add_argument("--data-root", type=Path, help="folder with MNIST / CIFAR-10 (with --checkpoints)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP embeddings")
    args = parser.parse_args(argv)

    if "OMP_NUM_THREADS" not in os.environ:
        # 8×8 images in batches of 64: a thread pool costs more than it saves, and on a busy
        # machine its spinning threads made training ten times slower in our measurements
        torch.set_num_threads(1)
    start = time.perf_counter()
    if args.checkpoints:
        checkpoints = list(args.checkpoints)
        names = _names(checkpoints)
        samples = args.samples or 300
    else:
        names, checkpoints = list(EPOCHS), []
        for family, epochs in EPOCHS.items():
            folder = args.out / family
            run(["train", family, "--dataset", "digits", "--epochs", str(epochs),
                 "--device", args.device, "--out", str(folder), "--seed", "0"])
            checkpoints.append(folder / "checkpoint.pt")
        samples = args.samples or 360
    analyses = []
    for name, ckpt in zip(names, checkpoints, strict=True):
        out = args.out / name / "analysis"
        command = ["analyze", str(ckpt), "--samples", str(samples), "--device", args.device,
                   "--out", str(out), "--seed", "0"]
        if args.data_root is not None:
            command += ["--data-root", str(args.data_root)]
        run(command + (["--no-umap"] if args.no_umap else []))
        analyses.append(out)
    compare = args.out / "compare"
    if len(analyses) > 1:
        run(["compare", *map(str, analyses), "--names", *names, "--out", str(compare)])
    print_ending(names, analyses, compare if len(analyses) > 1 else None, time.perf_counter() - start)
    return 0


def print_ending(names: list[str], analyses: list[Path], compare: Path | None, seconds: float) -> None:
    """Where the reports are and, per model, the three numbers worth reading first."""
    from infoprobe.results import AnalysisResult
    from infoprobe.summary import headline

    print(f"\ndemo: {len(analyses)} models analysed in {seconds:.0f} s. Open:")
    for name, folder in zip(names, analyses, strict=True):
        print(f"  {folder / 'report.html'}  ({name})")
    if compare is not None:
        print(f"  {compare / 'compare.html'}  (side by side)")
    print("Read first:")
    for name, folder in zip(names, analyses, strict=True):
        print(f"  {name}:")
        for quantity, value, what in headline(AnalysisResult.from_json(folder / "metrics.json")):
            print(f"    {quantity} = {value}  ({what})")


if __name__ == "__main__":
    sys.exit(main())
