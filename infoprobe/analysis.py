"""Layer-wise information analysis of an autoencoder: the product's main job.

``analyze(model, data)`` runs the reconstruction pass once with every layer recorded
(:func:`infoprobe.record`), then, per recorded layer in pass order,

- its entropy by each requested estimator: ``"callahan2021"`` is the pooled 100-bin,
  Laplace-smoothed histogram of Callahan & Paskett (2021), comparable with their Fig. 3;
  any other name is a joint estimator method of :func:`infoprobe.entropy` (``"gaussian"``,
  ``"knn"``, ...), applied to a seeded subsample of rows with a bootstrap interval;
- the relative entropy KL(previous layer ‖ this layer) (their Fig. 4): the pooled histogram
  form (defined for any shapes) and each joint method where the dimensions match;
- I(X; T) and I(T; Y) for the information plane (Tishby & Zaslavsky 2015), X the input and
  Y the labels;

and globally the input/output relative entropy KL(data ‖ reconstructions) (their Table 1),
the reconstruction error and a UMAP embedding of the bottleneck codes. All values are in nats.

The result is an :class:`AnalysisResult`, plain data that writes ``metrics.json``
(schema ``infoprobe/metrics_schema.json``) and ``layers.csv``; plots and the report read it
and never recompute.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import fnmatch
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from infoprobe.device import resolve_device
from infoprobe.errors import InfoprobeError

__all__ = [
    "DEFAULT_ESTIMATORS",
    "PAPER_PRESET",
    "SCHEMA_VERSION",
    "AnalysisResult",
    "EstimateRow",
    "LayerRow",
    "analyze",
    "metrics_schema",
    "prepare_inputs",
]

SCHEMA_VERSION = 1
PAPER_PRESET = "callahan2021"
DEFAULT_ESTIMATORS: tuple[str, ...] = (PAPER_PRESET, "gaussian", "knn")
PRESETS = (PAPER_PRESET,)
REGIONS = ("encoder", "bottleneck", "decoder")
PAPER_BINS = 100  # Callahan & Paskett's histogram: 100 bins over each layer's own range
NEAR_CEILING = 0.95  # an estimate at >= 95 % of its largest possible value is flagged
# failures of one estimate (degenerate data, too few samples) are recorded, not fatal
ESTIMATION_ERRORS = (InfoprobeError, np.linalg.LinAlgError, torch.linalg.LinAlgError)


# --------------------------------------------------------------------------- plain data

CSV_BASE = ("index", "label", "name", "direction", "module_type", "region", "dim", "feature_shape",
            "n_nonfinite")


@dataclass(frozen=True)
class EstimateRow:
    """One estimate as plain data (nats). ``value`` is None when it could not be computed.

    ``ceiling`` is the largest value the estimator can return on these data (e.g. ln 100 for a
    100-bin histogram, H(Y) for I(T; Y)); ``near_ceiling`` flags values at >= 95 % of it, where
    the estimate says more about the estimator than about the network.
    """

    value: float | None
    method: str
    ci: tuple[float, float] | None = None
    n: int = 0
    d: int = 0
    units: str = "nats"
    warnings: tuple[str, ...] = ()
    ceiling: float | None = None
    near_ceiling: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _finite_or_none(self.value),
            "method": self.method,
            "ci": None if self.ci is None else [_finite_or_none(c) for c in self.ci],
            "n": self.n,
            "d": self.d,
            "units": self.units,
            "warnings": list(self.warnings),
            "ceiling": _finite_or_none(self.ceiling),
            "near_ceiling": self.near_ceiling,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EstimateRow:
        ci = d.get("ci")
        return cls(
            value=d.get("value"), method=d["method"],
            ci=None if ci is None else (ci[0], ci[1]), n=int(d.get("n", 0)), d=int(d.get("d", 0)),
            units=d.get("units", "nats"), warnings=tuple(d.get("warnings", ())),
            ceiling=d.get("ceiling"), near_ceiling=bool(d.get("near_ceiling", False)),
        )


@dataclass(frozen=True)
class LayerRow:
    """Everything measured on one recorded layer; ``index`` is its position along the pass."""

    index: int
    label: str
    name: str
    direction: str
    module_type: str
    feature_shape: tuple[int, ...]
    region: str
    n_nonfinite: int = 0
    entropy: dict[str, EstimateRow] = field(default_factory=dict)
    relative_entropy: dict[str, EstimateRow] = field(default_factory=dict)
    mi_input: EstimateRow | None = None
    mi_label: EstimateRow | None = None

    @property
    def dim(self) -> int:
        return int(np.prod(self.feature_shape)) if self.feature_shape else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "label": self.label, "name": self.name,
            "direction": self.direction, "module_type": self.module_type,
            "feature_shape": list(self.feature_shape), "dim": self.dim, "region": self.region,
            "n_nonfinite": self.n_nonfinite,
            "entropy": {k: v.to_dict() for k, v in self.entropy.items()},
            "relative_entropy": {k: v.to_dict() for k, v in self.relative_entropy.items()},
            "mi_input": None if self.mi_input is None else self.mi_input.to_dict(),
            "mi_label": None if self.mi_label is None else self.mi_label.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerRow:
        def opt(x: dict[str, Any] | None) -> EstimateRow | None:
            return None if x is None else EstimateRow.from_dict(x)

        return cls(
            index=int(d["index"]), label=d["label"], name=d["name"], direction=d["direction"],
            module_type=d["module_type"], feature_shape=tuple(d["feature_shape"]),
            region=d["region"], n_nonfinite=int(d.get("n_nonfinite", 0)),
            entropy={k: EstimateRow.from_dict(v) for k, v in d["entropy"].items()},
            relative_entropy={k: EstimateRow.from_dict(v) for k, v in d["relative_entropy"].items()},
            mi_input=opt(d.get("mi_input")), mi_label=opt(d.get("mi_label")),
        )


@dataclass
class AnalysisResult:
    """What :func:`analyze` measured, as plain data (JSON-able through :meth:`to_dict`).

    ``model``/``dataset``/``settings`` describe the run; ``layers`` are the per-layer rows in
    pass order; ``globals`` holds ``kl_data_reconstruction`` (method -> estimate), ``mse`` and
    ``l1``; ``embedding`` the UMAP coordinates of the codes (or None); ``examples`` a few input
    images and their reconstructions; ``timings`` seconds per stage.
    """

    model: dict[str, Any]
    dataset: dict[str, Any]
    settings: dict[str, Any]
    layers: list[LayerRow]
    globals: dict[str, Any]
    embedding: dict[str, Any] | None = None
    examples: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    # ---- serialisation
    def to_dict(self) -> dict[str, Any]:
        g = dict(self.globals)
        g["kl_data_reconstruction"] = {
            k: v.to_dict() for k, v in self.globals.get("kl_data_reconstruction", {}).items()
        }
        for key in ("mse", "l1"):
            if key in g:
                g[key] = _finite_or_none(g[key])
        return {
            "schema": "infoprobe-metrics",
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "model": self.model,
            "dataset": self.dataset,
            "settings": self.settings,
            "layers": [row.to_dict() for row in self.layers],
            "globals": g,
            "embedding": self.embedding,
            "examples": self.examples,
            "timings": {k: float(v) for k, v in self.timings.items()},
            "versions": self.versions,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        if d.get("schema") != "infoprobe-metrics":
            raise InfoprobeError(
                "Expected an infoprobe metrics.json (\"schema\": \"infoprobe-metrics\"), got "
                f"{d.get('schema')!r}; pass the metrics.json written by 'infoprobe analyze'."
            )
        if d.get("schema_version") != SCHEMA_VERSION:
            raise InfoprobeError(
                f"metrics.json has schema version {d.get('schema_version')}; this infoprobe reads "
                f"version {SCHEMA_VERSION}. Re-run 'infoprobe analyze' with this version."
            )
        g = dict(d["globals"])
        g["kl_data_reconstruction"] = {
            k: EstimateRow.from_dict(v) for k, v in g.get("kl_data_reconstruction", {}).items()
        }
        return cls(
            model=d["model"], dataset=d["dataset"], settings=d["settings"],
            layers=[LayerRow.from_dict(r) for r in d["layers"]], globals=g,
            embedding=d.get("embedding"), examples=d.get("examples"),
            timings=dict(d.get("timings", {})), versions=dict(d.get("versions", {})),
            warnings=list(d.get("warnings", [])), created=d.get("created", ""),
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``metrics.json`` (non-finite numbers become null); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> AnalysisResult:
        """Read a ``metrics.json`` written by :meth:`to_json`."""
        path = Path(path)
        if not path.is_file():
            raise InfoprobeError(f"{path} does not exist; pass a metrics.json written by 'infoprobe analyze'.")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InfoprobeError(f"{path} is not valid JSON ({exc}); re-run 'infoprobe analyze'.") from exc
        if not isinstance(data, dict):
            raise InfoprobeError(f"{path} holds a JSON {type(data).__name__}, expected an object (metrics.json).")
        return cls.from_dict(data)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write ``layers.csv``: one row per layer, one column per value / interval bound."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [self._csv_row(r) for r in self.layers]
        present = {c for row in rows for c in row}
        base = [c for c in CSV_BASE if c in present]
        groups: list[str] = []
        for prefix in ("entropy_", "kl_prev_", "mi_input", "mi_label"):
            groups += sorted({c.removesuffix("_near_ceiling") for c in present
                              if c.startswith(prefix) and c.endswith("_near_ceiling")})
        columns = base + [g + suffix for g in groups for suffix in ("", "_lo", "_hi", "_near_ceiling")
                          if g + suffix in present]
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        return path

    @staticmethod
    def _csv_row(row: LayerRow) -> dict[str, Any]:
        out: dict[str, Any] = {  # the CSV_BASE columns
            "index": row.index, "label": row.label, "name": row.name, "direction": row.direction,
            "module_type": row.module_type, "region": row.region, "dim": row.dim,
            "feature_shape": "x".join(map(str, row.feature_shape)), "n_nonfinite": row.n_nonfinite,
        }
        groups: list[tuple[str, EstimateRow | None]] = [
            *((f"entropy_{k}", v) for k, v in row.entropy.items()),
            *((f"kl_prev_{k}", v) for k, v in row.relative_entropy.items()),
            ("mi_input", row.mi_input), ("mi_label", row.mi_label),
        ]
        for key, est in groups:
            if est is None:
                continue
            out[key] = "" if est.value is None else est.value
            if est.ci is not None:
                out[f"{key}_lo"], out[f"{key}_hi"] = est.ci
            out[f"{key}_near_ceiling"] = int(est.near_ceiling)
        return out

    # ---- convenience views
    @property
    def bottleneck_index(self) -> int | None:
        """Index of the first bottleneck row (None when no row is marked bottleneck)."""
        return next((r.index for r in self.layers if r.region == "bottleneck"), None)

    def series(self, quantity: str, method: str) -> list[float | None]:
        """Per-layer values of ``entropy`` / ``relative_entropy`` by ``method``, None where missing."""
        out: list[float | None] = []
        for row in self.layers:
            est = getattr(row, quantity).get(method)
            out.append(None if est is None else est.value)
        return out

    # ---- plots (each reads this result, none recomputes)
    def plot_entropy(self, path: str | os.PathLike[str]) -> Path:
        from infoprobe.plotting import plot_entropy
        return plot_entropy(self, path)

    def plot_relative_entropy(self, path: str | os.PathLike[str]) -> Path:
        from infoprobe.plotting import plot_relative_entropy
        return plot_relative_entropy(self, path)

    def plot_info_plane(self, path: str | os.PathLike[str]) -> Path:
        from infoprobe.plotting import plot_info_plane
        return plot_info_plane(self, path)

    def plot_umap(self, path: str | os.PathLike[str]) -> Path:
        from infoprobe.plotting import plot_umap
        return plot_umap(self, path)

    def plot_reconstructions(self, path: str | os.PathLike[str]) -> Path:
        from infoprobe.plotting import plot_reconstructions
        return plot_reconstructions(self, path)

    def plot_all(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Every figure that this result has data for, in ``folder``; name -> path."""
        from infoprobe.plotting import plot_all
        return plot_all(self, folder)


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- the analysis


