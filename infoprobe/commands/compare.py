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
    """One row per run: model, dataset, KL(data ‖ reconstruction) by each method (marked when not
    ok), MSE, L1."""
    methods: list[str] = []
    for r in results:
        methods += [m for m in r.globals.kl_data_reconstruction if m not in methods]
    header = ["run", "model", "dataset", *(f"KL {m}" for m in methods), "MSE", "L1"]
    rows = []
    for r, name in zip(results, names, strict=True):
        g = r.globals
        kl = g.kl_data_reconstruction
        rows.append([
            name, str(r.model.get("name") or r.model.get("class")),
            f"{r.dataset.get('name')} ({r.dataset.get('split')}, n={r.dataset.get('n_samples')})",
            *(kl[m].text(".4g") if m in kl else "" for m in methods),
            "–" if g.mse is None else f"{g.mse:.6g}", "–" if g.l1 is None else f"{g.l1:.6g}",
        ])
    return header, rows


def headline_table(results: list[Any], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """The headline numbers of every run side by side (see `infoprobe.summary.headline`)."""
    from infoprobe.summary import headline

    per_run = [dict((k, v) for k, v, _ in headline(r)) for r in results]
    keys: list[str] = []
    for h in per_run:
        keys += [k for k in h if k not in keys]
    return ["quantity", *names], [[k, *(h.get(k, "") for h in per_run)] for k in keys]


CAPTIONS = {
    "entropy": "Entropy per layer of each run, aligned at the bottleneck (x = 0); only values whose status "
    "is ok are drawn. Look for where the curves part.",
    "relative_entropy": "KL(previous layer ‖ layer) of each run, aligned at the bottleneck; only ok values.",
}


def run(args: argparse.Namespace) -> int:
    from infoprobe.errors import InfoprobeError
    from infoprobe.plotting import plot_compare
    from infoprobe.report import embed_png, html_page, html_table, legend_html, meaning_html
    from infoprobe.results import AnalysisResult
    from infoprobe.summary import fit_table

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
    h_header, h_rows = headline_table(results, names)
    page = ["<h1>infoprobe compare</h1><section id='summary'>",
            f"<p>{len(results)} analyses: {html.escape(', '.join(names))}.</p><h2>Read these first</h2>",
            html_table(h_header, h_rows, left=1), "<h2>Input / output relative entropy</h2>",
            html_table(header, rows, left=3), legend_html(), meaning_html(), "</section>"]
    for name, path in figures.items():
        page.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2><figure>{embed_png(path)}"
                    f"<figcaption>{html.escape(CAPTIONS[name])}</figcaption></figure>")
    (out / "compare.html").write_text(html_page("infoprobe compare", page), encoding="utf-8")
    for line in fit_table(header, rows, width=120):
        print(line)
    print(f"wrote entropy_compare.png, relative_entropy_compare.png, kl_table.csv, kl_table.md, "
          f"compare.html in {out}")
    return 0
