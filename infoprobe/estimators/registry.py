"""The method table and the public entry points.

A new estimator is one function ``f(x, **options) -> (value_in_nats, notes)`` (two arrays for
KL and MI) in its family module plus one `Method` line in ``_METHODS``. ``notes`` are strings
(remarks kept on the estimate) or `Flag` objects (a reason the value cannot be read as a plain
number). The largest value the method can return on given data is the Method's ``ceiling``.
Every public call goes through `_estimate`: preset → lookup → samples → bind → value →
interval → `judge`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators import binned, gaussian, histogram, kde, knn, probe, renyi
from infoprobe.estimators._base import as_labels, as_samples, is_labels, label_entropy, log_base
from infoprobe.estimators.estimate import (
    NONNEGATIVE,
    Estimate,
    EstimationError,
    Flag,
    Note,
    Notes,
    Rank,
    StandardError,
    judge,
)
from infoprobe.estimators.presets import preset_options

__all__ = [
    "DEFAULT_METHOD",
    "Method",
    "available",
    "entropy",
    "kl_divergence",
    "mutual_information",
    "noisy_channel_mi",
    "register",
]
EstimatorFunction = Callable[..., tuple[float, Sequence[Note]]]
#: (arrays, bound options) -> the largest value the method can return on these data, or None
Ceiling = Callable[[Sequence[torch.Tensor], dict[str, Any]], float | None]


@dataclass(frozen=True)
class Method:
    """One estimator: what it estimates, how, the paper, how to resample it, its ceiling.

    ``resampling`` is "bootstrap" (resample with replacement), "subsampling" (half-size
    subsamples without replacement, for estimators that duplicated points would bias) or "clt"
    (a normal interval from the `StandardError` note the function returns, for a value that is a
    mean of independent terms, such as a held-out loss).
    For mutual information, ``label_entropy`` names the entropy method used for
    I(X;Y) = H(X) − Σ_y p(y) H(X|Y=y) when y holds class labels (None: the function takes
    labels itself), unless ``label_function`` gives a dedicated estimator for class labels.
    """

    quantity: str
    name: str
    function: EstimatorFunction
    description: str
    reference: str
    resampling: str
    ceiling: Ceiling | None = None
    label_entropy: str | None = None
    label_function: EstimatorFunction | None = None
    #: the values of many subsamples of one array at once, (array, index sets, **options) -> values,
    #: when that is cheaper than one call each; equal to them up to float round-off
    subsets: Callable[..., list[float]] | None = None
    #: a lower bound (the probe): near its largest possible value it pins the quantity rather
    #: than saturating, so no ceiling is applied
    lower_bound: bool = False


def _log_n(arrays: Sequence[torch.Tensor], options: dict[str, Any]) -> float:
    return math.log(arrays[0].shape[0])


def _log_bins(arrays: Sequence[torch.Tensor], options: dict[str, Any]) -> float:
    return math.log(options.get("bins", 100))


def _kde_entropy_ceiling(arrays: Sequence[torch.Tensor], options: dict[str, Any]) -> float:
    n, d = arrays[0].shape
    return kde.noise_entropy(d, options.get("noise_var", kde.DEFAULT_NOISE_VAR)) + math.log(n)


def _ksg_ceiling(arrays: Sequence[torch.Tensor], options: dict[str, Any]) -> float:
    return knn.ksg_ceiling(arrays[0].shape[0], options.get("k", knn.DEFAULT_K))


def _label_ceiling(arrays: Sequence[torch.Tensor], options: dict[str, Any]) -> float:
    return label_entropy(arrays[1])


_KSG = "Kraskov, Stögbauer & Grassberger (2004), Phys. Rev. E 69, 066138"
_RENYI = "Giraldo, Rao & Príncipe (2014), IEEE Trans. Inf. Theory 61(1); Yu & Príncipe (2019), Neural Networks 117"
_KT = "Kolchinsky & Tracey (2017), Entropy 19(7):361; Saxe et al. (2018), ICLR"
_BINNED = "Shwartz-Ziv & Tishby (2017), arXiv:1703.00810; Saxe et al. (2018), ICLR"
_GAUSS = "Cover & Thomas (2006), ch. 8; bias correction Misra, Singh & Demchuk (2005), J. Multivar. Anal. 92"

_METHODS: dict[str, Method] = {
    m.quantity + ":" + m.name: m
    for m in [
        Method("entropy", "histogram", histogram.histogram_entropy,
               "plug-in entropy of the histogram of pooled values", "Shannon (1948); Miller (1955)",
               "bootstrap", ceiling=_log_bins),
        Method("entropy", "binned", binned.binned_entropy,
               "plug-in entropy of joint bin patterns per sample", _BINNED, "subsampling", ceiling=_log_n),
        Method("entropy", "gaussian", gaussian.gaussian_entropy,
               "entropy of the fitted Gaussian, bias-corrected log-det", _GAUSS, "bootstrap"),
        Method("entropy", "knn", knn.knn_entropy,
               "Kozachenko–Leonenko k-NN differential entropy (Euclidean)",
               "Kozachenko & Leonenko (1987), Probl. Inf. Transm. 23; " + _KSG, "subsampling"),
        Method("entropy", "kde", kde.kde_entropy,
               "pairwise-distance upper bound for data + Gaussian noise", _KT, "subsampling",
               ceiling=_kde_entropy_ceiling),
        Method("entropy", "renyi", renyi.renyi_entropy,
               "matrix-based α-order Rényi entropy of the Gram matrix", _RENYI, "subsampling", ceiling=_log_n),
        Method("kl_divergence", "histogram", histogram.histogram_kl,
               "KL between histograms of pooled values (shared edges)", "Kullback & Leibler (1951)", "bootstrap"),
        Method("kl_divergence", "knn", knn.knn_kl,
               "k-NN divergence estimator, n ≠ m allowed",
               "Wang, Kulkarni & Verdú (2009), IEEE Trans. Inf. Theory 55(5)", "subsampling"),
        Method("kl_divergence", "gaussian", gaussian.gaussian_kl,
               "closed-form KL between the fitted Gaussians", "Cover & Thomas (2006)", "bootstrap"),
        Method("mutual_information", "ksg", knn.ksg_mi,
               "KSG estimator 1, max-norm (class labels: Ross 2014)",
               _KSG + "; Ross (2014), PLoS ONE 9(2):e87357", "subsampling", ceiling=_ksg_ceiling,
               label_function=knn.ksg_label_mi),
        Method("mutual_information", "binned", binned.binned_mi,
               "plug-in MI of binned patterns", _BINNED, "subsampling", ceiling=_log_n),
        Method("mutual_information", "gaussian", gaussian.gaussian_mi,
               "MI of the jointly Gaussian fit", _GAUSS, "bootstrap", label_entropy="gaussian"),
        Method("mutual_information", "renyi", renyi.renyi_mi,
               "matrix-based Rényi MI via the Hadamard product of Gram matrices", _RENYI, "subsampling",
               ceiling=_log_n),
        Method("mutual_information", "probe", probe.probe_needs_labels,
               "held-out linear-probe lower bound H(Y) − cross-entropy (class labels only)",
               "Barber & Agakov (2003), NeurIPS 16 (the variational bound)", "clt",
               label_function=probe.probe_label_mi, lower_bound=True),
        Method("mutual_information", "kde", kde.kde_mi,
               "H(X)+H(Y)−H(X,Y) from Kolchinsky–Tracey bounds", _KT, "subsampling",
               ceiling=_log_n, label_entropy="kde"),
    ]
}

DEFAULT_METHOD = "knn"  # entropy and KL; method=None means "the default, or the preset's"
QUANTITIES = ("entropy", "kl_divergence", "mutual_information")


def register(method: Method) -> Method:
    """Add ``method`` to the table (the one registration line of a new estimator); returns it.

    A third-party estimator is a function ``f(x, **options) -> (value_in_nats, notes)`` (two
    arrays for KL and MI) wrapped in a `Method`; it is then reachable by name from `entropy`,
    `kl_divergence`, `mutual_information` and the analysis (``"entropy=NAME(option=...)"``).
    """
    key = method.quantity + ":" + method.name
    if method.quantity not in QUANTITIES:
        raise InfoprobeError(f"Unknown quantity {method.quantity!r}; expected one of {', '.join(QUANTITIES)}")
    if key in _METHODS:
        raise InfoprobeError(f"A {method.quantity} method named {method.name!r} is already registered; pick another name")
    _METHODS[key] = method
    return method


def available(quantity: str | None = None) -> dict[str, tuple[Method, ...]]:
    """Method name -> the `Method` entries (quantity, description, reference) with that name.

    With ``quantity`` ("entropy", "kl_divergence", "mutual_information") only those.
    """
    if quantity is not None and quantity not in QUANTITIES:
        raise InfoprobeError(f"Unknown quantity {quantity!r}; expected one of {', '.join(QUANTITIES)}")
    table: dict[str, tuple[Method, ...]] = {}
    for method in _METHODS.values():
        if quantity is None or method.quantity == quantity:
            table[method.name] = (*table.get(method.name, ()), method)
    return table


def lookup(quantity: str, name: str) -> Method:
    """The `Method` registered for ``quantity`` under ``name``."""
    key = quantity + ":" + str(name)
    if key not in _METHODS:
        names = sorted(m.name for m in _METHODS.values() if m.quantity == quantity)
        raise InfoprobeError(f"Unknown {quantity} method {name!r}; expected one of {names}")
    return _METHODS[key]


def _bind(function: EstimatorFunction, what: str, options: dict[str, Any], seed: int) -> Callable[..., tuple[float, Notes]]:
    """``function`` with ``options`` checked against its signature and bound."""
    parameters = inspect.signature(function).parameters
    valid = [p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InfoprobeError(f"Unknown option(s) {unknown} for {what}; valid options: {valid}")
    bound = dict(options)
    if "seed" in valid and "seed" not in bound:
        bound["seed"] = seed

    def call(*arrays: torch.Tensor) -> tuple[float, Notes]:
        value, notes = function(*arrays, **bound)
        return value, list(notes)

    return call


def check_interval_options(ci: float | None, n_boot: int) -> None:
    """Raise `InfoprobeError` unless ``ci`` is None or in (0, 1) and ``n_boot`` an integer >= 2."""
    if ci is not None and (isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1):
        raise InfoprobeError(f"Expected a confidence level 0 < ci < 1, got {ci!r}; pass e.g. ci=0.95")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise InfoprobeError(f"Expected n_boot to be an integer >= 2, got {n_boot!r}; pass e.g. n_boot=100")


def _interval(
    call: Callable[..., tuple[float, Notes]],
    arrays: list[torch.Tensor],
    value: float,
    *,
    ci: float,
    n_boot: int,
    seed: int,
    scheme: str,
    paired: bool,
    subsets: Callable[[torch.Tensor, list[torch.Tensor]], list[float]] | None = None,
) -> tuple[float, float] | None:
    """A ``ci`` interval centred on the full-sample ``value``: value ± t_{B−1}·s.

    The resamples (bootstrap: n rows with replacement; subsampling: m = n/2 rows without,
    the delete-d jackknife of Shao & Wu 1989, spread scaled by sqrt(m/(n − m)), which is 1
    here: half-samples without replacement vary as much as a full-sample estimate, since the
    finite-population factor 1 − m/n halves their variance) give the spread of the estimator
    around its own mean; that spread, not the resamples' location, is put around ``value``. A percentile
    interval of a bias-corrected statistic would be shifted by the bias the resampling adds
    (duplicated rows shrink a covariance) and may not even contain the estimate. The interval
    is the standard (normal) one of Efron & Tibshirani (1993, §13.2) with s the resamples'
    standard deviation and Student's t quantile for B resamples: empirical 2.5 % / 97.5 %
    quantiles of B = 30 resamples lie between the outermost order statistics and cover only
    about 89 % (measured 87 % on a 2-d Gaussian entropy, benchmarks/interval_coverage.py). None when
    fewer than two resamples give a finite value.
    """
    generator = torch.Generator().manual_seed(seed)
    indices = []
    for _ in range(n_boot):
        drawn: list[torch.Tensor] = []
        for array in arrays:
            n = array.shape[0]
            if drawn and paired:
                index = drawn[-1]
            elif scheme == "bootstrap":
                index = torch.randint(n, (n,), generator=generator)
            else:
                index = torch.randperm(n, generator=generator)[: n // 2]
            drawn.append(index)
        indices.append(drawn)
    if subsets is not None and len(arrays) == 1:
        values = subsets(arrays[0], [drawn[0].to(arrays[0].device) for drawn in indices])
    else:
        values = []
        for drawn in indices:
            try:
                values.append(call(*(a[i.to(a.device)] for a, i in zip(arrays, drawn, strict=True)))[0])
            except EstimationError:
                values.append(math.nan)
    boot = torch.tensor(values, dtype=torch.float64)
    boot = boot[torch.isfinite(boot)]
    if boot.numel() < 2:
        return None
    from scipy.stats import t as student_t  # lazy: scipy is slow to import

    n = arrays[0].shape[0]
    scale = 1.0 if scheme == "bootstrap" else math.sqrt((n // 2) / (n - n // 2))
    half_width = float(student_t.ppf((1 + ci) / 2, boot.numel() - 1)) * scale * float(boot.std())
    return (value - half_width, value + half_width)


def _wants_interval(quantity: str, value: float, notes: Notes) -> bool:
    """False for an estimate its estimator already flagged biased or degenerate: a resampling
    spread says how much the number varies, not how far it is from the truth, so around a
    number known to be off it would read as a precision it does not have (and it costs
    ``n_boot`` more estimates, most of an analysis of high-dimensional layers). A negative
    estimate of a non-negative quantity keeps its interval: `judge` needs it to tell "≈ 0"
    from "invalid"."""
    if quantity in NONNEGATIVE and value < 0:
        return True
    return not any(isinstance(n, Flag) and n.status in ("biased", "degenerate") for n in notes)


def _resolve_preset(
    quantity: str, method: str | None, preset: str | None, options: dict[str, Any]
) -> tuple[str, dict[str, Any], str]:
    if preset is None:
        method = DEFAULT_METHOD if method is None else method
        return method, options, method
    if options:
        raise InfoprobeError(
            f"Preset {preset!r} fixes every option, got extra options {sorted(options)}; drop them or the preset"
        )
    preset_method, preset_opts = preset_options(preset, quantity)
    if method not in (None, preset_method):
        raise InfoprobeError(
            f"Preset {preset!r} uses method {preset_method!r}, got method={method!r}; drop method= or the preset"
        )
    return preset_method, preset_opts, f"{preset_method}[{preset}]"


def _estimate(
    quantity: str,
    function: EstimatorFunction,
    arrays: list[torch.Tensor],
    *,
    spec: Method,
    label: str,
    options: dict[str, Any],
    d: int,
    base: Any,
    ci: float | None,
    n_boot: int,
    seed: int,
    paired: bool,
) -> Estimate:
    """The one path of every public call: bind, value, interval, ceiling, status, units."""
    divisor, units = log_base(base)
    check_interval_options(ci, n_boot)
    call = _bind(function, f"{quantity} method {spec.name!r}", options, seed)
    value, notes = call(*arrays)
    interval = None
    standard_error = next((n.value for n in notes if isinstance(n, StandardError)), None)
    if ci is not None and spec.resampling == "clt":
        if standard_error is not None and math.isfinite(value):
            half_width = NormalDist().inv_cdf((1 + ci) / 2) * standard_error
            interval = (value - half_width, value + half_width)
    elif ci is not None and math.isfinite(value) and _wants_interval(quantity, value, notes):
        subsets = None
        n_rows, d_features = arrays[0].shape[0], arrays[0][:1].numel()
        if spec.subsets is not None and n_rows <= kde.SUBSET_MATRIX_MAX and d_features >= kde.SUBSET_MIN_D:
            batch = spec.subsets
            subsets = lambda array, index_sets: batch(array, index_sets, **options)  # noqa: E731
        interval = _interval(call, arrays, value, ci=ci, n_boot=n_boot, seed=seed,
                             scheme=spec.resampling, paired=paired, subsets=subsets)
        if interval is None:
            notes = [*notes, "no interval: fewer than two resamples gave a finite value"]
    ceiling = None
    if spec.ceiling is not None:
        ceiling = spec.ceiling(arrays, {**options})
    status, reason, warnings = judge(value, quantity=quantity, notes=notes, ci=interval, ceiling=ceiling)
    rank = next((n.value for n in notes if isinstance(n, Rank)), None)
    estimate = Estimate(
        value, interval, label, arrays[0].shape[0], d, "nats", quantity=quantity, status=status,
        reason=reason, ceiling=ceiling, interval=None if interval is None else spec.resampling,
        level=None if interval is None else ci, rank=rank, warnings=warnings,
    )
    return estimate.to_units(divisor, units)


def entropy(
    x: Any,
    *,
    method: str | None = None,
    base: Any = "e",
    preset: str | None = None,
    ci: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    **options: Any,
) -> Estimate:
    """Entropy of the samples ``x`` (n_samples, *features), in nats (base "e") or bits (base 2).

    ``method`` is one of `available("entropy")` (default "knn", or the preset's); ``options``
    go to it (e.g. ``k`` for "knn", ``bins`` for "histogram"). ``preset="callahan2021"``
    reproduces Callahan & Paskett (2021). ``ci=0.95`` adds an interval from ``n_boot``
    resamples (none for an estimate flagged biased or degenerate), seeded by ``seed`` (which
    also seeds tie-breaking noise). Computes on ``device`` (default: x's). The returned `Estimate` carries a status: a rank-deficient or
    constant ``x`` has differential entropy −∞ ("degenerate").
    """
    log_base(base)
    name, options, label = _resolve_preset("entropy", method, preset, options)
    spec = lookup("entropy", name)
    xt = as_samples(x, name="x", device=device)
    return _estimate("entropy", spec.function, [xt], spec=spec, label=label, options=options,
                     d=xt.shape[1], base=base, ci=ci, n_boot=n_boot, seed=seed, paired=False)


def kl_divergence(
    p: Any,
    q: Any,
    *,
    method: str | None = None,
    base: Any = "e",
    preset: str | None = None,
    paired: bool = False,
    ci: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    **options: Any,
) -> Estimate:
    """KL divergence D(p ‖ q) from samples of p and of q (sample sizes may differ).

    ``method`` is one of `available("kl_divergence")` (default "knn", or the preset's); see
    `entropy` for the other arguments. ``paired=True`` says that p[i] and q[i] come from the
    same input (two layers of one pass, data and reconstruction): the sample estimators assume
    independent samples, and paired rows bias them (KL(x ‖ x) = −34 nats on MNIST with kNN),
    so the rows are split at random (seeded) into two halves and p is taken from one, q from
    the other. ``preset="callahan2021"`` bins each array over its own range, as the reference
    analysis did.
    """
    log_base(base)
    name, options, label = _resolve_preset("kl_divergence", method, preset, options)
    spec = lookup("kl_divergence", name)
    pt = as_samples(p, name="p", device=device)
    qt = as_samples(q, name="q", device=pt.device)
    if pt.shape[1] != qt.shape[1] and name != "histogram":
        raise InfoprobeError(
            f"Expected p and q with the same number of features, got {pt.shape[1]} and {qt.shape[1]}; "
            "compare samples of the same space"
        )
    if paired:
        pt, qt = independent_halves(pt, qt, seed=seed)
    return _estimate("kl_divergence", spec.function, [pt, qt], spec=spec, label=label, options=options,
                     d=pt.shape[1], base=base, ci=ci, n_boot=n_boot, seed=seed, paired=False)


def independent_halves(p: torch.Tensor, q: torch.Tensor, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """p and q rows from two disjoint, seeded random halves of the shared row index.

    For row-aligned samples (p[i] and q[i] from the same input), this makes the two samples
    independent draws of their distributions, as divergence estimators assume.
    """
    if p.shape[0] != q.shape[0]:
        raise InfoprobeError(
            f"Expected row-aligned samples for paired=True (same n), got {p.shape[0]} and {q.shape[0]}; "
            "pass paired=False for independent samples"
        )
    if p.shape[0] < 4:
        raise EstimationError(f"Expected at least 4 paired samples to split into halves, got {p.shape[0]}")
    order = torch.randperm(p.shape[0], generator=torch.Generator().manual_seed(seed)).to(p.device)
    half = p.shape[0] // 2
    return p[order[:half]], q[order[half : 2 * half]]


def _label_mi(entropy_method: Method, options: dict[str, Any]) -> EstimatorFunction:
    """I(X;Y) = H(X) − Σ_y p(y) H(X|Y=y) for class labels y, with one entropy method."""

    def mi(x: torch.Tensor, labels: torch.Tensor, **opts: Any) -> tuple[float, Notes]:
        h, first = entropy_method.function(x, **opts)
        notes = list(first)
        classes, counts = torch.unique(labels, return_counts=True)
        conditional = 0.0
        for cls, count in zip(classes.tolist(), counts.tolist(), strict=True):
            subset = x[labels == cls]
            if subset.shape[0] < 2:
                raise EstimationError(f"class y={cls} has {count} sample(s); the conditional entropy needs 2 or more")
            try:
                h_c, notes_c = entropy_method.function(subset, **opts)
            except InfoprobeError as error:
                raise error.with_context(f"class y={cls} ({count} samples)") from error
            conditional += count / x.shape[0] * h_c
            notes = notes + [n for n in notes_c if isinstance(n, str)]
        if not math.isfinite(h - conditional):
            # a rank-deficient x has H(X) = −∞ and H(X|y) = −∞: their difference is undefined
            flags = [n for n in notes if isinstance(n, Flag)]
            why = flags[0].reason if flags else f"H(X) = {h}"
            return math.nan, [Flag("invalid", f"I = H(X) − Σ p(y) H(X|y) is undefined ({why}); "
                                              "use method='ksg' for class labels")]
        return h - conditional, list(notes)

    mi.__signature__ = inspect.signature(entropy_method.function)  # type: ignore[attr-defined]
    return mi


def mutual_information(
    x: Any,
    y: Any,
    *,
    method: str = "ksg",
    base: Any = "e",
    ci: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    **options: Any,
) -> Estimate:
    """Mutual information I(X;Y) from paired samples ``x`` and ``y``.

    ``y`` may be integer class labels (shape (n,) or (n, 1), integer dtype); then "ksg" uses
    the estimator of Ross (2014) for a continuous X and a discrete Y, whose ceiling is H(Y);
    "gaussian" and "kde" use I = H(X) − Σ_y p(y) H(X|Y=y) with their entropy estimator;
    "binned" and "renyi" take labels directly. See `entropy` for the rest.
    """
    log_base(base)
    spec = lookup("mutual_information", method)
    xt = as_samples(x, name="x", device=device)
    function = spec.function
    if is_labels(y):
        yt = as_labels(y, n=xt.shape[0], device=xt.device)
        if spec.label_function is not None:
            function = spec.label_function
        elif spec.label_entropy is not None:
            function = _label_mi(lookup("entropy", spec.label_entropy), options)
        spec = replace(spec, ceiling=None if spec.lower_bound else _label_ceiling)
        d = xt.shape[1] + 1
    else:
        yt = as_samples(y, name="y", device=xt.device)
        if yt.shape[0] != xt.shape[0]:
            raise InfoprobeError(
                f"Expected paired samples (same n) for x and y, got {xt.shape[0]} and {yt.shape[0]}; "
                "pass y[i] belonging to x[i]"
            )
        d = xt.shape[1] + yt.shape[1]
    return _estimate("mutual_information", function, [xt, yt], spec=spec, label=method, options=options,
                     d=d, base=base, ci=ci, n_boot=n_boot, seed=seed, paired=True)


def _noisy_channel(t: torch.Tensor, *, scale: float) -> tuple[float, Notes]:
    """I(X; T + ε) ≤ the Kolchinsky–Tracey pairwise term at noise s.d. scale × (T's RMS radius)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise InfoprobeError(f"Expected a positive noise scale, got {scale!r}; pass e.g. scale=0.3")
    centred = t.to(torch.float64) - t.to(torch.float64).mean(0)
    radius = float(centred.pow(2).sum(1).mean().sqrt())
    if radius == 0.0:
        return 0.0, ["constant layer: T + ε is independent of X, I = 0"]
    return kde.pairwise_term(t, noise_var=(scale * radius) ** 2), []


_NOISY_CHANNEL = Method("mutual_information", "noisy_channel", _noisy_channel,
                        "Kolchinsky–Tracey upper bound on I(X; T + ε), noise relative to the layer's radius",
                        _KT, "subsampling", ceiling=_log_n, subsets=kde.relative_noise_terms)


def noisy_channel_mi(
    t: Any,
    *,
    scale: float = 0.3,
    base: Any = "e",
    ci: float | None = None,
    n_boot: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> Estimate:
    """I(X; T + ε) for a deterministic layer T = f(X), ε ~ N(0, (scale·r)² I), an upper bound.

    ``t`` holds the layer's values for n inputs (one row per input); X is the input drawn
    uniformly from those n inputs. r is the layer's RMS distance from its mean,
    r = sqrt(mean_i ‖t_i − t̄‖²), so ``scale`` is a resolution relative to the layer: details of
    T finer than about scale·r are blurred by the noise, and the value does not change when the
    layer is rescaled. The exact I(X; T) of an injective deterministic layer is infinite (for
    continuous X) or log n (for n distinct inputs) whatever the layer does, which is why a
    resolution is needed to compare layers.

    The value is the pairwise-distance bound of Kolchinsky & Tracey (2017, Entropy 19(7):361),
    as used by Saxe et al. (2018, ICLR): I(X; T + ε) = H(T + ε) − H(ε) ≤
    −(1/n) Σ_i log (1/n) Σ_j exp(−‖t_i − t_j‖² / (2σ²)) nats, σ = scale·r (`kde.pairwise_term`).
    It is an upper bound, at most log n (the ceiling: at_ceiling when the noise separates all
    inputs); a constant layer gives exactly 0. See `entropy` for ``base``, ``ci``, ``n_boot``,
    ``seed`` and ``device``.
    """
    log_base(base)
    tt = as_samples(t, name="t", device=device)
    return _estimate("mutual_information", _noisy_channel, [tt], spec=_NOISY_CHANNEL, label="noisy_channel",
                     options={"scale": scale}, d=tt.shape[1], base=base, ci=ci, n_boot=n_boot, seed=seed,
                     paired=False)
