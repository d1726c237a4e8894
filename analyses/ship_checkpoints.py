"""Ship trained models: weights-only copies in ``checkpoints/`` with their provenance.

For every training run named on the command line (a folder written by ``infoprobe train``), writes
``checkpoints/<dataset>-<model>-k<k>.pt`` (``infoprobe.checkpoint.export``: no optimizer state),
records its sha256, the command that trained it, the recipe, the training time and the learning
curve in ``checkpoints/manifest.json``, and renders ``checkpoints/README.md`` from the manifest.
Runs already in the manifest and not named again are kept.

    python -m analyses.ship_checkpoints runs/mnist-full/inn-ae-s0 runs/mnist-full/classical-ae-s0

A run that has not finished its recipe is refused unless ``--allow-unfinished`` (then the
manifest says so).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import models
from infoprobe import checkpoint
from infoprobe.errors import InfoprobeError
from models.training import resolve_recipe

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "checkpoints"

__all__ = ["describe", "main", "render"]


def describe(run: Path, *, allow_unfinished: bool = False) -> dict[str, Any]:
    """What the manifest says of one run folder's ``checkpoint.pt`` (before export)."""
    ckpt = checkpoint.load(run / "checkpoint.pt")
    if ckpt.model_name is None or ckpt.dataset is None:
        raise InfoprobeError(f"{run}/checkpoint.pt was not written by 'infoprobe train'.")
    training, history = ckpt.training, list(ckpt.metrics.get("history", []))
    recipe = dict(training["recipe"])
    if not training.get("finished") and not allow_unfinished:
        raise InfoprobeError(
            f"{run} has done {training.get('epochs_done')} of {recipe['epochs']} epochs; finish it "
            "(infoprobe train ... --resume) or pass --allow-unfinished."
        )
    config = ckpt.model_config
    default = resolve_recipe(models.build(ckpt.model_name, **config))
    changed = {k: v for k, v in recipe.items() if default.get(k) != v}
    dataset = ckpt.dataset["name"]
    k = config.get("bottleneck")
    seconds = [float(r["seconds"]) for r in history]
    cpu = [r.get("cpu_seconds") for r in history]
    command = (f"infoprobe train {ckpt.model_name} --dataset {dataset}"
               + (f" --bottleneck {k}" if k is not None else "")
               + f" --seed {training['seed']} --data-root DATA --out {run.as_posix()} --resume")
    return {
        "file": f"{dataset}-{ckpt.model_name}-k{k}.pt",
        "model": ckpt.model_name, "config": config, "dataset": ckpt.dataset,
        "test_dataset": training.get("test_dataset"),
        "seed": training["seed"], "recipe": recipe, "recipe_changes": changed,
        "changed_on_resume": list(training.get("recipe_changes", [])),
        "finished": bool(training.get("finished")),
        "epochs": training.get("epochs_done"),
        "command": command,
        "device": training.get("device"), "created": ckpt.created, "versions": ckpt.versions,
        "test_l1": history[-1].get("test_l1") if history else None,
        "learning_curve": [{"epoch": r["epoch"], "train_l1": r.get("train_l1"), "test_l1": r.get("test_l1"),
                            "lr": r.get("lr")} for r in history],
        "wall_seconds": sum(seconds),
        # epochs trained before the timer carried across resumes have no CPU time
        "cpu_seconds": sum(c for c in cpu if c is not None) if any(c is not None for c in cpu) else None,
        "epochs_without_cpu_time": [r["epoch"] for r, c in zip(history, cpu, strict=True) if c is None],
        "epochs_resumed": [r["epoch"] for r in history if r.get("resumed_at_step")],
        "images_per_second_median": _median_or_none([r["images_per_second"] for r in history if r.get("images_per_second")]),
    }


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    return f"{seconds / 3600:.2f} h ({seconds:,.0f} s)"


def _ranges(epochs: list[int]) -> str:
    """[1, 2, 3, 7] -> '1–3, 7'."""
    parts: list[str] = []
    for e in epochs:
        if parts and parts[-1].split("–")[-1] == str(e - 1):
            parts[-1] = parts[-1].split("–")[0] + f"–{e}"
        else:
            parts.append(str(e))
    return ", ".join(parts)


