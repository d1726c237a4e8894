"""``infoprobe compare RUN_DIR… --out DIR``: several analyses side by side — entropy and
relative entropy overlaid (aligned at the bottleneck) and the input/output KL table
(Callahan & Paskett 2021, Figs. 3–4 and Table 1 in one command)."""

from __future__ import annotations

import argparse
import csv
import html
from pathlib import Path
from typing import Any

HELP = "overlay several analyses and tabulate their input/output relative entropy"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path,
                        help="analysis folders (with metrics.json) or metrics.json files")
    parser.add_argument("--names", nargs="+", help="legend names, one per run (default: folder names)")
    parser.add_argument("--method", default="callahan2021",
                        help="estimator whose series are overlaid (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("infoprobe-compare"),
                        help="output folder (default: %(default)s)")


def _metrics_path(run: Path) -> Path:
    return run / "metrics.json" if run.is_dir() else run


def kl_table(results: list[Any], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """One row per run: model, dataset, KL(data ‖ reconstruction) by each method, MSE, L1."""
    from infoprobe.report import format_estimate

    methods: list[str] = []
    for r in results:
        methods += [m for m in r.globals["kl_data_reconstruction"] if m not in methods]
    header = ["run", "model", "dataset", *(f"KL in/out {m} (nats)" for m in methods), "MSE", "L1"]
    rows = []
    for r, name in zip(results, names, strict=True):
        g = r.globals
        rows.append([
            name, str(r.model.get("name") or r.model.get("class")),
            f"{r.dataset.get('name')} ({r.dataset.get('split')}, n={r.dataset.get('n_samples')})",
            *(format_estimate(g["kl_data_reconstruction"].get(m)) for m in methods),
            "–" if g.get("mse") is None else f"{g['mse']:.6g}",
            "–" if g.get("l1") is None else f"{g['l1']:.6g}",
        ])
    return header, rows


def run(args: argparse.Namespace) -> int:
    from infoprobe.analysis import AnalysisResult
    from infoprobe.errors import InfoprobeError
    from infoprobe.plotting import plot_compare
    from infoprobe.report import embed_png, html_table

    results = [AnalysisResult.from_json(_metrics_path(r)) for r in args.runs]
    names = args.names or [(r if r.is_dir() else r.parent).resolve().name for r in args.runs]
    if len(names) != len(results):
        raise InfoprobeError(f"Expected one --names entry per run ({len(results)}), got {len(names)}.")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "entropy": plot_compare(results, names, out / "entropy_compare.png",
                                quantity="entropy", method=args.method),
        "relative_entropy": plot_compare(results, names, out / "relative_entropy_compare.png",
                                         quantity="relative_entropy", method=args.method),
    }
    header, rows = kl_table(results, names)
    with (out / "kl_table.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    (out / "kl_table.md").write_text("\n".join(md) + "\n")
    page = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>infoprobe compare</title>"
            "</head><body style='font-family:sans-serif;max-width:1100px;margin:2em auto'>"
            "<h1>infoprobe compare</h1><h2>Input / output relative entropy</h2>",
            html_table(header, rows, left=3)]
    for name, path in figures.items():
        page.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>{embed_png(path)}")
    (out / "compare.html").write_text("".join(page) + "</body></html>\n", encoding="utf-8")
    print("\n".join(md))
    print(f"wrote entropy_compare.png, relative_entropy_compare.png, kl_table.csv, kl_table.md, "
          f"compare.html in {out}")
    return 0
