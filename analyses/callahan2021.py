"""Reproduce and extend Callahan & Paskett (2021), "Analyzing Information Loss of Invertible
Variational Autoencoders": the INN autoencoder against the classical autoencoder, layer by layer.

A thin script over the public API: `models.build` / `models.training.train` train (or, with
``--reuse``, load) both models at the main bottleneck (k = 20 for MNIST, 64 for CIFAR-10), and
one `infoprobe.analyze` call per model computes everything the paper reports and what we add:

- the paper's pooled 100-bin histogram entropy and KL(previous ‖ this) (`callahan2021`), the
  same for 10 … 1,000 bins, and the KL on shared edges;
- the exact entropy change of every invertible block (E log|det J|);
- the information plane: noisy-channel I(X; T + ε) at two resolutions, binned I(X; T) and I(T; Y),
  the KSG/Ross label MI — each estimate with its status;

then the controls: the input/output KL against the number of test images and on 256
pixel-aligned levels, the per-bin anatomy of the io KL (`histogram_kl_terms`), the INN's
inversion error (`INNAutoencoder.inversion_error`) and a bottleneck sweep. Writes one
``metrics.json`` per model (``analyses/results/callahan2021/``), ``analyses/results/callahan2021.json``
(the summary) and ``.md`` (rendered from it, keeping the hand-written discussion below
`DISCUSSION_MARK`), and the figures ``figures/callahan2021_*_<dataset>.png``.

    python -m analyses.callahan2021 --dataset mnist --data-root ../shared/data           # full (GPU)
    python -m analyses.callahan2021 --dataset mnist --quick --device cpu               # reduced
    python -m analyses.callahan2021 --dataset mnist --checkpoints checkpoints          # shipped models
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

import infoprobe
import models
from infoprobe import checkpoint
from infoprobe.data import load_dataset
from infoprobe.estimators import Estimate, histogram_kl_terms, kl_divergence
from infoprobe.plotting import plot_compare, plot_entropy_change, plot_info_plane
from infoprobe.results import AnalysisResult
from infoprobe.summary import headline
from models.training import train

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"inn": "inn-ae", "classical": "classical-ae"}
PAPER = {"mnist": {"inn": 10.46, "classical": 10.25}, "cifar10": {"inn": 0.76, "classical": 0.28}}
BINS = (10, 30, 300, 1000)  # besides the paper's 100
BOTTLENECK = {"mnist": 20, "cifar10": 64, "digits": 8}
SWEEP = {"mnist": (4, 64), "cifar10": (16, 256), "digits": (2,)}
IO_SIZES = (500, 2000, 10000)
#: (training subset, INN epochs, classical epochs, test images, joint samples, resamples)
SCALE: dict[str, dict[str, tuple[Any, ...]]] = {"full": {"mnist": (None, None, None, None, 2000, 30), "cifar10": (None, None, None, None, 1000, 30),
                  "digits": (None, 30, 100, None, 360, 30)},
         "quick": {"mnist": (12000, 2, 10, 2000, 1000, 20), "cifar10": (4000, 1, 5, 1000, 500, 10),
                   "digits": (None, 2, 2, 360, 360, 10)}}
ESTIMATORS = ["entropy=callahan2021", "kl=callahan2021", "kl=histogram(edges='shared', smoothing=1.0)",
              "mi_input=noisy(scale=0.1)", "mi_input=noisy(scale=0.3)", "mi_input=binned(bins=30)",
              "mi_label=probe", "mi_label=binned(bins=30)", "mi_label=ksg", "entropy=gaussian", "entropy=knn",
              *(f"entropy=histogram(bins={b}, smoothing=1.0)" for b in BINS),
              *(f"kl=histogram(bins={b}, edges='separate', smoothing=1.0)" for b in BINS)]
EPOCHS_ROW = "epochs trained (each run)"
DISCUSSION_MARK = "<!-- discussion: written by hand after reading the numbers; kept on re-render -->"

__all__ = ["DISCUSSION_MARK", "analyse_dataset", "main", "merge_models", "render_markdown", "write_page"]


def write_page(page: Path, body: str) -> None:
    """Write a results page: ``body`` (rendered from the numbers), then the hand-written text that
    the page already has below `DISCUSSION_MARK`, kept across re-renders."""
    old = page.read_text(encoding="utf-8") if page.is_file() else ""
    kept = old.split(DISCUSSION_MARK, 1)[1].lstrip("\n") if DISCUSSION_MARK in old else ""
    page.write_text(body + (f"\n{DISCUSSION_MARK}\n{kept}" if kept else ""), encoding="utf-8")


def variant(args: argparse.Namespace) -> str | None:
    """What distinguishes this run's results from the main ones: --variant, or 'untrained'."""
    return args.variant or ("untrained" if args.untrained else None)


