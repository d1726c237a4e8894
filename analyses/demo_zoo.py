"""The zoo tour on the embedded default data: train a tiny model of every zoo family on the
scikit-learn 8×8 digits and analyze each, then compare them — all into one folder.

``make demo-zoo`` runs this (the short first run, ``make demo``, is ``analyses/demo.py``).
Each step is the command a user would type (``infoprobe train``, ``infoprobe analyze``,
``infoprobe compare``), run in this one process so that UMAP's numba compilation happens
once. Needs no file and no network; about 15 minutes on 2 CPU cores.

    python analyses/demo_zoo.py --out demo-zoo-output [--epochs 3] [--families inn-ae classical-ae]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import models
from infoprobe.cli import main as infoprobe

# Epochs per family on digits (1,437 images): enough for visible structure, small enough for
# the whole demo to stay within a few minutes on a 2-core CPU.
EPOCHS = {"inn-ae": 30, "classical-ae": 100, "pie": 40, "vae": 60, "wae": 60, "selfvae": 30}
ZOO = tuple(EPOCHS)


def run(command: list[str]) -> None:
    print("$ infoprobe " + " ".join(command), flush=True)
    code = infoprobe(command)
    if code:
        raise SystemExit(f"demo: 'infoprobe {' '.join(command)}' failed with exit status {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-zoo-output"), help="output folder")
    parser.add_argument("--families", nargs="+", default=list(ZOO), choices=ZOO,
                        help="zoo families to train and analyze (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every family (default: a per-family choice)")
    parser.add_argument("--samples", type=int, default=360, help="test images analyzed (digits has 360)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-umap", action="store_true", help="skip the UMAP embeddings")
    args = parser.parse_args(argv)

    missing = sorted(set(args.families) - set(models.available()))
    if missing:
        parser.error(f"families not available in this installation: {', '.join(missing)}")
    start = time.perf_counter()
    runs = []
    for family in args.families:
        folder = args.out / family
        epochs = args.epochs or EPOCHS[family]
        run(["train", family, "--dataset", "digits", "--epochs", str(epochs),
             "--device", args.device, "--out", str(folder), "--seed", "0"])
        analyze = ["analyze", str(folder / "checkpoint.pt"), "--samples", str(args.samples),
                   "--device", args.device, "--out", str(folder / "analysis"), "--seed", "0"]
        run(analyze + (["--no-umap"] if args.no_umap else []))
        runs.append(str(folder / "analysis"))
    if len(runs) > 1:
        run(["compare", *runs, "--names", *args.families, "--out", str(args.out / "compare")])
    print(f"demo: {len(runs)} models trained and analyzed in {time.perf_counter() - start:.0f} s; "
          f"open {args.out}/<family>/analysis/report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
