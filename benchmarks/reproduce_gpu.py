"""Reproduce the committed analyses at full scale on a GPU (``make reproduce-gpu``).

    python benchmarks/reproduce_gpu.py                 # run everything on cuda
    python benchmarks/reproduce_gpu.py --dry-run       # print the commands, run nothing

Parts, in order (``--parts`` picks some):

- ``mnist``: the Callahan & Paskett (2021) recipe. Every model of ``analyses/callahan2021.py``
  (INN and classical AE at k = 20 and the sweep k ∈ {4, 20, 64}) is trained by
  ``infoprobe train --resume`` into the folder that script reads, INN 10 epochs with milestones
  8, 10 and classical AE 100 epochs (Adam, batch 128, the reference recipes), on all 60,000
  training images; then ``python -m analyses.callahan2021 --reuse`` analyses the trained models
  on the full test set and writes ``analyses/results/callahan2021.{json,md}`` and the figures.
- ``cifar10``: the same for CIFAR-10 (k = 64, sweep {16, 64, 256}; INN 15 epochs, milestones
  12, 15; classical 30 epochs), only when the standard files (``cifar-10-batches-py/``, the full
  set) are in the data root; skipped otherwise (``cifar10.npz`` there is a 4,000-image subset).
- ``pie``: ``analyses/pie_manifold.py`` at its paper-scale recipe (no ``--quick``: all MNIST,
  the recipes' epochs), checkpoints kept in ``runs/pie_manifold`` and resumed.
- ``selfvae``: ``analyses/selfvae_levels.py --scale paper`` (full CIFAR-10, 100 epochs, 512
  importance samples), checkpoints in ``runs/selfvae_levels``, resumed; needs the standard
  CIFAR-10 files as ``cifar10``.

Every command resumes: re-running after an interruption continues each training from its last
epoch and skips finished ones. The results go where the reduced-scale runs write them; each
results file records its scale (``quick: false`` in callahan2021.json, the recipe and epochs in
pie_manifold.json, ``scale: paper`` in selfvae_levels.json). Exits with the first failing
command's status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["PARTS", "commands", "main"]

PARTS = ("mnist", "cifar10", "pie", "selfvae")
#: Callahan & Paskett (2021): main bottleneck, sweep, and per-model epochs / milestones.
CALLAHAN: dict[str, dict[str, Any]] = {
    "mnist": {"k": 20, "sweep": (4, 20, 64), "inn": (10, [8, 10]), "classical": 100},
    "cifar10": {"k": 64, "sweep": (16, 64, 256), "inn": (15, [12, 15]), "classical": 30},
}
KINDS = {"inn": "inn-ae", "classical": "classical-ae"}


def cifar10_full(root: Path | None) -> bool:
    """True when the standard CIFAR-10 python batches (the full set) are in ``root`` or ``root/cifar10``."""
    return root is not None and any((f / "cifar-10-batches-py").is_dir() for f in (root, root / "cifar10"))


def default_data_root() -> Path | None:
    """``../shared/data`` next to the repository when present, else ``$INFOPROBE_DATA``."""
    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    env = os.environ.get("INFOPROBE_DATA")
    return Path(env) if env else None


def _callahan(dataset: str, py: str, root: Path | None, device: str) -> list[list[str]]:
    recipe = CALLAHAN[dataset]
    runs = ROOT / "runs" / "callahan2021" / dataset  # analyses/callahan2021.py's folder, full scale
    data = ["--data-root", str(root)] if root is not None else []
    cmds = []
    for kind, name in KINDS.items():
        for k in sorted(set(recipe["sweep"]) | {recipe["k"]}):
            epochs = recipe[kind] if kind == "classical" else recipe[kind][0]
            cmd = [py, "-m", "infoprobe", "train", name, "--dataset", dataset, "--bottleneck", str(k),
                   "--epochs", str(epochs), "--seed", "0", "--device", device,
                   "--out", str(runs / f"{kind}-k{k}"), "--resume", "--no-progress", *data]
            if kind == "inn":
                cmd += ["--recipe", "milestones=" + str(recipe["inn"][1]).replace(" ", "")]
            cmds.append(cmd)
    cmds.append([py, "-m", "analyses.callahan2021", "--dataset", dataset, "--reuse", "--device", device,
                 "--bottleneck", str(recipe["k"]), "--sweep", *map(str, recipe["sweep"]), *data])
    return cmds


def commands(parts: list[str], *, device: str, data_root: Path | None,
             python: str = sys.executable) -> tuple[list[list[str]], list[str]]:
    """The commands to run, in order, and a note for every part that is skipped (and why)."""
    cmds: list[list[str]] = []
    skipped: list[str] = []
    full_cifar = cifar10_full(data_root)
    no_cifar = (f"the standard CIFAR-10 files (cifar-10-batches-py/, the full set) are not in "
                f"{data_root} or {data_root}/cifar10")
    for part in parts:
        if part == "mnist":
            cmds += _callahan("mnist", python, data_root, device)
        elif part == "cifar10":
            if full_cifar:
                cmds += _callahan("cifar10", python, data_root, device)
            else:
                skipped.append(f"cifar10: {no_cifar}")
        elif part == "pie":
            data = ["--data-root", str(data_root)] if data_root is not None else []
            cmds.append([python, "-m", "analyses.pie_manifold", "--device", device,
                         "--checkpoints", str(ROOT / "runs" / "pie_manifold"), "--resume", *data])
        elif part == "selfvae":
            if full_cifar:
                cmds.append([python, "-m", "analyses.selfvae_levels", "--scale", "paper", "--device", device,
                             "--root", str(data_root), "--checkpoints", str(ROOT / "runs" / "selfvae_levels"),
                             "--resume"])
            else:
                skipped.append(f"selfvae: {no_cifar}")
    return cmds, skipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder with MNIST and CIFAR-10 (default: ../shared/data if present, else $INFOPROBE_DATA)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="(default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and run nothing")
    args = p.parse_args(argv)
    root = args.data_root or default_data_root()
    cmds, skipped = commands(args.parts, device=args.device, data_root=root)
    for note in skipped:
        print(f"# skip {note}", flush=True)
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        code = subprocess.call(cmd, cwd=ROOT)
        if code != 0:
            print(f"# failed with exit status {code}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
