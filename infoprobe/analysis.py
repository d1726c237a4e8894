"""Layer-wise information analysis of an autoencoder: the product's main job.

``analyze(model, data)`` validates its options once (`infoprobe.spec.AnalysisSpec`), runs the
reconstruction pass once with every layer recorded (`infoprobe.layers`), measures every layer
(`infoprobe.measure`), embeds the bottleneck codes with UMAP (`infoprobe.embedding`) and
returns an `AnalysisResult` (`infoprobe.results`): plain data that plots and the report read.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from infoprobe.device import resolve_device
from infoprobe.errors import InfoprobeError
from infoprobe.layers import check_input_shape, prepare_inputs, progress_bar, record_layers
from infoprobe.measure import measure
from infoprobe.results import AnalysisResult
from infoprobe.spec import DEFAULT_ESTIMATORS, AnalysisSpec

__all__ = ["DEFAULT_ESTIMATORS", "AnalysisResult", "AnalysisSpec", "analyze"]


def analyze(
    model: nn.Module,
    data: Any,
    *,
    labels: Any = None,
    estimators: Any = None,
    preset: str | None = None,
    layers: Any = None,
    exclude: Any = (),
    model_info: dict[str, Any] | None = None,
    **options: Any,
) -> AnalysisResult:
    """Record every layer of ``model`` during reconstruction and measure its information (nats).

    ``data`` is an :class:`~infoprobe.data.ImageData`, a tensor / array of inputs (N, ...), or a
    pair ``(inputs, labels)``; ``labels`` (N,) integer classes override the data's own and feed
    I(T; Y) and the UMAP colours. The pass is ``model.reconstruct(x)`` or ``model(x)``.

    ``estimators``: estimator specs such as ``"entropy=knn(k=5)"`` or
    ``{"role": "kl", "method": "histogram", "bins": 30}`` (see `infoprobe.spec`; default
    `DEFAULT_ESTIMATORS`); ``preset="callahan2021"`` computes only the paper's pooled-histogram
    entropy and KL. ``layers`` / ``exclude`` are glob patterns over module names. Other options
    (``samples``, ``joint_samples``, ``ci``, ``n_boot``, ``seed``, ``device``, ``batch_size``,
    ``umap``, ``umap_samples``, ``memory_budget``, ``exact``, ``progress``) are the fields of
    `AnalysisSpec`, validated before the model runs.
    """
    spec = AnalysisSpec.create(estimators=estimators, preset=preset, layers=layers, exclude=exclude, **options)
    t_start = time.perf_counter()
    device = resolve_device(spec.device)
    x, y, dataset_info = prepare_inputs(data, labels, spec.samples, spec.seed)
    check_input_shape(model, x)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    model = model.to(device).eval()
    recorded = record_layers(model, x, spec, device)
    timings["record"] = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        bar = progress_bar(total=len(recorded.layers), desc="estimating", unit="layer", disable=not spec.progress)
        rows, globals_, warnings = measure(recorded.layers, x.numpy(), y, recorded.outputs.numpy(), spec,
                                           progress=lambda: bar.update(1))
        bar.close()
        timings["estimate"] = time.perf_counter() - t0
        embedding = None
        if spec.umap:
            embedding = _embed(recorded, y, spec, warnings, input_scale=float(x.float().pow(2).mean().sqrt()))
            if embedding is not None:
                timings["umap"] = embedding["seconds"]
    finally:
        recorded.close()

    n = x.shape[0]
    k = min(8, n)
    x_np, out_np = x.reshape(n, -1).numpy(), recorded.outputs.reshape(n, -1).numpy()
    examples = {
        "shape": list(x.shape[1:]), "inputs": np.round(x_np[:k], 4).tolist(),
        "reconstructions": np.round(np.nan_to_num(out_np[:k]), 4).tolist() if out_np.shape == x_np.shape else None,
        "labels": None if y is None else [int(v) for v in y[:k]],
    }
    timings["total"] = time.perf_counter() - t_start
    info = _model_info(model, invertible=any(r.direction == "inverse" for r in rows))
    info.update(model_info or {})
    settings = {**spec.to_dict(), "preset": preset, "device": str(device),
                "joint_samples": min(spec.joint_samples, n)}
    return AnalysisResult(
        model=info, dataset=dataset_info, settings=settings, layers=rows, globals=globals_,
        embedding=embedding, examples=examples, timings=timings, versions=_versions(), warnings=warnings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


#: Spreads below this many float32 epsilons of the input's RMS cannot be told from round-off: an
#: untrained MNIST INN's 20-d code, zero up to cancellation errors, spreads over 1.5e-8 with
#: inputs of RMS 0.31. (A code that is a genuine 1e-9-scaled signal looks the same from here.)
ROUNDOFF_EPS = 64


def _embed(recorded: Any, y: np.ndarray | None, spec: AnalysisSpec, warnings: list[str], *,
           input_scale: float) -> dict[str, Any] | None:
    from infoprobe.embedding import umap_embedding

    layer = next((layer for layer in recorded.layers if layer.region == "bottleneck"), None)
    if layer is None:
        warnings.append("UMAP skipped: no bottleneck layer to embed.")
        return None
    resolution = ROUNDOFF_EPS * float(np.finfo(np.float32).eps) * input_scale
    try:
        embedding = umap_embedding(layer.values(), y, max_samples=spec.umap_samples, seed=spec.seed,
                                   resolution=resolution, progress=spec.progress)
    except InfoprobeError as exc:
        warnings.append(f"UMAP skipped for {layer.label!r}: {exc}. The resolution is {ROUNDOFF_EPS} float32 "
                        f"epsilons of the input's RMS {input_scale:.3g}: codes that vary less cannot be told "
                        "from round-off (an untrained INN's code is such round-off)")
        return None
    embedding["layer"] = layer.label
    return embedding


def _model_info(model: nn.Module, *, invertible: bool) -> dict[str, Any]:
    config = getattr(model, "config", None)
    return {
        "name": getattr(model, "registry_name", None) or None,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": config if isinstance(config, dict) else {},
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "invertible": invertible,
        "bottleneck_modules": list(getattr(model, "bottleneck_modules", ()) or ()),
        "checkpoint": None,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from infoprobe import __version__

    out = {"infoprobe": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__}
    for pkg in ("scipy", "umap-learn", "FrEIA", "matplotlib"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out

