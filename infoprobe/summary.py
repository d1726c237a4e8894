"""What a person reads first: the per-layer table, the headline numbers, the status legend and
what the estimators can and cannot mean. Shared by the terminal, the report and ``compare``.

Everything here reads an `AnalysisResult`; a value whose status is not "ok" is never shown as
a plain number (`Estimate.text` marks it, `STATUS_LEGEND` explains the marks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infoprobe.estimators.estimate import Estimate

if TYPE_CHECKING:
    from infoprobe.results import AnalysisResult, LayerRow

__all__ = ["MEANING", "STATUS_LEGEND", "fit_table", "headline", "highlights", "interval_schemes", "layer_table"]

STATUS_LEGEND = {
    "B": "biased: n is too small for the dimension to trust the value",
    "D": "degenerate: the true value is ±∞ (constant or rank-deficient data, or a layer computed "
         "from a lower-dimensional bottleneck)",
    "C": "at ceiling: within 5 % of the largest value the estimator can return on these data",
    "X": "invalid: impossible (a KL or MI below zero) or not computable",
}

#: "What these numbers mean", one paragraph each (plain text; the report renders them).
MEANING = (
    ("The pooled histogram (callahan2021)",
     "Callahan & Paskett (2021) pool every value of every unit into one 100-bin histogram. Its entropy "
     "describes the marginal distribution of a layer's values (how spread out the numbers are), not how "
     "much information the layer carries about its input; it is capped at ln 100 = 4.61 nats and its KL "
     "compares histograms whose bins cover different intervals."),
    ("Joint estimates need n ≫ d",
     "The Gaussian and kNN entropies, the kNN KL and the KSG mutual information treat each sample as one "
     "point in d dimensions. With n samples they are only trustworthy when n is large compared with d "
     "(about 100·d for kNN, 10·d for the Gaussian fit); otherwise they are marked B. Layers after a "
     "k-dimensional bottleneck live on a ≤ k-dimensional set, so their differential entropy is −∞ (D). A "
     "value marked B or D has no interval: the spread of resamples would show how much it varies, not how "
     "far it is from the truth."),
    ("I(X; T) needs a resolution",
     "For a deterministic, injective layer T = f(X) the mutual information I(X; T) is infinite. The "
     "noisy-channel estimate I(X; T + ε) adds Gaussian noise of a stated size (a fraction of the layer's "
     "spread) and is capped at ln n; it measures how well the layer separates the samples at that "
     "resolution, not information lost. I(T; Y) with the class labels is bounded by H(Y). The probe "
     "estimate is H(Y) minus the held-out cross-entropy of a logistic regression of Y on T: a lower bound "
     "that stays valid in any dimension (where the kNN label MI is marked B); a small value may mean the "
     "label is there but not linearly readable."),
    ("The exact Δh",
     "For an invertible block with a known Jacobian the change of differential entropy across the block "
     "is exactly E[log |det J|] (change of variables): no estimator is involved. For an INN it shows that "
     "the bijective blocks only reshape the density; information is lost only where dimensions are "
     "dropped, at the bottleneck. For quantised inputs or constant pixels it is the change for the density of "
     "slightly dequantised inputs, as normalising flows assume; after the bottleneck the blocks act on a "
     "lower-dimensional set and their log|det J| is not an entropy change (X)."),
)

#: compact column names of the estimate groups
_GROUP_HEAD = {"entropy": "H", "entropy_change": "Δh", "relative_entropy": "KL prev",
               "mi_input": "I(X;T)", "mi_label": "I(T;Y)"}


def _order(method: str) -> int:
    """The paper's method first, then the analysis's own order (a stable sort keeps it)."""
    return 0 if method == "callahan2021" else 1


def layer_table(result: AnalysisResult, *, wide: bool = False, fold: bool | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-layer table.

    By default one column per estimate group's first method(s), values only, and pass-through
    layers folded into the layer before them; ``wide`` shows every method with its interval and
    (unless ``fold=True``) the pass-through layers too.
    """
    fold = not wide if fold is None else fold
    groups = []
    for group in _GROUP_HEAD:
        methods = sorted(result.methods(group), key=_order)
        if not wide:
            methods = methods[:2] if group == "entropy" else methods[:1]
        groups += [(group, m) for m in methods]
    header = ["#", "layer", "region", "dim", "rank",
              *(f"{_GROUP_HEAD[g]} {m}" if wide or g == "entropy" else _GROUP_HEAD[g] for g, m in groups)]
    rows = []
    for r in result.layers:
        if r.passthrough and fold:
            continue
        label = r.label + (" (=prev)" if r.passthrough else "")
        rank = "" if r.rank is None else str(r.rank)
        if r.intrinsic_dim is not None:
            rank = f"≤{r.intrinsic_dim}"
        rows.append([str(r.index), label, r.region, str(r.dim), rank,
                     *(_cell(getattr(r, g).get(m), wide) for g, m in groups)])
    return header, rows