def get_model(kind: str, k: int, args: argparse.Namespace, scale: tuple[Any, ...], data: tuple[Any, Any]) -> tuple[Any, dict[str, Any]]:
    """Train ``kind`` at bottleneck ``k``, or load it (``--reuse``, ``--checkpoints``), or build it
    untrained (``--untrained``: the control, seeded by ``--seed``)."""
    if args.untrained:
        torch.manual_seed(args.seed)
        model = models.build(KINDS[kind], dataset=args.dataset, bottleneck=k).to(args.device).eval()
        return model, {"source": "untrained", "epochs": 0, "train_seconds": None}
    folder = Path(args.checkpoints) if args.checkpoints else Path(args.runs) / args.dataset
    path = folder / (f"{args.dataset}-{KINDS[kind]}-k{k}.pt" if args.checkpoints else f"{kind}-k{k}/checkpoint.pt")
    if args.checkpoints or (args.reuse and path.is_file()):
        ckpt = checkpoint.load(path)
        history = ckpt.metrics.get("history", [])
        info = {"source": "loaded", "checkpoint": str(path), "epochs": ckpt.training.get("epochs_done"),
                "train_seconds": sum(h.get("seconds") or 0 for h in history) or None,
                "history": [{key: h.get(key) for key in ("epoch", "train_l1", "test_l1", "lr", "seconds")} for h in history]}
        return checkpoint.build_model(ckpt, device=args.device).eval(), info
    subset, epochs = scale[0], scale[1] if kind == "inn" else scale[2]
    start = time.perf_counter()
    result = train(models.build(KINDS[kind], dataset=args.dataset, bottleneck=k), data[0], test_data=data[1],
                   epochs=epochs, device=args.device, seed=args.seed, subset=subset, out=path.parent,
                   resume=args.reuse, progress=False)
    return result.model.eval(), {"source": "trained", "checkpoint": str(path), "epochs": result.epochs_done,
                                 "train_images": min(subset or len(data[0]), len(data[0])),
                                 "train_seconds": time.perf_counter() - start}


