"""``infoprobe inspect CHECKPOINT``: what a checkpoint holds, without running anything from it."""

from __future__ import annotations

import argparse
import json

HELP = "show what a checkpoint holds (format, model, parameters, dataset, training, metrics)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="path to a checkpoint (.pt)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _fmt(value: object) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def run(args: argparse.Namespace) -> int:
    from infoprobe.checkpoint import load

    summary = load(args.checkpoint).summary()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    print(f"checkpoint      {summary['path']}")
    print(f"format version  {summary['format_version'] or 'none (bare state_dict)'}")
    print(f"model           {summary['model']['name'] or '?'}")
    for key, value in sorted(summary["model"]["config"].items()):
        print(f"  {key:<14}{_fmt(value)}")
    print(f"parameters      {summary['n_parameters']:,} values in {summary['n_tensors']} tensors")
    print(f"dataset         {_fmt(summary['dataset'])}")
    for section in ("training", "metrics"):
        print(f"{section:<16}" + ("" if summary[section] else "-"))
        for key, value in sorted(summary[section].items()):
            print(f"  {key:<14}{_fmt(value)}")
    print(f"resumable       {summary['resumable']}")
    print(f"created         {summary['created']}  {_fmt(summary['versions'])}")
    return 0
