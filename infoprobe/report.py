"""``report.html``: one self-contained page (figures embedded as base64 PNG) per analysis.

It reads an :class:`~infoprobe.analysis.AnalysisResult` and the PNGs already drawn from it;
nothing is recomputed. The page holds the run's description, the global numbers
(input/output relative entropy as in Callahan & Paskett 2021, Table 1; reconstruction error),
the figures, the per-layer table, warnings, settings and package versions.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infoprobe.analysis import AnalysisResult, EstimateRow

__all__ = ["embed_png", "format_estimate", "html_table", "layer_table", "write_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
tr.encoder td.l{background:#dbe9f6}tr.bottleneck td.l{background:#fde0c5}
tr.decoder td.l{background:#dff1dc}.flag{color:#c00000;font-weight:bold}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}code{background:#f4f4f4;padding:0 .2em}
"""

CAPTIONS = {
    "entropy": "Entropy of each layer along the pass; shading marks the forward pass / encoder, "
    "the bottleneck and the inverse pass / decoder (cf. Callahan & Paskett 2021, Fig. 3).",
    "relative_entropy": "Relative entropy KL(previous layer ‖ layer) (cf. their Fig. 4).",
    "info_plane": "Information plane: I(X; T) against I(T; Y) for every layer T.",
    "umap": "UMAP of the bottleneck codes, coloured by class.",
    "reconstructions": "Inputs (top) and reconstructions (bottom).",
}


def format_estimate(est: EstimateRow | None, digits: int = 4) -> str:
    """``value [lo, hi]`` with a ``*`` for estimates near their ceiling; ``–`` when missing."""
    if est is None or est.value is None:
        return "–"
    text = f"{est.value:.{digits}f}"
    if est.ci is not None and None not in est.ci:
        text += f" [{est.ci[0]:.{digits - 1}f}, {est.ci[1]:.{digits - 1}f}]"
    return text + ("*" if est.near_ceiling else "")


def embed_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1,
           classes: Sequence[str] | None = None) -> str:
    head = "".join(f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f'<td class="l">{html.escape(str(c))}</td>' if i < left else
                        f"<td>{html.escape(str(c))}</td>" for i, c in enumerate(row))
        cls = f' class="{classes[k]}"' if classes else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def layer_table(result: AnalysisResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-layer table (as the report and the terminal show it)."""
    ent = sorted({m for r in result.layers for m in r.entropy}, key=_method_order)
    kl = sorted({m for r in result.layers for m in r.relative_entropy}, key=_method_order)
    header = ["#", "layer", "region", "dim",
              *(f"H {m}" for m in ent), *(f"KL prev {m}" for m in kl), "I(X;T)", "I(T;Y)"]
    rows = []
    for r in result.layers:
        rows.append([
            str(r.index), r.label, r.region, str(r.dim),
            *(format_estimate(r.entropy.get(m)) for m in ent),
            *(format_estimate(r.relative_entropy.get(m)) for m in kl),
            format_estimate(r.mi_input), format_estimate(r.mi_label),
        ])
    return header, rows


def _method_order(m: str) -> tuple[int, str]:
    return (0 if m == "callahan2021" else 1, m)


def write_report(
    result: AnalysisResult,
    path: str | os.PathLike[str],
    figures: Mapping[str, str | os.PathLike[str]],
) -> Path:
    """Write the self-contained HTML page; ``figures`` maps figure name -> PNG path."""
    path = Path(path)
    title = f"infoprobe analysis — {result.model.get('name') or result.model.get('class')}"
    ds = result.dataset
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    desc = [
        ("model", result.model.get("name") or "–"), ("class", result.model.get("class")),
        ("parameters", f"{result.model.get('n_parameters', 0):,}"),
        ("checkpoint", result.model.get("checkpoint") or "–"),
        ("dataset", f"{ds.get('name') or '–'} ({ds.get('split') or '–'}), "
                    f"{ds.get('n_samples')} samples of shape {ds.get('input_shape')}"),
        ("estimators", ", ".join(result.settings.get("estimators", []))),
        ("created", result.created),
    ]
    parts.append(html_table(["", ""], desc, left=2))
    g = result.globals
    parts.append("<h2>Input / output</h2>")
    grows = [[f"KL(data ‖ reconstruction) [{m}]", format_estimate(e)]
             for m, e in sorted(g.get("kl_data_reconstruction", {}).items(), key=lambda kv: _method_order(kv[0]))]
    grows += [["reconstruction MSE", _num(g.get("mse"))], ["reconstruction L1", _num(g.get("l1"))]]
    parts.append(html_table(["quantity (nats)", "value"], grows))
    parts.append("<h2>Figures</h2>")
    for name, fig in figures.items():
        parts.append(f"<figure>{embed_png(Path(fig))}<figcaption>{html.escape(CAPTIONS.get(name, name))}"
                     "</figcaption></figure>")
    parts.append("<h2>Layers</h2><p>Values in nats, 95 % bootstrap intervals in brackets; "
                 "<span class='flag'>*</span> marks estimates near their ceiling.</p>")
    header, rows = layer_table(result)
    parts.append(html_table(header, rows, left=3, classes=[r.region for r in result.layers]))
    if result.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
        parts.append(f"<h2>Warnings</h2><ul>{items}</ul>")
    parts.append("<h2>Settings</h2>")
    parts.append(html_table(["setting", "value"], [[k, str(v)] for k, v in result.settings.items()]))
    timings = [[k, f"{v:.2f} s"] for k, v in result.timings.items()]
    parts.append("<h2>Timings and versions</h2>")
    parts.append(html_table(["stage", "time"], timings))
    parts.append(html_table(["package", "version"], sorted(result.versions.items())))
    parts.append("</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.6g}"