def controls(model: Any, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Input/output KL controls, the anatomy of the paper's io KL, the INN's inversion error."""
    x = test.images[: max(IO_SIZES)]
    with torch.no_grad():
        recon = torch.cat([model.reconstruct(b.to(args.device)).cpu() for b in x.split(256)])  # as analyze() batches
    out: dict[str, Any] = {"l1": float((recon - x).abs().mean()), "mse": float(((recon - x) ** 2).mean())}
    sizes = [n for n in IO_SIZES if n < len(x)] + [len(x)]
    out["io_kl_vs_n"] = {str(n): float(kl_divergence(x[:n], recon[:n], preset="callahan2021")) for n in sizes}
    out["io_kl_256_levels"] = float(kl_divergence(x, recon, method="histogram", bins=256, range=(0.0, 1.0),
                                                  edges="shared", smoothing=1.0))
    terms = histogram_kl_terms(x, recon, bins=100, edges="separate", smoothing=1.0)
    top = torch.argsort(terms.terms, descending=True)[:3]
    out["anatomy"] = {"value": terms.value, "zero_fraction": float((x == 0).double().mean()),
                      "top_bins": [{"bin": int(i), "term": float(terms.terms[i]), "p": float(terms.p_probabilities[i]),
                                    "q": float(terms.q_probabilities[i]),
                                    "q_interval": [float(terms.q_edges[i]), float(terms.q_edges[i + 1])]} for i in top]}
    if hasattr(model, "inversion_error"):
        out["inversion_error"] = float(model.inversion_error(x[:500].to(args.device)))
    return out


def layer_numbers(result: AnalysisResult) -> dict[str, Any]:
    """Per-model numbers the seeds table aggregates: the largest layer-wise [callahan2021] entropy
    and relative entropy (with their layers) and the total exact Δh of the readable blocks."""
    out: dict[str, Any] = {}
    for group in ("entropy", "relative_entropy"):
        values = [(getattr(r, group)["callahan2021"].value, r.label) for r in result.layers
                  if "callahan2021" in getattr(r, group) and getattr(r, group)["callahan2021"].ok]
        if values:
            value, label = max(values)
            out[f"max_{group}"] = {"value": value, "layer": label}
    exact = [r.entropy_change["exact"].value for r in result.layers
             if "exact" in r.entropy_change and r.entropy_change["exact"].ok]
    out["exact_dh_total"] = sum(exact) if exact else None
    code = next((r for r in result.layers if r.region == "bottleneck"), None)
    for where, row in (("code", code), ("output", result.layers[-1] if result.layers else None)):
        if row is None:
            continue
        out[where] = {"layer": row.label,
                      **{f"mi_input {m}": e.to_dict() for m, e in row.mi_input.items() if m.startswith("noisy")},
                      **{f"mi_label {m}": e.to_dict() for m, e in row.mi_label.items() if m == "probe"}}
    return out


def analyse_dataset(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    scale = SCALE["quick" if args.quick else "full"][args.dataset]
    root = {} if args.dataset == "digits" else {"root": args.data_root}
    data = (load_dataset(args.dataset, split="train", **root), load_dataset(args.dataset, split="test", **root))
    k = args.bottleneck or BOTTLENECK[args.dataset]
    results_dir = Path(args.results) / "callahan2021"
    entry: dict[str, Any] = {"dataset": args.dataset, "variant": variant(args), "k": k,
                             "scale": "quick" if args.quick else "full", "command": args.command,
                             "test_images": scale[3] or len(data[1]), "models": {}, "sweep": {}}
    name = variant(args)
    # one tag for the metrics files and the figures, so that a variant never overwrites the main run's
    tag = entry["figures_tag"] = args.dataset + (f"_{name.replace(' ', '')}" if name else "")
    analyses: dict[str, AnalysisResult] = {}
    for kind in args.models:
        log(f"[{args.dataset}] {kind} k={k}")
        model, info = get_model(kind, k, args, scale, data)
        result = infoprobe.analyze(model, data[1], estimators=ESTIMATORS, samples=scale[3], joint_samples=scale[4],
                                   n_boot=scale[5], seed=args.seed, device=args.device, umap=False, progress=False)
        metrics = result.to_json(results_dir / f"{tag}-{kind}-k{k}.metrics.json")
        analyses[kind] = result
        entry["models"][kind] = {"training": info, "metrics": str(metrics.relative_to(ROOT)) if metrics.is_relative_to(ROOT) else str(metrics),
                                 "io_kl": {m: e.to_dict() for m, e in result.globals.kl_data_reconstruction.items()},
                                 "headline": headline(result), **layer_numbers(result),
                                 **controls(model, data[1], args)}
    sweep = SWEEP[args.dataset] if args.sweep is None else args.sweep
    for k_sweep in () if args.checkpoints or args.untrained else [k_s for k_s in sweep if k_s != k]:
        for kind in KINDS:
            model, _ = get_model(kind, k_sweep, args, scale, data)
            entry["sweep"].setdefault(str(k_sweep), {})[kind] = controls(model, data[1], args)["io_kl_vs_n"]
    if args.no_figures:
        return entry
    figures = Path(args.figures)
    plot_learning_curves(entry, figures / f"callahan2021_learning_curves_{tag}.png")
    names = [f"{kind} (k={k})" for kind in analyses]
    for group in ("entropy", "relative_entropy"):
        plot_compare(list(analyses.values()), names, figures / f"callahan2021_{group}_{tag}.png",
                     quantity=group, method="callahan2021")
    if "inn" in analyses:
        plot_entropy_change(analyses["inn"], figures / f"callahan2021_entropy_change_{tag}.png")
    for kind, result in analyses.items():
        plot_info_plane(result, figures / f"callahan2021_info_plane_{kind}_{tag}.png")
    plot_bins(analyses, figures / f"callahan2021_bins_{tag}.png")
    return entry


def plot_learning_curves(entry: dict[str, Any], path: Path) -> None:
    """Train and test L1 per epoch of each loaded model, from its checkpoint's history (if any)."""
    curves = {kind: m["training"]["history"] for kind, m in entry["models"].items() if m["training"].get("history")}
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (kind, history) in zip(axes[0], curves.items(), strict=True):
        for key, style in (("train_l1", "--"), ("test_l1", "o-")):
            points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, ms=3, label=key.replace("_l1", " L1"))
        ax.set(xlabel="epoch", ylabel="mean absolute error", yscale="log",
               title=f"{entry['dataset']} {kind} (k = {entry['k']})")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bins(analyses: dict[str, AnalysisResult], path: Path) -> None:
    """The input/output KL of each model against the number of histogram bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, result in analyses.items():
        kl = result.globals.kl_data_reconstruction
        points = sorted((100 if m == "callahan2021" else int(m.split("bins=")[1].split(",")[0]), e.value)
                        for m, e in kl.items() if m == "callahan2021" or "separate" in m)
        ax.plot(*zip(*points, strict=True), "o-", label=kind)
    ax.set(xscale="log", xlabel="bins (each array over its own range, +1 smoothing)",
           ylabel="KL(data ‖ reconstruction) (nats)", title="The paper's io KL depends on the binning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _value(est: dict[str, Any]) -> str:
    return Estimate.from_dict(est).text(".3g")


def render_markdown(results: dict[str, Any]) -> str:
    """The results page, rendered from the summary JSON (figures are referenced, not embedded);
    `write_page` appends the hand-written discussion."""
    lines = ["# Callahan & Paskett (2021), reproduced and extended", "",
             "Rendered by `analyses/callahan2021.py` from `callahan2021.json`; per-layer numbers with statuses "
             "are in `callahan2021/*.metrics.json`. Values in nats; a marked value ([B] biased, [D] degenerate, "
             "[C] at ceiling, [X] invalid) must not be read as a number.", ""]
    for dataset, r in results.items():
        if "scale" not in r:  # written by the previous version of this script (see git history)
            lines += [f"## {dataset}: results of the previous version of this script", "",
                      "Its tables are in `callahan2021_previous_version.md`; re-run `python -m "
                      f"analyses.callahan2021 --dataset {dataset}` to regenerate them with this one.", ""]
            continue
        if str(r.get("variant") or "").startswith("seed"):
            continue  # another seed of a main run: only in the seeds table
        m = r["models"]
        lines += [f"## {dataset} (k = {r['k']}, {r['scale'].upper()} scale, {r['test_images']} test images)", "",
                  f"Command: `{r['command']}`", "",
                  "| | INN | classical | paper INN | paper classical |", "|---|---|---|---|---|"]
        paper = PAPER.get(r.get("dataset", dataset), {})
        for method in m["inn"]["io_kl"]:
            lines.append(f"| io KL [{method}] | {_value(m['inn']['io_kl'][method])} | "
                         f"{_value(m['classical']['io_kl'][method])} | "
                         + (f"{paper.get('inn', '')} | {paper.get('classical', '')} |" if method == "callahan2021" else " | |"))
        lines += [f"| io KL, 256 pixel levels, shared edges | {m['inn']['io_kl_256_levels']:.3g} | "
                  f"{m['classical']['io_kl_256_levels']:.3g} | | |",
                  *(f"| io KL [callahan2021], N = {n} | {m['inn']['io_kl_vs_n'].get(n, float('nan')):.3g} | "
                    f"{m['classical']['io_kl_vs_n'].get(n, float('nan')):.3g} | | |" for n in m["inn"]["io_kl_vs_n"]),
                  f"| test L1 | {m['inn']['l1']:.4f} | {m['classical']['l1']:.4f} | | |",
                  *(f"| {name} | {inn} | {dict((n, v) for n, v, _ in m['classical']['headline']).get(name, '')} | | |"
                    for name, inn, _ in m["inn"]["headline"][1:]),
                  f"| training (epochs, seconds) | {m['inn']['training'].get('epochs')}, "
                  f"{m['inn']['training'].get('train_seconds') or 0:.0f} | {m['classical']['training'].get('epochs')}, "
                  f"{m['classical']['training'].get('train_seconds') or 0:.0f} | | |", ""]
        for kind in KINDS:
            a = m[kind]["anatomy"]
            top = a["top_bins"][0]
            lines.append(f"- {kind}: {a['zero_fraction']:.1%} of the input values are 0; the largest term of the "
                         f"paper's io KL is bin {top['bin']} ({top['term']:.3g} of {a['value']:.3g} nats; p = "
                         f"{top['p']:.3g}, q = {top['q']:.3g}).")
        for kind in KINDS:
            history = m[kind]["training"].get("history") or []
            if history:
                lines.append(f"- {kind}: test L1 by epoch " + " → ".join(
                    f"{h['test_l1']:.4f}" for h in history if h.get("test_l1") is not None) + ".")
        if "inversion_error" in m["inn"]:
            lines.append(f"- The INN is invertible before the bottleneck: max error {m['inn']['inversion_error']:.1e}.")
        if r["sweep"]:
            lines += ["", "Bottleneck sweep, io KL [callahan2021] at the largest N:", ""]
            for k, per in sorted(r["sweep"].items(), key=lambda kv: int(kv[0])):
                lines.append(f"- k = {k}: " + ", ".join(f"{kind} {list(v.values())[-1]:.3g}" for kind, v in per.items()))
        lines += ["", f"Figures: `figures/callahan2021_*_{r.get('figures_tag', dataset)}.png`.", ""]
    lines += seeds_table(results)
    return "\n".join(lines) + "\n"


def merge_models(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new``, keeping the models of ``old`` that it did not analyse (same k and scale).

    Another seed may exist for each model at a different time (``--models classical`` now,
    ``--models inn`` when that seed's training ends); both then sit in one entry, with both
    commands in ``commands``.
    """
    if not old or old.get("k") != new["k"] or old.get("scale") != new["scale"]:
        return new
    kept = {kind: m for kind, m in old.get("models", {}).items() if kind not in new["models"]}
    if not kept:
        return new
    models = {**kept, **new["models"]}
    commands = [*old.get("commands", [old.get("command")]), new["command"]]
    return {**new, "models": {kind: models[kind] for kind in KINDS if kind in models},
            "commands": list(dict.fromkeys(c for c in commands if c))}


