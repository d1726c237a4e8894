"""The method table and the three public entry points.

A new estimator is one function ``f(x, **options) -> (value_in_nats, warnings)`` (two arrays
for KL and MI) in its family module plus one `Method` line in ``_METHODS``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators import binned, gaussian, histogram, kde, knn, renyi
from infoprobe.estimators._base import Estimate, as_labels, as_samples, is_labels, log_base
from infoprobe.estimators.presets import preset_options

__all__ = ["Method", "available", "entropy", "kl_divergence", "mutual_information"]


@dataclass(frozen=True)
class Method:
    """One estimator: what it estimates, how, the paper, and how to resample it for a CI.

    ``resampling`` is "bootstrap" (resample with replacement) or "subsample" (half-size
    subsamples without replacement, for estimators that duplicated points would bias).
    For mutual information, ``label_entropy`` names the entropy method used for
    I(X;Y) = H(X) − Σ_y p(y) H(X|Y=y) when y holds class labels (None: the function takes
    labels itself), unless ``label_function`` gives a dedicated estimator for class labels.
    """

    quantity: str
    name: str
    function: Callable[..., tuple[float, list[str]]]
    description: str
    reference: str
    resampling: str
    label_entropy: str | None = None
    label_function: Callable[..., tuple[float, list[str]]] | None = None


_KSG = "Kraskov, Stögbauer & Grassberger (2004), Phys. Rev. E 69, 066138"
_RENYI = "Giraldo, Rao & Príncipe (2014), IEEE Trans. Inf. Theory 61(1); Yu & Príncipe (2019), Neural Networks 117"
_KT = "Kolchinsky & Tracey (2017), Entropy 19(7):361; Saxe et al. (2018), ICLR"
_BINNED = "Shwartz-Ziv & Tishby (2017), arXiv:1703.00810; Saxe et al. (2018), ICLR"
_GAUSS = "Cover & Thomas (2006), ch. 8; bias correction Misra, Singh & Demchuk (2005), J. Multivar. Anal. 92"

_METHODS: dict[str, Method] = {
    m.quantity + ":" + m.name: m
    for m in [
        Method("entropy", "histogram", histogram.histogram_entropy,
               "plug-in entropy of the histogram of pooled values", "Shannon (1948); Miller (1955)", "bootstrap"),
        Method("entropy", "binned", binned.binned_entropy,
               "plug-in entropy of joint bin patterns per sample", _BINNED, "subsample"),
        Method("entropy", "gaussian", gaussian.gaussian_entropy,
               "entropy of the fitted Gaussian, bias-corrected log-det", _GAUSS, "bootstrap"),
        Method("entropy", "knn", knn.knn_entropy,
               "Kozachenko–Leonenko k-NN differential entropy (Euclidean)",
               "Kozachenko & Leonenko (1987), Probl. Inf. Transm. 23; " + _KSG, "subsample"),
        Method("entropy", "kde", kde.kde_entropy,
               "pairwise-distance upper bound for data + Gaussian noise", _KT, "subsample"),
        Method("entropy", "renyi", renyi.renyi_entropy,
               "matrix-based α-order Rényi entropy of the Gram matrix", _RENYI, "subsample"),
        Method("kl_divergence", "histogram", histogram.histogram_kl,
               "KL between histograms of pooled values (shared edges)", "Kullback & Leibler (1951)", "bootstrap"),
        Method("kl_divergence", "knn", knn.knn_kl,
               "k-NN divergence estimator, n ≠ m allowed",
               "Wang, Kulkarni & Verdú (2009), IEEE Trans. Inf. Theory 55(5)", "subsample"),
        Method("kl_divergence", "gaussian", gaussian.gaussian_kl,
               "closed-form KL between the fitted Gaussians", "Cover & Thomas (2006)", "bootstrap"),
        Method("mutual_information", "ksg", knn.ksg_mi,
               "KSG estimator 1, max-norm (class labels: Ross 2014)",
               _KSG + "; Ross (2014), PLoS ONE 9(2):e87357", "subsample",
               label_function=knn.ksg_label_mi),
        Method("mutual_information", "binned", binned.binned_mi,
               "plug-in MI of binned patterns", _BINNED, "subsample"),
        Method("mutual_information", "gaussian", gaussian.gaussian_mi,
               "MI of the jointly Gaussian fit", _GAUSS, "bootstrap", label_entropy="gaussian"),
        Method("mutual_information", "renyi", renyi.renyi_mi,
               "matrix-based Rényi MI via the Hadamard product of Gram matrices", _RENYI, "subsample"),
        Method("mutual_information", "kde", kde.kde_mi,
               "H(X)+H(Y)−H(X,Y) from Kolchinsky–Tracey bounds", _KT, "subsample", label_entropy="kde"),
    ]
}


def available(quantity: str | None = None) -> dict[str, tuple[Method, ...]]:
    """Method name -> the `Method` entries (quantity, description, reference) with that name.

    With ``quantity`` ("entropy", "kl_divergence", "mutual_information") only those.
    """
    table: dict[str, tuple[Method, ...]] = {}
    for method in _METHODS.values():
        if quantity is None or method.quantity == quantity:
            table[method.name] = (*table.get(method.name, ()), method)
    if quantity is not None and not table:
        raise InfoprobeError(
            f"Unknown quantity {quantity!r}; expected 'entropy', 'kl_divergence' or 'mutual_information'"
        )
    return table


def _lookup(quantity: str, name: str) -> Method:
    key = quantity + ":" + str(name)
    if key not in _METHODS:
        names = sorted(m.name for m in _METHODS.values() if m.quantity == quantity)
        raise InfoprobeError(f"Unknown {quantity} method {name!r}; expected one of {names}")
    return _METHODS[key]


def _bind(method: Method, options: dict[str, Any], seed: int) -> Callable[..., tuple[float, list[str]]]:
    """``method.function`` with ``options`` checked against its signature and bound."""
    parameters = inspect.signature(method.function).parameters
    valid = [p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InfoprobeError(
            f"Unknown option(s) {unknown} for {method.quantity} method {method.name!r}; valid options: {valid}"
        )
    bound = dict(options)
    if "seed" in valid and "seed" not in bound:
        bound["seed"] = seed

    def call(*arrays: torch.Tensor) -> tuple[float, list[str]]:
        return method.function(*arrays, **bound)

    return call


def _interval(
    estimate: Callable[..., tuple[float, list[str]]],
    arrays: list[torch.Tensor],
    value: float,
    *,
    ci: float,
    n_boot: int,
    seed: int,
    scheme: str,
    paired: bool,
) -> tuple[float, float]:
    """Percentile bootstrap CI, or a subsampling CI (half-size subsamples, spread scaled by
    sqrt(m/n) and centred on the full-sample value; Politis & Romano 1994)."""
    if not 0 < ci < 1:
        raise InfoprobeError(f"Expected a confidence level 0 < ci < 1, got {ci!r}; pass e.g. ci=0.95")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise InfoprobeError(f"Expected n_boot to be an integer >= 2, got {n_boot!r}; pass e.g. n_boot=100")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_boot):
        resampled, shared = [], None
        for array in arrays:
            n = array.shape[0]
            if shared is not None and paired:
                index = shared
            elif scheme == "bootstrap":
                index = torch.randint(n, (n,), generator=generator)
            else:
                index = torch.randperm(n, generator=generator)[: n // 2]
            shared = index
            resampled.append(array[index.to(array.device)])
        values.append(estimate(*resampled)[0])
    boot = torch.tensor(values, dtype=torch.float64)
    boot = boot[torch.isfinite(boot)]
    if boot.numel() < 2:
        return (math.nan, math.nan)
    levels = torch.tensor([(1 - ci) / 2, (1 + ci) / 2], dtype=torch.float64)
    if scheme == "bootstrap":
        low, high = torch.quantile(boot, levels).tolist()
        return (low, high)
    n = arrays[0].shape[0]
    scale = math.sqrt((n // 2) / n)
    low, high = torch.quantile(boot - boot.mean(), levels).tolist()
    return (value + scale * low, value + scale * high)


DEFAULT_METHOD = "knn"  # entropy and KL; method=None means "the default, or the preset's"

_NEGATIVE = (
    "negative estimate of a non-negative quantity: the estimator is biased at this sample size "
    "and dimension; read it as 'about 0 or unresolved', not as a value"
)


def _finish(
    value: float,
    warnings: list[str],
    *,
    method: str,
    n: int,
    d: int,
    base: Any,
    interval: tuple[float, float] | None,
    nonnegative: bool = False,
) -> Estimate:
    divisor, units = log_base(base)
    if nonnegative and value < 0:
        warnings = [*warnings, _NEGATIVE]
    ci = None if interval is None else (interval[0] / divisor, interval[1] / divisor)
    return Estimate(value / divisor, ci, method, n, d, units, tuple(dict.fromkeys(warnings)))


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

    ``method`` is one of `available("entropy")` (default "knn", or the preset's); ``options`` go to it (e.g. ``k`` for "knn",
    ``bins`` for "histogram"). ``preset="callahan2021"`` reproduces Callahan & Paskett (2021).
    ``ci=0.95`` adds a bootstrap/subsampling interval from ``n_boot`` resamples, seeded by
    ``seed`` (which also seeds the kNN duplicate jitter). Computes on ``device`` (default: x's).
    """
    log_base(base)
    name, options, label = _resolve_preset("entropy", method, preset, options)
    spec = _lookup("entropy", name)
    xt = as_samples(x, name="x", device=device)
    call = _bind(spec, options, seed)
    value, warnings = call(xt)
    interval = None
    if ci is not None:
        interval = _interval(call, [xt], value, ci=ci, n_boot=n_boot, seed=seed, scheme=spec.resampling, paired=False)
    return _finish(value, warnings, method=label, n=xt.shape[0], d=xt.shape[1], base=base, interval=interval)


