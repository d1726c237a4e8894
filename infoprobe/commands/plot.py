"""``infoprobe plot METRICS_JSON``: redraw the figures and the report from a metrics.json,
without recomputing anything."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "redraw figures and report.html from a metrics.json (no recomputation)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("metrics", type=Path, help="metrics.json written by 'infoprobe analyze'")
    parser.add_argument("--out", type=Path, help="output folder (default: the metrics.json's folder)")


def run(args: argparse.Namespace) -> int:
    from infoprobe.plotting import plot_all
    from infoprobe.report import write_report
    from infoprobe.results import AnalysisResult

    result = AnalysisResult.from_json(args.metrics)
    out = args.out or args.metrics.parent
    figures = plot_all(result, out / "figures")
    report = write_report(result, out / "report.html", figures)
    print(f"wrote {len(figures)} figures and {report.name} in {out}")
    return 0
