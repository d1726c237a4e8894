"""``infoprobe train MODEL --dataset NAME``: train a zoo model with its reference recipe.

Every recipe entry can be overridden (``--epochs``, ``--batch-size``, ``--lr``, or any key with
``--recipe key=value``), every model option with ``--set key=value``. Writes
``OUT/checkpoint.pt`` (every epoch end and on interruption) and ``OUT/metrics.jsonl``;
``--resume`` continues from the checkpoint. Under ``torchrun --nproc_per_node N -m infoprobe
train ...`` it trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from typing import Any

from infoprobe.errors import InfoprobeError

HELP = "train a zoo model (inn-ae, classical-ae, ...) with its reference recipe, resumably"


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["a=1", "b=[8, 10]", "c=adam"]`` -> ``{"a": 1, "b": [8, 10], "c": "adam"}`` (JSON, else string)."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InfoprobeError(f"Expected {flag} key=value, got {pair!r}.")
        try:
            result[key] = json.loads(text)
        except json.JSONDecodeError:
            result[key] = text
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="registry name of the model, e.g. inn-ae, classical-ae")
    parser.add_argument("--dataset", default="digits", help="digits (default), mnist, cifar10")
    parser.add_argument("--bottleneck", type=int, help="bottleneck size k (default: the model's)")
    parser.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    parser.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=0, help="seed of data order and RNG (default 0)")
    parser.add_argument("--subset", type=int, help="train on a seeded random subset of N images")
    parser.add_argument("--test-subset", type=int, help="evaluate on a seeded random subset of N test images")
    parser.add_argument("--out", help="output folder (default runs/MODEL-DATASET[-kK])")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    parser.add_argument("--data-root", help="folder with the MNIST / CIFAR-10 files")
    parser.add_argument("--download", action="store_true", help="download missing MNIST / CIFAR-10 files")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="model_options",
                        help="model option, e.g. --set fc_hidden=256 (repeatable)")
    parser.add_argument("--recipe", action="append", metavar="KEY=VALUE", dest="recipe_options",
                        help="recipe entry, e.g. --recipe milestones=[8,10] --recipe optimizer=sgd")
    parser.add_argument("--checkpoint-every", type=float, default=600.0, metavar="SECONDS",
                        help="also checkpoint mid-epoch at most every SECONDS (default 600), so a hard kill "
                             "loses at most that much; 0 = after every step")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    import models
    from infoprobe.data import load_dataset
    from models.training import train

    options = _key_values(args.model_options, "--set")
    if args.bottleneck is not None:
        options["bottleneck"] = args.bottleneck
    import torch

    torch.manual_seed(args.seed)  # the initial weights, too, follow --seed
    model = models.build(args.model, dataset=args.dataset, **options)
    train_data = load_dataset(args.dataset, split="train", root=args.data_root, download=args.download)
    test_data = load_dataset(args.dataset, split="test", root=args.data_root, download=args.download)
    k = getattr(model, "config", {}).get("bottleneck")
    out = args.out or os.path.join("runs", f"{args.model}-{args.dataset}" + (f"-k{k}" if k else ""))
    # `kill` or the end of a session (SIGTERM) interrupts like Ctrl-C, so every finished step is
    # checkpointed and --resume continues from it; a background job may have SIGINT ignored
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = train(
            model, train_data, test_data=test_data, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, device=args.device, amp=args.amp, seed=args.seed, subset=args.subset,
            test_subset=args.test_subset, out=out, resume=args.resume,
            progress=not args.no_progress and sys.stderr.isatty(),  # a bar in a log file is noise
            recipe=_key_values(args.recipe_options, "--recipe"), checkpoint_every=args.checkpoint_every,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.checkpoint is None:  # not rank 0 of a distributed run
        return 0
    final = result.final
    summary = ", ".join(f"{key} {value:.5g}" for key, value in final.items()
                        if key.startswith(("train_", "test_")) and isinstance(value, float))
    trained_now = math.isfinite(result.images_per_second)  # NaN: every epoch was done before this call
    print(f"{args.model} on {args.dataset}: {result.epochs_done} epochs on {result.device}"
          + (f", {result.images_per_second:.0f} images/s" if trained_now
             else " (all done before; nothing left to train)")
          + (f"; {summary}" if summary else ""))
    print(f"checkpoint: {result.checkpoint}")
    return 0
