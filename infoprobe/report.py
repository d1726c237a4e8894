"""``report.html``: one self-contained page (figures embedded as base64 PNG) per analysis.

Read from the top: a summary block (what was analysed, at what scale and cost; the headline
numbers; the layers where the readable quantities change most; the input/output KL by each
method with the status legend; what these numbers mean), then the figures with captions that
say what to look for, then the per-layer table with statuses, ranks and intervals, the
warnings, the settings and versions. It reads an `AnalysisResult` and the PNGs drawn from it;
nothing is recomputed. No network: no external script, style or image.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infoprobe.summary import (
    MEANING,
    STATUS_LEGEND,
    headline,
    highlights,
    interval_schemes,
    layer_table,
)

if TYPE_CHECKING:
    from infoprobe.results import AnalysisResult

__all__ = ["CSS", "embed_png", "html_page", "html_table", "meaning_html", "write_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;max-width:1150px;
color:#222;padding:0 1em}
h1{font-size:1.45em;margin-bottom:.3em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
tr.encoder td.l{background:#dbe9f6}tr.bottleneck td.l{background:#fde0c5}
tr.decoder td.l{background:#dff1dc}
#summary{background:#f7f9fc;border:1px solid #cfd8e3;border-radius:6px;padding:.6em 1.2em;margin:.8em 0}
#summary h2{margin-top:.8em;border:none;font-size:1.05em}.big{font-size:1.25em;font-weight:600}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88em;color:#444}code{background:#f4f4f4;padding:0 .2em}
dl.meaning dt{font-weight:600;margin-top:.4em}dl.meaning dd{margin-left:1em;font-size:.92em}
.legend{font-size:.85em;color:#333}
.scroll{overflow-x:auto;max-width:100%}.scroll td{white-space:nowrap}
"""

CAPTIONS = {
    "entropy": "Entropy of each layer along the pass, one panel per estimator; shading marks the forward "
    "pass / encoder, the bottleneck and the inverse pass / decoder (cf. Callahan & Paskett 2021, Fig. 3). "
    "Look for where the curve drops; red crosses are values whose status is not ok (biased, at ceiling, …) "
    "and must not be read as numbers.",
    "relative_entropy": "KL(previous layer ‖ layer) along the pass (cf. their Fig. 4). Look for the layers with "
    "the largest divergence; the pooled-histogram form compares value distributions, not information.",
    "entropy_change": "Exact change of differential entropy across each invertible block, E[log|det J|]. "
    "Negative bars contract the density, positive ones expand it; no information is lost in a bijection.",
    "info_plane": "Information plane: I(X; T) (noisy channel at the stated resolution) against I(T; Y) for "
    "every layer with both estimates ok. Look for where I(T; Y) falls below its ceiling H(Y).",
    "umap": "UMAP of the bottleneck codes, coloured by class. Look for separated clusters: class "
    "information that the code keeps.",
    "reconstructions": "Inputs (top) and reconstructions (bottom).",
}