def kl_divergence(
    p: Any,
    q: Any,
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
    """KL divergence D(p ‖ q) from samples of p and of q (sample sizes may differ).

    ``method`` is one of `available("kl_divergence")` (default "knn", or the preset's); see
    `entropy` for the other arguments. KL is non-negative: a negative estimate carries a warning.
    ``preset="callahan2021"`` bins each array over its own range, as the reference analysis did.
    """
    log_base(base)
    name, options, label = _resolve_preset("kl_divergence", method, preset, options)
    spec = _lookup("kl_divergence", name)
    pt = as_samples(p, name="p", device=device)
    qt = as_samples(q, name="q", device=pt.device)
    if pt.shape[1] != qt.shape[1] and name != "histogram":
        raise InfoprobeError(
            f"Expected p and q with the same number of features, got {pt.shape[1]} and {qt.shape[1]}; "
            "compare samples of the same space"
        )
    call = _bind(spec, options, seed)
    value, warnings = call(pt, qt)
    interval = None
    if ci is not None:
        interval = _interval(call, [pt, qt], value, ci=ci, n_boot=n_boot, seed=seed, scheme=spec.resampling, paired=False)
    return _finish(value, warnings, method=label, n=pt.shape[0], d=pt.shape[1], base=base,
                   interval=interval, nonnegative=True)


def _label_mi(entropy_method: Method, options: dict[str, Any], seed: int) -> Callable[..., tuple[float, list[str]]]:
    """I(X;Y) = H(X) − Σ_y p(y) H(X|Y=y) for class labels y, with one entropy method."""
    call = _bind(entropy_method, options, seed)

    def mi(x: torch.Tensor, labels: torch.Tensor) -> tuple[float, list[str]]:
        h, warnings = call(x)
        classes, counts = torch.unique(labels, return_counts=True)
        conditional = 0.0
        for cls, count in zip(classes.tolist(), counts.tolist(), strict=True):
            try:
                subset = as_samples(x[labels == cls], name="x", why="per class")
                h_c, w_c = call(subset)
            except InfoprobeError as error:
                raise error.with_context(f"class y={cls} ({count} samples)") from error
            conditional += count / x.shape[0] * h_c
            warnings = warnings + w_c
        return h - conditional, warnings

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

    ``y`` may be integer class labels (shape (n,) or (n, 1), integer dtype); then
    "ksg" uses the estimator of Ross (2014) for a continuous X and a discrete Y; "gaussian"
    and "kde" use I = H(X) − Σ_y p(y) H(X|Y=y) with their entropy estimator; "binned" and
    "renyi" take labels directly. See `entropy` for the rest.
    """
    log_base(base)
    spec = _lookup("mutual_information", method)
    xt = as_samples(x, name="x", device=device)
    if is_labels(y):
        yt = as_labels(y, n=xt.shape[0], device=xt.device)
        if spec.label_function is not None:
            call = _bind(replace(spec, function=spec.label_function), options, seed)
        elif spec.label_entropy is not None:
            call = _label_mi(_lookup("entropy", spec.label_entropy), options, seed)
        else:
            call = _bind(spec, options, seed)
        d = xt.shape[1] + 1
    else:
        yt = as_samples(y, name="y", device=xt.device)
        if yt.shape[0] != xt.shape[0]:
            raise InfoprobeError(
                f"Expected paired samples (same n) for x and y, got {xt.shape[0]} and {yt.shape[0]}; "
                "pass y[i] belonging to x[i]"
            )
        call = _bind(spec, options, seed)
        d = xt.shape[1] + yt.shape[1]
    value, warnings = call(xt, yt)
    interval = None
    if ci is not None:
        interval = _interval(call, [xt, yt], value, ci=ci, n_boot=n_boot, seed=seed, scheme=spec.resampling, paired=True)
    return _finish(value, warnings, method=method, n=xt.shape[0], d=d, base=base, interval=interval,
                   nonnegative=True)