def _seed_entries(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Trained runs of one dataset and scale that differ only by seed: the main entry and 'seed N' variants."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, r in results.items():
        if "scale" in r and (r.get("variant") is None or str(r.get("variant")).startswith("seed")):
            groups.setdefault(f"{r.get('dataset', key)}, k = {r['k']}, {r['scale']} scale", []).append(r)
    return {g: rs for g, rs in groups.items() if len(rs) > 1}


def _spread(values: list[float]) -> str:
    import statistics

    if len(values) < 2:
        return f"{values[0]:.4g}" if values else ""
    return f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}"


def _spread_by_length(values: list[float], epochs: list[float]) -> str:
    """Mean ± standard deviation over the runs, or, where the runs trained for different numbers of
    epochs, one such summary per training length ("10 ep: 0.0273; 5 ep: 0.0335 ± 0.0004"): a
    spread over a mix of lengths would read as seed-to-seed variation."""
    if len(set(epochs)) < 2 or len(epochs) != len(values):
        return _spread(values)
    lengths = sorted(set(epochs), reverse=True)
    return "; ".join(f"{e:g} ep: " + _spread([v for v, ep in zip(values, epochs, strict=True) if ep == e])
                     for e in lengths)


def _seed_rows(runs: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """{quantity: {model kind: [value of each run]}} for the seeds table (marked estimates left out)."""
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, kind: str, value: Any) -> None:
        if isinstance(value, int | float) and value == value:
            rows.setdefault(name, {}).setdefault(kind, []).append(float(value))

    for r in runs:
        for kind, m in r["models"].items():
            add(EPOCHS_ROW, kind, m["training"].get("epochs"))
            add("test L1", kind, m["l1"])
            for method, est in m["io_kl"].items():
                if est.get("status", "ok") == "ok":
                    add(f"io KL [{method}]", kind, est["value"])
            add("io KL, 256 pixel levels, shared edges", kind, m["io_kl_256_levels"])
            for group in ("entropy", "relative_entropy"):
                if f"max_{group}" in m:
                    add(f"largest layer-wise {group.replace('_', ' ')} [callahan2021]", kind, m[f"max_{group}"]["value"])
            add("total exact Δh of the invertible blocks", kind, m.get("exact_dh_total"))
            for where in ("code", "output"):
                for name, est in m.get(where, {}).items():
                    if isinstance(est, dict) and est.get("status", "ok") == "ok":
                        label = name.replace("mi_input noisy", "I(X; T + ε), noise").replace("mi_label probe", "I(T; Y) ≥ [probe]")
                        add(f"{label}, {where}", kind, est["value"])
    return rows