def analyze(
    model: nn.Module,
    data: Any,
    *,
    labels: Any = None,
    samples: int | None = None,
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    preset: str | None = None,
    layers: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    seed: int = 0,
    umap: bool = True,
    progress: bool = True,
    memory_budget: str | int = "512MB",
    joint_samples: int = 1000,
    ci: float = 0.95,
    n_boot: int = 30,
    mi_method: str = "ksg",
    umap_samples: int = 5000,
    spill_dir: str | os.PathLike[str] | None = None,
    model_info: dict[str, Any] | None = None,
) -> AnalysisResult:
    """Record every layer of ``model`` during reconstruction and measure its information.

    ``data`` is an :class:`~infoprobe.data.ImageData`, a tensor / array of inputs (N, ...), or a
    pair ``(inputs, labels)``; ``labels`` (N,) integer classes override the data's own and feed
    I(T; Y) and the UMAP colours. ``samples`` keeps a seeded random subset of N rows.
    The pass is ``model.reconstruct(x)`` or, for a model without it, ``model(x)`` (its output
    is taken as the reconstruction).

    ``estimators``: ``"callahan2021"`` (the pooled 100-bin histogram of Callahan & Paskett 2021,
    on all samples) and/or joint methods of :func:`infoprobe.entropy` (``"gaussian"``, ``"knn"``,
    ...) on ``joint_samples`` seeded rows with a ``ci`` bootstrap interval of ``n_boot``
    resamples; joint methods also give KL(previous ‖ current) where dimensions match, and the
    first joint method switches on I(X; T) and I(T; Y) by ``mi_method``.
    ``preset="callahan2021"`` reproduces the paper only: the pooled histogram estimates, no joint
    estimates and no mutual information. ``layers`` are glob patterns on module names (default:
    all). Activations beyond ``memory_budget`` are spilled to ``spill_dir``. All values in nats.
    """
    t_start = time.perf_counter()
    estimators = _check_estimators(estimators, preset)
    joint = [m for m in estimators if m != PAPER_PRESET]
    if joint:
        _check_mi_method(mi_method)
    from infoprobe.estimators import available

    kl_joint = [m for m in joint if m in available("kl_divergence")]
    dev = resolve_device(device)
    x, y, dataset_info = prepare_inputs(data, labels, samples, seed)
    _check_input_shape(model, x)
    patterns = _check_layer_patterns(model, layers)
    timings: dict[str, float] = {}
    warnings: list[str] = []

    t0 = time.perf_counter()
    model = model.to(dev).eval()
    acts, infos, outputs = _record_pass(
        model, x, dev, batch_size=batch_size, patterns=patterns, progress=progress,
        memory_budget=memory_budget, spill_dir=spill_dir,
    )
    timings["record"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(n, size=min(joint_samples, n), replace=False))
    x_np = x.reshape(n, -1).numpy()
    out_np = outputs.reshape(n, -1).numpy()
    arrays: list[Callable[[], np.ndarray]] = [lambda: x_np]
    rows_meta: list[tuple[str, str, str, str, tuple[int, ...]]] = [
        ("input", "input", "input", "input", tuple(x.shape[1:]))
    ]
    for info in infos:
        arrays.append(_array_getter(acts, info.label))
        rows_meta.append((info.label, info.name, info.direction, info.module_type,
                          tuple(info.feature_shape)))
    last = arrays[-1]().reshape(n, -1) if infos else None
    if last is None or last.shape != out_np.shape or not np.array_equal(last, out_np, equal_nan=True):
        arrays.append(lambda: out_np)
        rows_meta.append(("output", "output", "output", "output", tuple(outputs.shape[1:])))
    regions = _regions(rows_meta, tuple(getattr(model, "bottleneck_modules", ()) or ()))
    if "bottleneck" not in regions:
        warnings.append("No bottleneck layer identified; regions are not marked.")

    h_y = _label_entropy(y) if y is not None else None
    x_sub = x_np[sub].astype(np.float64)
    y_sub = None if y is None else y[sub]
    rows: list[LayerRow] = []
    prev: np.ndarray | None = None
    bottleneck_codes: np.ndarray | None = None
    bar = _progress(total=len(arrays), desc="estimating", unit="layer", disable=not progress)
    for index, (get, meta, region) in enumerate(zip(arrays, rows_meta, regions, strict=True)):
        label, name, direction, module_type, shape = meta
        arr = np.asarray(get(), dtype=np.float64).reshape(n, -1)
        finite = np.isfinite(arr)
        n_bad = int(arr.size - finite.sum())
        if n_bad:
            warnings.append(f"Layer {label!r}: {n_bad} NaN/Inf activation values were left out.")
        if region == "bottleneck" and bottleneck_codes is None:
            bottleneck_codes = arr
        entropy_rows: dict[str, EstimateRow] = {}
        kl_rows: dict[str, EstimateRow] = {}
        if PAPER_PRESET in estimators:
            entropy_rows[PAPER_PRESET] = _paper_entropy(arr, finite)
            if prev is not None:
                kl_rows[PAPER_PRESET] = _paper_kl(prev, arr)
        arr_sub = arr[sub]
        # a layer that passes its input on unchanged (identity, reshape) gets the same joint
        # estimates (same rows, same seed) without recomputing them
        same = prev is not None and prev.shape == arr.shape and np.array_equal(prev, arr, equal_nan=True)
        for method in joint:
            if same:
                entropy_rows[method] = rows[-1].entropy[method]
            else:
                entropy_rows[method] = _joint_entropy(arr_sub, method, ci=ci, n_boot=n_boot, seed=seed)
            if method in kl_joint and prev is not None and prev.shape[1] == arr.shape[1]:
                kl_rows[method] = _joint_kl(prev[sub], arr_sub, method, seed=seed)
        mi_x = mi_y = None
        if joint and same:
            mi_x, mi_y = rows[-1].mi_input, rows[-1].mi_label
        elif joint:
            mi_x = _mutual_information(x_sub, arr_sub, mi_method, seed=seed, ceiling=math.log(len(sub)))
            if y_sub is not None:
                mi_y = _mutual_information(arr_sub, y_sub, mi_method, seed=seed, ceiling=h_y)
        rows.append(LayerRow(
            index=index, label=label, name=name, direction=direction, module_type=module_type,
            feature_shape=shape, region=region, n_nonfinite=n_bad, entropy=entropy_rows,
            relative_entropy=kl_rows, mi_input=mi_x, mi_label=mi_y,
        ))
        prev = arr
        bar.update(1)
    bar.close()

    kl_io: dict[str, EstimateRow] = {}
    x64 = x_np.astype(np.float64)
    o64 = out_np.astype(np.float64)
    if PAPER_PRESET in estimators:
        kl_io[PAPER_PRESET] = _paper_kl(x64, o64)
    for method in kl_joint:
        kl_io[method] = _joint_kl(x64[sub], o64[sub], method, seed=seed)
    diff = o64 - x64
    globals_ = {
        "kl_data_reconstruction": kl_io,
        "mse": float(np.nanmean(diff**2)),
        "l1": float(np.nanmean(np.abs(diff))),
    }
    timings["estimate"] = time.perf_counter() - t0
    acts.close()  # frees the stored activations and deletes spill files

    embedding = None
    if umap:
        if bottleneck_codes is None:
            warnings.append("UMAP skipped: no bottleneck layer to embed.")
        else:
            from infoprobe.embedding import umap_embedding

            t0 = time.perf_counter()
            b_label = rows[next(i for i, r in enumerate(regions) if r == "bottleneck")].label
            embedding = umap_embedding(
                bottleneck_codes, y, max_samples=umap_samples, seed=seed, progress=progress
            )
            embedding["layer"] = b_label
            timings["umap"] = time.perf_counter() - t0

    k = min(8, n)
    examples = {
        "shape": list(x.shape[1:]),
        "inputs": np.round(x_np[:k], 4).tolist(),
        "reconstructions": np.round(np.nan_to_num(out_np[:k]), 4).tolist(),
        "labels": None if y is None else [int(v) for v in y[:k]],
    }
    timings["total"] = time.perf_counter() - t_start
    info = _model_info(model, rows)
    info.update(model_info or {})
    settings = {
        "estimators": list(estimators), "preset": preset, "units": "nats",
        "histogram_bins": PAPER_BINS, "joint_samples": len(sub), "ci": ci, "n_boot": n_boot,
        "mi_method": mi_method if joint else None, "layers": list(layers) if layers else None,
        "seed": seed, "batch_size": batch_size, "device": str(dev), "umap": umap,
        "umap_samples": umap_samples,
    }
    return AnalysisResult(
        model=info, dataset=dataset_info, settings=settings, layers=rows, globals=globals_,
        embedding=embedding, examples=examples, timings=timings, versions=_versions(),
        warnings=warnings,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------- the pieces


def _check_estimators(estimators: Sequence[str], preset: str | None) -> list[str]:
    if preset is not None:
        if preset not in PRESETS:
            raise InfoprobeError(f"Unknown preset {preset!r}; expected one of {', '.join(PRESETS)}.")
        return [PAPER_PRESET]
    if isinstance(estimators, str):
        estimators = [e.strip() for e in estimators.split(",") if e.strip()]
    out = list(dict.fromkeys(estimators))
    if not out:
        raise InfoprobeError("Expected at least one estimator (e.g. callahan2021,gaussian,knn), got none.")
    from infoprobe.estimators import available

    known = available("entropy")
    for name in out:
        if name != PAPER_PRESET and name not in known:
            raise InfoprobeError(
                f"Unknown estimator {name!r}; expected {PAPER_PRESET} or an entropy method "
                f"({', '.join(sorted(known))})."
            )
    return out


def _check_mi_method(method: str) -> str:
    from infoprobe.estimators import available

    known = available("mutual_information")
    if method not in known:
        raise InfoprobeError(
            f"Unknown mutual information method {method!r}; expected one of {', '.join(sorted(known))}."
        )
    return method


def metrics_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) that ``metrics.json`` follows."""
    return json.loads((Path(__file__).with_name("metrics_schema.json")).read_text())


def prepare_inputs(data: Any, labels: Any, samples: int | None, seed: int) -> tuple[Tensor, np.ndarray | None, dict[str, Any]]:
    """Inputs (CPU float32), integer labels or None, and a dataset description; see :func:`analyze`."""
    info: dict[str, Any] = {"name": None, "split": None}
    if hasattr(data, "images"):
        x, y = data.images, getattr(data, "labels", None)
        info = {"name": getattr(data, "name", None), "split": getattr(data, "split", None)}
    elif isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    else:
        x, y = data, None
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().cpu().float()
    if labels is not None:
        y = labels
    y_np = None if y is None else np.asarray(torch.as_tensor(y).cpu()).astype(np.int64).reshape(-1)
    if x.ndim < 2 or x.shape[0] < 2:
        raise InfoprobeError(f"Expected a batch of inputs shaped (n_samples >= 2, ...), got {tuple(x.shape)}.")
    if y_np is not None and y_np.shape[0] != x.shape[0]:
        raise InfoprobeError(f"Expected one label per input ({x.shape[0]}), got {y_np.shape[0]} labels.")
    if samples is not None:
        if samples < 2:
            raise InfoprobeError(f"Expected --samples >= 2, got {samples}.")
        if samples < x.shape[0]:
            keep = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=samples, replace=False))
            x = x[torch.from_numpy(keep)]
            y_np = None if y_np is None else y_np[keep]
    info.update({
        "n_samples": int(x.shape[0]), "input_shape": list(x.shape[1:]),
        "n_classes": None if y_np is None else len(np.unique(y_np)),
    })
    return x, y_np, info


def _check_input_shape(model: nn.Module, x: Tensor) -> None:
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(expected) != tuple(x.shape[1:]):
        raise InfoprobeError(
            f"The model expects inputs shaped {tuple(expected)}, got {tuple(x.shape[1:])}; "
            "pass the dataset the model was trained on (--dataset)."
        )


def _check_layer_patterns(model: nn.Module, layers: Sequence[str] | None) -> list[str] | None:
    if not layers:
        return None
    patterns = [layers] if isinstance(layers, str) else list(layers)
    names = [name for name, _ in model.named_modules() if name]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise InfoprobeError(
                f"Layer pattern {pattern!r} matches no module of {type(model).__name__}; "
                f"module names are: {shown}."
            )
    return patterns


def _record_pass(
    model: nn.Module, x: Tensor, dev: torch.device, *, batch_size: int,
    patterns: list[str] | None, progress: bool, memory_budget: str | int,
    spill_dir: str | os.PathLike[str] | None,
) -> tuple[Any, list[Any], Tensor]:
    from infoprobe.recording import record

    run: Callable[[Tensor], Any] = getattr(model, "reconstruct", model)
    outputs: list[Tensor] = []
    bar = _progress(total=x.shape[0], desc="recording", unit="img", disable=not progress)
    with torch.no_grad(), record(
        model, include=patterns, memory_budget=memory_budget,
        spill_dir=None if spill_dir is None else str(spill_dir),
    ) as rec:
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size].to(dev)
            try:
                out = run(batch)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InfoprobeError(
                    f"The model failed on inputs shaped {tuple(batch.shape)}: {first}. "
                    "Check that the dataset matches the model (--dataset)."
                ) from exc
            if isinstance(out, tuple | list):
                out = out[0]
            outputs.append(out.detach().to("cpu", torch.float32))
            bar.update(batch.shape[0])
    bar.close()
    infos = list(rec.layers)
    if not infos:
        raise InfoprobeError(
            f"No layer of {type(model).__name__} was recorded during the pass; check --layers."
        )
    return rec, infos, torch.cat(outputs)


def _array_getter(rec: Any, label: str) -> Callable[[], np.ndarray]:
    def get() -> np.ndarray:
        t = rec[label]
        return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)

    return get


def _regions(meta: Sequence[tuple[str, str, str, str, tuple[int, ...]]], bottleneck_modules: tuple[str, ...]) -> list[str]:
    """encoder / bottleneck / decoder for each row; see ``Autoencoder.bottleneck_modules``."""
    names = [m[1] for m in meta]
    if bottleneck_modules:
        hits = [i for i, (nm, m) in enumerate(zip(names, meta, strict=True))
                if m[0] not in ("input", "output") and nm in bottleneck_modules]
    else:
        inner = [i for i, m in enumerate(meta) if m[0] not in ("input", "output")]
        dims = [int(np.prod(meta[i][4])) for i in inner]
        hits = [inner[int(np.argmin(dims))]] if inner else []
    if not hits:
        return ["encoder"] * len(meta)
    first, last = min(hits), max(hits)
    return ["encoder" if i < first else "decoder" if i > last else "bottleneck" for i in range(len(meta))]


def _label_entropy(y: np.ndarray) -> float:
    _, counts = np.unique(y, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _finite_rows(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a).all(axis=1)] if not np.isfinite(a).all() else a


def _varying(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Columns that vary; a constant column has differential entropy −∞ and no information."""
    keep = np.ptp(a, axis=0) > 0 if a.shape[0] else np.ones(a.shape[1], bool)
    return a[:, keep], int((~keep).sum())


