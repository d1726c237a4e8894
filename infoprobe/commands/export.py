"""``infoprobe export CHECKPOINT TARGET``: a weights-only copy of a checkpoint, for sharing."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a weights-only copy of a checkpoint for sharing (drops the optimizer and RNG state)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint written by 'infoprobe train' (.pt)")
    parser.add_argument("target", help="path of the copy (.pt)")


def run(args: argparse.Namespace) -> int:
    from infoprobe.checkpoint import export, sha256

    source = Path(args.checkpoint)
    target = export(source, args.target)
    print(f"{target}  {target.stat().st_size / 1e6:.2f} MB (from {source.stat().st_size / 1e6:.2f} MB)"
          f"  sha256 {sha256(target)}")
    return 0