def seeds_table(results: dict[str, Any]) -> list[str]:
    """Mean ± standard deviation over seeds of every headline number, and whether the order of
    the two models is the same in every seed (the only case where "A > B" may be claimed)."""
    lines: list[str] = []
    for group, runs in _seed_entries(results).items():
        rows = _seed_rows(runs)
        epochs = rows.get(EPOCHS_ROW, {})
        lines += ["", f"## Seeds: {group} ({len(runs)} runs)", "",
                  "Mean ± standard deviation over the runs (a single value: one run), per training length where "
                  "the runs differ in it; the order column says "
                  "whether the two models compare the same way in every run, and is empty unless both have "
                  "every run. Runs: " + "; ".join(f"`{c}`" for r in runs for c in r.get("commands", [r["command"]]))
                  + ".", "",
                  "| | INN | classical | order |", "|---|---|---|---|"]
        for name, per in rows.items():
            inn, cla = per.get("inn", []), per.get("classical", [])
            order = ""
            if len(inn) == len(cla) == len(runs):
                if all(a > b for a, b in zip(inn, cla, strict=True)):
                    order = f"INN > classical in all {len(runs)}"
                elif all(a < b for a, b in zip(inn, cla, strict=True)):
                    order = f"INN < classical in all {len(runs)}"
                else:
                    order = "differs between runs"
            if name == EPOCHS_ROW:  # the runs' training lengths, listed: a mean would hide a mix
                lines.append(f"| {name} | {', '.join(f'{v:g}' for v in inn)} | {', '.join(f'{v:g}' for v in cla)} | |")
                continue
            lines.append(f"| {name} | {_spread_by_length(inn, epochs.get('inn', []))} "
                         f"| {_spread_by_length(cla, epochs.get('classical', []))} | {order} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--dataset", choices=("mnist", "cifar10", "digits"), default="mnist")
    p.add_argument("--quick", action="store_true", help="reduced scale for a CPU")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "callahan2021")
    p.add_argument("--checkpoints", type=Path, help="analyse <dataset>-<model>-k<k>.pt from this folder")
    p.add_argument("--reuse", action="store_true", help="load (or resume) checkpoints under --runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bottleneck", type=int)
    p.add_argument("--sweep", type=int, nargs="*", help="bottleneck sizes of the sweep (default per dataset)")
    p.add_argument("--figures", type=Path, default=ROOT / "figures")
    p.add_argument("--results", type=Path, default=ROOT / "analyses" / "results")
    p.add_argument("--untrained", action="store_true",
                   help="the control: analyse freshly initialised models (seeded by --seed)")
    p.add_argument("--variant", help="store the results under '<dataset> <variant>', e.g. 'seed 1' for "
                   "another seed's --checkpoints (default: 'untrained' with --untrained)")
    p.add_argument("--models", nargs="+", choices=list(KINDS), default=list(KINDS),
                   help="the models to analyse (another seed may exist for one of them only)")
    p.add_argument("--no-figures", action="store_true", help="write numbers only (e.g. for another seed)")
    p.add_argument("--render-only", action="store_true", help="re-render the .md from the .json")
    args = p.parse_args(argv)
    if set(args.models) != set(KINDS) and not str(variant(args) or "").startswith("seed"):
        # a main run or a control compares the two models; one model alone is another seed of it
        p.error(f"--models {' '.join(args.models)} analyses one model as another seed of a run: "
                "add --variant 'seed N' (the main run and the controls need both models)")
    args.command = "python -m analyses.callahan2021 " + shlex.join(argv if argv is not None else sys.argv[1:])
    summary, page = args.results / "callahan2021.json", args.results / "callahan2021.md"
    results = json.loads(summary.read_text()) if summary.is_file() else {}
    if not args.render_only:
        key = args.dataset + (f" {variant(args)}" if variant(args) else "")
        results[key] = merge_models(results.get(key), analyse_dataset(args))
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(results, indent=1) + "\n")
    write_page(page, render_markdown(results))
    print(f"wrote {summary} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