def embed_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1,
               text: Sequence[int] = (), classes: Sequence[str] | None = None) -> str:
    """A table whose first ``left`` columns and the ``text`` columns are left-aligned (words), the
    others right-aligned (numbers)."""
    lefts = set(range(left)) | set(text)
    head = "".join(f'<th class="l">{html.escape(h)}</th>' if i in lefts else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        cells = "".join(f'<td class="l">{html.escape(str(c))}</td>' if i in lefts else
                        f"<td>{html.escape(str(c))}</td>" for i, c in enumerate(row))
        cls = f' class="{classes[k]}"' if classes else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_page(title: str, body: Sequence[str]) -> str:
    """A complete, self-contained HTML page."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def meaning_html() -> str:
    items = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(text)}</dd>" for t, text in MEANING)
    return f"<h2>What these numbers mean</h2><dl class='meaning'>{items}</dl>"


def legend_html() -> str:
    items = "; ".join(f"<b>[{m}]</b> {html.escape(text)}" for m, text in STATUS_LEGEND.items())
    return f"<p class='legend'>Marks: {items}. “—” is a value that must not be read; “≈0” a negative " \
           "estimate of a non-negative quantity that is consistent with 0.</p>"


def _describe(result: AnalysisResult) -> str:
    ds, s = result.dataset, result.settings
    model = result.model.get("name") or result.model.get("class")
    total = result.timings.get("total")
    return (f"<p><b>{html.escape(str(model))}</b> ({result.model.get('n_parameters', 0):,} parameters"
            f"{', invertible' if result.model.get('invertible') else ''}) on <b>{html.escape(str(ds.get('name')))}</b> "
            f"({html.escape(str(ds.get('split')))}), {ds.get('n_samples')} samples of shape {ds.get('input_shape')}; "
            f"joint estimates on {s.get('joint_samples')} seeded samples; intervals from {s.get('n_boot')} resamples "
            f"({html.escape(interval_schemes(result))}); device {html.escape(str(s.get('device')))}"
            + (f"; {total:.1f} s" if total is not None else "") + ".</p>")


def summary_html(result: AnalysisResult) -> str:
    """The block the page opens with."""
    parts = ["<section id='summary'>", _describe(result), "<h2>Read these first</h2>"]
    parts.append(html_table(["quantity", "value", "what it says"], headline(result), left=1, text=(2,)))
    where = highlights(result)
    if where:
        parts.append("<h2>Where the readable quantities change most</h2>")
        parts.append(html_table(["layer", "quantity", "change"], where, left=2))
    kl = result.globals.kl_data_reconstruction
    if kl:
        parts.append("<h2>Input / output relative entropy KL(data ‖ reconstruction)</h2>")
        rows = [[m, e.text(".4g", interval=True), e.status, e.reason] for m, e in kl.items()]
        parts.append(html_table(["method", "value (nats)", "status", "reason"], rows, left=1, text=(2, 3)))
    parts.append(legend_html())
    parts.append(meaning_html())
    parts.append("</section>")
    return "".join(parts)


def write_report(result: AnalysisResult, path: str | os.PathLike[str],
                 figures: Mapping[str, str | os.PathLike[str]]) -> Path:
    """Write the self-contained HTML page; ``figures`` maps figure name -> PNG path."""
    path = Path(path)
    title = f"infoprobe analysis — {result.model.get('name') or result.model.get('class')}"
    parts = [f"<h1>{html.escape(title)}</h1>", summary_html(result), "<h2>Figures</h2>"]
    for name, fig in figures.items():
        parts.append(f"<figure>{embed_png(Path(fig))}<figcaption>{html.escape(CAPTIONS.get(name, name))}"
                     "</figcaption></figure>")
    parts.append("<h2>Layers</h2><p>Values in nats with their intervals; pass-through layers "
                 "(reshape, identity) are folded into the layer before them. Rank is the numerical rank of "
                 "the joint sample (≤k: computed from a k-dimensional bottleneck).</p>")
    header, rows = layer_table(result, wide=True, fold=True)
    # intervals stay on one line; a wide table scrolls inside its box instead of widening the page
    parts.append("<div class='scroll'>" + html_table(
        header, rows, left=3, classes=[r.region for r in result.layers if not r.passthrough]) + "</div>")
    parts.append(legend_html())
    notes = [(r.label, f"{group} [{method}]", f"{est.status}: {est.reason}")
             for r in result.layers for group, method, est in r.estimates() if not est.ok]
    if notes:
        parts.append("<h2>Why values are marked</h2>")
        parts.append(html_table(["layer", "estimate", "status and reason"], notes, left=3))
    if result.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
        parts.append(f"<h2>Warnings</h2><ul>{items}</ul>")
    parts.append("<h2>Settings</h2>")
    parts.append(html_table(["setting", "value"], [[k, str(v)] for k, v in result.settings.items()], left=2))
    parts.append("<h2>Timings and versions</h2>")
    parts.append(html_table(["stage", "time"], [[k, f"{v:.2f} s"] for k, v in result.timings.items()]))
    parts.append(html_table(["package", "version"], sorted(result.versions.items())))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(title, parts), encoding="utf-8")
    return path