def _cell(est: Estimate | None, wide: bool) -> str:
    return "" if est is None else est.text(".4g", interval=wide)


def fit_table(header: list[str], rows: list[list[str]], *, width: int = 120, left: int = 3) -> list[str]:
    """The table as aligned text lines of at most ``width`` characters (long labels shortened)."""
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    overflow = sum(widths) + 2 * (len(widths) - 1) - width
    if overflow > 0 and widths[1] > 12:  # shorten the layer names first
        widths[1] = max(12, widths[1] - overflow)
    lines = []
    for k, r in enumerate(table):
        cells = []
        for i, (c, w) in enumerate(zip(r, widths, strict=True)):
            c = c if len(c) <= w else "…" + c[-(w - 1):]
            cells.append(c.ljust(w) if i < left else c.rjust(w))
        lines.append("  ".join(cells)[:width].rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths)[:width])
    return lines


def _is_lower_bound(column: str) -> bool:
    """Whether the I(T; Y) column ``column`` (``probe``, ``knn(k=5)``) is registered as a lower bound.

    A column from a saved result whose method this process does not know is read as an estimate.
    """
    from infoprobe.errors import InfoprobeError
    from infoprobe.estimators.registry import lookup

    try:  # a column is the method's name, then its options in parentheses (EstimatorSpec.name)
        return lookup("mutual_information", column.split("(", 1)[0]).lower_bound
    except InfoprobeError:
        return False


def headline(result: AnalysisResult) -> list[tuple[str, str, str]]:
    """The three numbers worth reading first: (name, value text, what it says)."""
    g = result.globals
    out = []
    if g.l1 is not None:
        out.append(("reconstruction L1", f"{g.l1:.4g}", "mean absolute error per input value"))
    bottleneck = next((r for r in result.layers if r.region == "bottleneck"), None)
    if bottleneck is not None and bottleneck.mi_label:
        method, est = next(iter(bottleneck.mi_label.items()))
        ceiling = f" of at most H(Y) = {g.label_entropy:.3g}" if g.label_entropy else ""
        kept = "label information the code keeps at least (a lower bound)" if _is_lower_bound(method) \
            else "label information kept by the code"
        out.append((f"I(bottleneck; Y) [{method}]", est.text(".4g"), f"{kept}{ceiling}"))
    # only readable blocks: after the bottleneck log|det J| is not an entropy change (status X)
    exact = [r.entropy_change["exact"] for r in result.layers
             if "exact" in r.entropy_change and r.entropy_change["exact"].ok]
    if exact:
        out.append(("total exact Δh of the invertible blocks", f"{sum(e.value for e in exact):.4g}",
                    f"sum of E log|det J| over the {len(exact)} blocks before the bottleneck (nats)"))
    elif g.kl_data_reconstruction:
        kl = g.kl_data_reconstruction
        method = "histogram" if "histogram" in kl else next(iter(kl))
        est = kl[method]
        out.append((f"KL(data ‖ reconstruction) [{method}]", est.text(".4g"), "input/output relative entropy"))
    return out[:3]


def interval_schemes(result: AnalysisResult) -> str:
    """Which interval each estimator actually used, e.g. "95 % subsampling: knn, ksg; 95 % clt: exact"."""
    used: dict[str, list[str]] = {}
    for row in result.layers:
        for _, method, est in row.estimates():
            if est.interval is not None and est.level is not None:
                names = used.setdefault(f"{est.level:.0%} {est.interval}", [])
                if method not in names:
                    names.append(method)
    return "; ".join(f"{scheme}: {', '.join(methods)}" for scheme, methods in used.items()) or "none"


def highlights(result: AnalysisResult, *, top: int = 3) -> list[tuple[str, str, str]]:
    """Layers where the readable quantities change most: (layer, what, change text)."""
    found: list[tuple[float, str, str, str]] = []
    rows = [r for r in result.layers if not r.passthrough]
    for group in ("entropy", "mi_input", "mi_label"):
        for method in result.methods(group)[:2]:
            prev: tuple[LayerRow, Estimate] | None = None
            for r in rows:
                est = getattr(r, group).get(method)
                if est is None:
                    continue
                if prev is not None and est.ok and prev[1].ok:
                    change = est.value - prev[1].value
                    found.append((abs(change), r.label, f"{_GROUP_HEAD[group]} [{method}]",
                                  f"{prev[1].value:.4g} → {est.value:.4g} ({change:+.3g})"))
                prev = (r, est)
    for r in rows:
        est = r.entropy_change.get("exact")
        if est is not None and est.ok:
            found.append((abs(est.value), r.label, "exact Δh", est.text(".4g")))
    found.sort(key=lambda item: -item[0])
    return [(label, what, text) for _, label, what, text in found[:top]]
