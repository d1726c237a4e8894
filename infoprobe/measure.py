"""The measuring loop of the analysis: arrays in, `LayerRow`s and `GlobalEstimates` out.

Pure: it knows the layers' values, the inputs, labels and reconstructions, and the
`AnalysisSpec`; nothing of models, hooks or files. Per layer, in pass order:

- a layer whose values equal the previous layer's (Flatten, reshape, identity) is marked
  ``passthrough`` and gets no estimates; its neighbour speaks for it;
- entropy by each ``entropy`` estimator: pooled histograms on all values, joint methods on the
  seeded joint subsample with an interval. A layer computed from a k-dimensional bottleneck
  (the decoder side, d > k) lives on a ≤ k-dimensional set: its differential entropy is −∞ and
  it is reported so ("degenerate") without estimating;
- the exact entropy change across an invertible block, E[log |det J|] (change of variables);
- KL(previous layer ‖ this layer) by each ``kl`` estimator: joint methods on independent
  halves of the paired rows (`kl_divergence(..., paired=True)`), where the dimensions match;
- I(X; T) by each ``mi_input`` and I(T; Y) by each ``mi_label`` estimator;

and globally KL(data ‖ reconstruction) by each ``kl`` estimator and the reconstruction errors.
A numerical failure of one estimate is recorded on it (status "invalid"); user errors propagate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from infoprobe.estimators.estimate import Estimate, EstimationError
from infoprobe.layers import Layer
from infoprobe.results import GlobalEstimates, LayerRow
from infoprobe.spec import NOISY, PAPER_PRESET, AnalysisSpec, EstimatorSpec

__all__ = ["measure"]


def measure(
    layers: Sequence[Layer],
    x: np.ndarray,
    y: np.ndarray | None,
    outputs: np.ndarray,
    spec: AnalysisSpec,
    *,
    progress: Callable[[], None] = lambda: None,
) -> tuple[list[LayerRow], GlobalEstimates, list[str]]:
    """Rows for ``layers`` (input first), the global estimates and run-level warnings."""
    import torch

    from infoprobe.estimators._base import label_entropy

    n = x.shape[0]
    sub = np.sort(np.random.default_rng(spec.seed).choice(n, size=min(spec.joint_samples, n), replace=False))
    x2 = x.reshape(n, -1).astype(np.float64)
    y_sub = None if y is None else y[sub]
    warnings: list[str] = []
    h_y = None if y is None else label_entropy(torch.from_numpy(y))
    bottleneck_dims = [layer.dim for layer in layers if layer.region == "bottleneck"]
    k = min(bottleneck_dims) if bottleneck_dims else None
    if k is None:
        warnings.append("No bottleneck layer identified; regions are not marked.")

    rows: list[LayerRow] = []
    prev: np.ndarray | None = None
    for index, layer in enumerate(layers):
        arr = np.asarray(layer.values(), dtype=np.float64).reshape(n, -1)
        finite_rows: np.ndarray = np.asarray(np.isfinite(arr).all(axis=1))
        n_bad = int((~np.isfinite(arr)).sum())
        if n_bad:
            warnings.append(f"Layer {layer.label!r}: {n_bad} NaN/Inf activation values were left out.")
        base = LayerRow(index=index, label=layer.label, name=layer.name, direction=layer.direction,
                        module_type=layer.module_type, feature_shape=layer.feature_shape, region=layer.region,
                        n_nonfinite=n_bad)
        if prev is not None and prev.shape == arr.shape and np.array_equal(prev, arr, equal_nan=True):
            rows.append(replace(base, passthrough=True))
            progress()
            continue
        intrinsic = k if layer.region == "decoder" and k is not None and k < arr.shape[1] else None
        joint = _rows(arr[sub], finite_rows[sub])
        entropy = {e.name: _entropy(arr, joint, finite_rows, e, spec, intrinsic) for e in spec.of_role("entropy")}
        change = {}
        if spec.exact:
            log_jacobian = layer.log_jacobian()
            if log_jacobian is not None:
                change["exact"] = _exact(log_jacobian, spec, intrinsic, arr.shape[1])
        kl: dict[str, Estimate] = {}
        if prev is not None:
            for e in spec.of_role("kl"):
                if e.pooled or prev.shape[1] == arr.shape[1]:
                    kl[e.name] = _kl(prev, arr, sub, e, spec, intrinsic)
        mi_input = {e.name: _mi_input(x2, arr, sub, e, spec) for e in spec.of_role("mi_input")}
        mi_label = {}
        if y_sub is not None:
            mi_label = {e.name: _mi_label(joint, y_sub[finite_rows[sub]], e, spec) for e in spec.of_role("mi_label")}
        rank = next((est.rank for est in entropy.values() if est.rank is not None), None)
        rows.append(replace(base, rank=rank, intrinsic_dim=intrinsic, entropy=entropy, entropy_change=change,
                             relative_entropy=kl, mi_input=mi_input, mi_label=mi_label))
        prev = arr
        progress()

    out2 = outputs.reshape(n, -1).astype(np.float64)
    io_intrinsic = k if k is not None and k < out2.shape[1] else None
    kl_io = {e.name: _kl(x2, out2, sub, e, spec, io_intrinsic) for e in spec.of_role("kl")
             if e.pooled or x2.shape[1] == out2.shape[1]}
    mse = l1 = None
    if out2.shape == x2.shape:
        diff = out2 - x2
        mse, l1 = float(np.nanmean(diff**2)), float(np.nanmean(np.abs(diff)))
    else:
        warnings.append(f"The output has {out2.shape[1]} values per sample and the input {x2.shape[1]}: "
                        "the model is not an autoencoder, so there is no reconstruction error.")
    bottleneck = next((layer.label for layer in layers if layer.region == "bottleneck"), None)
    globals_ = GlobalEstimates(kl_data_reconstruction=kl_io, mse=mse, l1=l1, label_entropy=h_y,
                               bottleneck=bottleneck, bottleneck_dim=k)
    return rows, globals_, warnings


def _rows(a: np.ndarray, finite: np.ndarray) -> np.ndarray:
    return a if finite.all() else a[finite]


def _safely(quantity: str, method: str, shape: tuple[int, ...], compute: Callable[[], Estimate]) -> Estimate:
    try:
        return compute()
    except EstimationError as error:
        return Estimate.failed(method, error, quantity=quantity, n=shape[0], d=shape[1])


def _pooled(a: np.ndarray) -> np.ndarray:
    return a if np.isfinite(a).all() else a[np.isfinite(a)].reshape(-1, 1)


def _method_args(e: EstimatorSpec) -> dict[str, Any]:
    if e.method == PAPER_PRESET:
        return {"preset": PAPER_PRESET}
    return {"method": e.method, **e.kwargs}


def _interval_args(spec: AnalysisSpec) -> dict[str, Any]:
    return {"ci": spec.ci, "n_boot": spec.n_boot, "seed": spec.seed}


def _entropy(arr: np.ndarray, joint: np.ndarray, finite: np.ndarray, e: EstimatorSpec, spec: AnalysisSpec,
             intrinsic: int | None) -> Estimate:
    from infoprobe.estimators import entropy

    if e.pooled:
        data = _pooled(arr)
        return _safely("entropy", e.name, data.shape, lambda: entropy(data, **_method_args(e)))
    if intrinsic is not None:
        return Estimate(-math.inf, None, e.name, joint.shape[0], arr.shape[1], quantity="entropy",
                        status="degenerate",
                        reason=f"computed from the {intrinsic}-dimensional bottleneck, the layer lies on a "
                               f"≤ {intrinsic}-dimensional set in {arr.shape[1]} dimensions: its differential "
                               "entropy is −∞")
    return _safely("entropy", e.name, joint.shape,
                   lambda: entropy(joint, **_method_args(e), **_interval_args(spec)))


def _exact(log_jacobian: np.ndarray, spec: AnalysisSpec, intrinsic: int | None, d: int) -> Estimate:
    from infoprobe.exact import entropy_change

    est = entropy_change(log_jacobian, ci=spec.ci, d=d)
    if intrinsic is None:
        return est
    # after the bottleneck the block's input lies on a ≤ k-dimensional set: log|det J| is the
    # change of a d-dimensional density that does not exist there, not of the k-dimensional one
    return replace(est, status="invalid",
                   reason=f"the block's input lies on a ≤ {intrinsic}-dimensional set (it is computed from the "
                          f"bottleneck): E log|det J| of the {d}-dimensional map is not its entropy change")


def _kl(p: np.ndarray, q: np.ndarray, sub: np.ndarray, e: EstimatorSpec, spec: AnalysisSpec,
        intrinsic: int | None) -> Estimate:
    from infoprobe.estimators import kl_divergence

    if e.pooled:
        pp, qq = _pooled(p), _pooled(q)
        return _safely("kl_divergence", e.name, pp.shape, lambda: kl_divergence(pp, qq, **_method_args(e)))
    if intrinsic is not None:
        return Estimate(math.inf, None, e.name, len(sub), q.shape[1], quantity="kl_divergence", status="degenerate",
                        reason=f"q is computed from the {intrinsic}-dimensional bottleneck and lies on a "
                               f"≤ {intrinsic}-dimensional set in {q.shape[1]} dimensions and has no density there: "
                               "KL(p ‖ q) is +∞ (or, when p lies on the same set, not defined in d dimensions)")
    ok = np.isfinite(p[sub]).all(axis=1) & np.isfinite(q[sub]).all(axis=1)
    ps, qs = p[sub][ok], q[sub][ok]
    return _safely("kl_divergence", e.name, ps.shape,
                   lambda: kl_divergence(ps, qs, paired=True, **_method_args(e), **_interval_args(spec)))


def _mi_input(x: np.ndarray, arr: np.ndarray, sub: np.ndarray, e: EstimatorSpec, spec: AnalysisSpec) -> Estimate:
    from infoprobe.estimators import mutual_information, noisy_channel_mi

    ok = np.isfinite(arr[sub]).all(axis=1)
    t = arr[sub][ok]
    if e.method == NOISY:
        return _safely("mutual_information", e.name, t.shape,
                       lambda: noisy_channel_mi(t, **e.kwargs, **_interval_args(spec)))
    xs = x[sub][ok]
    return _safely("mutual_information", e.name, t.shape,
                   lambda: mutual_information(xs, t, **_method_args(e), **_interval_args(spec)))


def _mi_label(t: np.ndarray, y: np.ndarray, e: EstimatorSpec, spec: AnalysisSpec) -> Estimate:
    from infoprobe.estimators import mutual_information

    return _safely("mutual_information", e.name, t.shape,
                   lambda: mutual_information(t, y, **_method_args(e), **_interval_args(spec)))