def _row(est: Any, *, ceiling: float | None = None, extra: Sequence[str] = ()) -> EstimateRow:
    value = float(est.value)
    ci = None if est.ci is None else (float(est.ci[0]), float(est.ci[1]))
    warnings = tuple(str(w) for w in (*extra, *est.warnings))
    near = any("ceiling" in w.lower() for w in warnings)
    if ceiling is not None and math.isfinite(value) and ceiling > 0:
        near = near or value >= NEAR_CEILING * ceiling
    if not math.isfinite(value):
        warnings = (*warnings, f"estimate is {value}")
    return EstimateRow(
        value=value if math.isfinite(value) else None, method=str(est.method), ci=ci,
        n=int(est.n), d=int(est.d), units=str(est.units), warnings=warnings,
        ceiling=ceiling, near_ceiling=near,
    )


def _failed(method: str, exc: Exception, n: int = 0, d: int = 0, *,
            ceiling: float | None = None) -> EstimateRow:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EstimateRow(value=None, method=method, n=n, d=d, warnings=(f"not computed: {first}",),
                       ceiling=ceiling)


def _paper_entropy(arr: np.ndarray, finite: np.ndarray) -> EstimateRow:
    from infoprobe.estimators import entropy

    data = arr if finite.all() else arr[finite].reshape(-1, 1)
    try:
        est = entropy(data, preset=PAPER_PRESET)
    except ESTIMATION_ERRORS as exc:
        return _failed(PAPER_PRESET, exc, *data.shape)
    return _row(est, ceiling=math.log(PAPER_BINS))