def render(manifest: dict[str, Any]) -> str:
    """``checkpoints/README.md`` from the manifest."""
    lines = [
        "# Shipped checkpoints",
        "",
        "Weights-only copies (`infoprobe export`: no optimizer state) of models trained with this",
        "repository, written with their provenance by `python -m analyses.ship_checkpoints`; this",
        "file is rendered from `manifest.json`. Analyse one right after set-up:",
        "",
        "    infoprobe analyze checkpoints/<file> --data-root <folder with MNIST>",
        "",
        "| file | model | k | seed | epochs | test L1 | sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    entries = manifest["checkpoints"]
    for e in entries:
        l1 = f"{e['test_l1']:.4f}" if e["test_l1"] is not None else "—"
        done = str(e["epochs"]) + ("" if e["finished"] else f" of {e['recipe']['epochs']} (unfinished)")
        lines.append(f"| `{e['file']}` | {e['model']} | {e['config'].get('bottleneck')} | {e['seed']} | "
                     f"{done} | {l1} | `{e['sha256']}` |")
    for e in entries:
        test = e.get("test_dataset") or {}
        lines += [
            "", f"## {e['file']}", "",
            f"- Command: `{e['command']}` (DATA: a folder with the dataset files).",
            f"- Recipe: {json.dumps(e['recipe'], sort_keys=True)}"
            + (f"; differs from the model's default in {json.dumps(e['recipe_changes'], sort_keys=True)}"
               if e["recipe_changes"] else " (the model's default recipe)."),
            *[f"- Resumed at epoch {c['epoch']}, step {c['step']} with "
              + ", ".join(f"{k} {json.dumps(v[0])} → {json.dumps(v[1])}" for k, v in sorted(c["changed"].items()))
              + " (from then on)." for c in e.get("changed_on_resume", [])],
            f"- Data: {e['dataset'].get('name')} {e['dataset'].get('split')}, {e['dataset'].get('n')} images;"
            f" test L1 on {test.get('name')} {test.get('split')}, {test.get('n')} images.",
            f"- Trained on {e['device']} with torch {e['versions'].get('torch')}, infoprobe "
            f"{e['versions'].get('infoprobe')}; checkpoint written {e['created']}.",
        ]
        rate = e["images_per_second_median"]
        time_line = f"- Training time: wall {_hours(e['wall_seconds'])}"
        time_line += f", median {rate:.0f} images/s" if rate else ""
        if e["cpu_seconds"]:
            time_line += f"; CPU time of the training process {_hours(e['cpu_seconds'])}"
        if e["epochs_without_cpu_time"]:
            time_line += (f" (epochs {_ranges(e['epochs_without_cpu_time'])} were trained before "
                          "CPU time was recorded and are not in it)")
        lines.append(time_line + ".")
        if e["epochs_resumed"]:
            lines.append(f"- Resumed mid-epoch in epochs {_ranges(e['epochs_resumed'])}; the wall "
                         "time includes waiting for a shared CPU and excludes time between runs.")
        if e.get("note"):
            lines.append(f"- {e['note']}")
        points = [r for r in e["learning_curve"] if r["test_l1"] is not None]
        step = 1 if len(points) <= 20 else 10  # the whole curve is in manifest.json
        shown = [r for i, r in enumerate(points) if i == 0 or r["epoch"] % step == 0 or i == len(points) - 1]
        curve = ", ".join(f"{r['epoch']}: {r['test_l1']:.4f}" for r in shown)
        lines.append(f"- Test L1 {'per epoch' if step == 1 else f'every {step} epochs'}: {curve}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders written by 'infoprobe train'")
    p.add_argument("--out", type=Path, default=OUT, help="folder of the shipped checkpoints (default: checkpoints/)")
    p.add_argument("--allow-unfinished", action="store_true", help="ship a run that has not finished its recipe")
    p.add_argument("--note", action="append", default=[], metavar="FILE=TEXT",
                   help="a sentence for one file's section, e.g. 'mnist-inn-ae-k20.pt=Trained on ...'")
    args = p.parse_args(argv)
    notes = dict(n.split("=", 1) for n in args.note)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"checkpoints": []}
    try:
        for run in args.runs:
            entry = describe(run, allow_unfinished=args.allow_unfinished)
            target = checkpoint.export(run / "checkpoint.pt", args.out / entry["file"])
            entry["sha256"] = checkpoint.sha256(target)
            entry["bytes"] = target.stat().st_size
            if entry["file"] in notes:
                entry["note"] = notes[entry["file"]]
            manifest["checkpoints"] = [e for e in manifest["checkpoints"] if e["file"] != entry["file"]] + [entry]
            print(f"{target}  {entry['bytes'] / 1e6:.2f} MB  test L1 {entry['test_l1']}  sha256 {entry['sha256']}")
    except InfoprobeError as exc:
        print(f"ship_checkpoints: error: {exc}", file=sys.stderr)
        return 2
    manifest["checkpoints"].sort(key=lambda e: e["file"])
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    (args.out / "README.md").write_text(render(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