def _paper_kl(p: np.ndarray, q: np.ndarray) -> EstimateRow:
    from infoprobe.estimators import kl_divergence

    p = p if np.isfinite(p).all() else p[np.isfinite(p)].reshape(-1, 1)
    q = q if np.isfinite(q).all() else q[np.isfinite(q)].reshape(-1, 1)
    try:
        return _row(kl_divergence(p, q, preset=PAPER_PRESET))
    except ESTIMATION_ERRORS as exc:
        return _failed(PAPER_PRESET, exc)


def _attempts(method: str, first: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """Option sets to try in order, each with the warning it earns when it is the one used.

    A resample can be degenerate where the full sample is not (the bootstrap duplicates rows,
    so a Gaussian fit in d > 0.63 n dimensions fails), and a sample covariance is singular when
    d >= n or features are collinear: then the point estimate alone, then the Ledoit–Wolf
    shrinkage covariance (Ledoit & Wolf 2004) for the Gaussian method.
    """
    out: list[tuple[dict[str, Any], str | None]] = [(first, None)]
    if first:
        out.append(({}, "no interval: a resample was degenerate"))
    if method == "gaussian":
        shrink = {"shrinkage": "ledoit-wolf"}
        note = "Ledoit-Wolf shrinkage covariance: the sample covariance is singular"
        if first:
            out.append((first | shrink, note))
        out.append((shrink, note))
    return out


def _joint_entropy(a: np.ndarray, method: str, *, ci: float, n_boot: int, seed: int) -> EstimateRow:
    from infoprobe.estimators import entropy

    a, n_const = _varying(_finite_rows(a))
    extra = [f"{n_const} constant dimensions left out"] if n_const else []
    if a.shape[1] == 0 or a.shape[0] < 3:
        return EstimateRow(value=None, method=method, n=a.shape[0], d=0,
                           warnings=(*extra, "not computed: no varying dimension"))
    error: Exception | None = None
    for options, note in _attempts(method, {"ci": ci, "n_boot": n_boot}):
        try:
            est = entropy(a, method=method, seed=seed, **options)
        except ESTIMATION_ERRORS as exc:
            error = error or exc
            continue
        return _row(est, extra=[*extra, *([note] if note else [])])
    assert error is not None
    return _failed(method, error, *a.shape)


def _joint_kl(p: np.ndarray, q: np.ndarray, method: str, *, seed: int) -> EstimateRow:
    from infoprobe.estimators import kl_divergence

    p, q = _finite_rows(p), _finite_rows(q)
    keep = (np.ptp(p, axis=0) > 0) | (np.ptp(q, axis=0) > 0)
    if not keep.any():
        return EstimateRow(value=0.0, method=method, n=p.shape[0], d=0,
                           warnings=("both layers constant",))
    error: Exception | None = None
    for options, note in _attempts(method, {}):
        try:
            est = kl_divergence(p[:, keep], q[:, keep], method=method, seed=seed, **options)
        except ESTIMATION_ERRORS as exc:
            error = error or exc
            continue
        return _row(est, extra=[note] if note else [])
    assert error is not None
    return _failed(method, error, p.shape[0], int(keep.sum()))


def _mutual_information(a: np.ndarray, b: np.ndarray, method: str, *, seed: int,
                        ceiling: float | None) -> EstimateRow:
    from infoprobe.estimators import mutual_information

    ok = np.isfinite(a).all(axis=1) & (np.isfinite(b).all(axis=1) if b.ndim == 2 else True)
    a, b = a[ok], b[ok]
    a, _ = _varying(a)
    if b.ndim == 2:
        b, _ = _varying(b)
        if b.shape[1] == 0:
            return EstimateRow(value=0.0, method=method, n=a.shape[0], d=0,
                               warnings=("constant layer carries no information",), ceiling=ceiling)
    if a.shape[1] == 0:
        return EstimateRow(value=0.0, method=method, n=a.shape[0], d=0,
                           warnings=("constant layer carries no information",), ceiling=ceiling)
    try:
        est = mutual_information(a, b, method=method, seed=seed)
    except ESTIMATION_ERRORS as exc:
        return _failed(method, exc, *a.shape, ceiling=ceiling)
    return _row(est, ceiling=ceiling)


def _model_info(model: nn.Module, rows: list[LayerRow]) -> dict[str, Any]:
    config = getattr(model, "config", None)
    return {
        "name": getattr(model, "registry_name", None) or None,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": config if isinstance(config, dict) else {},
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "invertible": any(r.direction == "inverse" for r in rows),
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


def _progress(*, total: int, desc: str, unit: str, disable: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False)
