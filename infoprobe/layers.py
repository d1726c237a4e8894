"""The analysis's inputs and its one recording pass: inputs, layers, regions, pass-through layers.

`prepare_inputs` turns the user's data into a float tensor, labels and a description;
`record_layers` runs ``model.reconstruct`` (or ``model(x)``) once with every layer recorded and
returns the layers in pass order as `Layer` objects, with their region (encoder / bottleneck /
decoder) marked. The arrays stay in the recorder's store until `Recorded.close`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError
from infoprobe.spec import AnalysisSpec, parse_bytes

__all__ = ["Layer", "Recorded", "check_input_shape", "prepare_inputs", "progress_bar", "record_layers", "regions"]

REGIONS = ("encoder", "bottleneck", "decoder")


@dataclass(frozen=True)
class Layer:
    """One recorded layer: what it is, where it sits, and how to get its values (n, d) and the
    per-sample log|det J| of an invertible block (None for other modules)."""

    label: str
    name: str
    direction: str
    module_type: str
    feature_shape: tuple[int, ...]
    region: str
    values: Callable[[], np.ndarray]
    log_jacobian: Callable[[], np.ndarray | None]

    @property
    def dim(self) -> int:
        return int(np.prod(self.feature_shape)) if self.feature_shape else 1


@dataclass
class Recorded:
    """The layers of one pass (input first, reconstruction last) and the reconstructions."""

    layers: list[Layer]
    outputs: Tensor
    store: Any

    def close(self) -> None:
        """Free the stored activations (and delete spill files)."""
        self.store.close()


def prepare_inputs(data: Any, labels: Any, samples: int | None, seed: int) -> tuple[Tensor, np.ndarray | None, dict[str, Any]]:
    """Inputs (CPU float32), integer labels or None, and a dataset description.

    ``data`` is an :class:`~infoprobe.data.ImageData`, a tensor / array (N, ...), or a pair
    ``(inputs, labels)``; ``labels`` overrides the data's own; ``samples`` keeps a seeded random
    subset of N rows.
    """
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
        raise InfoprobeError(f"Expected a batch of inputs shaped (n_samples >= 2, ...), got {tuple(x.shape)}.",
                             parameter="data")
    if y_np is not None and y_np.shape[0] != x.shape[0]:
        raise InfoprobeError(f"Expected one label per input ({x.shape[0]}), got {y_np.shape[0]} labels.",
                             parameter="labels")
    if samples is not None and samples < x.shape[0]:
        keep = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=samples, replace=False))
        x = x[torch.from_numpy(keep)]
        y_np = None if y_np is None else y_np[keep]
    info.update({
        "n_samples": int(x.shape[0]), "input_shape": list(x.shape[1:]),
        "n_classes": None if y_np is None else len(np.unique(y_np)),
    })
    return x, y_np, info


def check_input_shape(model: nn.Module, x: Tensor) -> None:
    """Raise when the model declares an ``input_shape`` that the inputs do not have."""
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(expected) != tuple(x.shape[1:]):
        raise InfoprobeError(
            f"The model expects inputs shaped {tuple(expected)}, got {tuple(x.shape[1:])}; "
            "pass the dataset the model was trained on.", parameter="data",
        )


def _check_patterns(model: nn.Module, patterns: Sequence[str] | None, what: str) -> None:
    names = [name for name, _ in model.named_modules() if name]
    for pattern in patterns or ():
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise InfoprobeError(
                f"Layer pattern {pattern!r} in {what} matches no module of {type(model).__name__}; "
                f"module names are: {shown}.", parameter=what,
            )


def regions(layers: Sequence[tuple[str, str, int]], bottleneck_modules: Sequence[str]) -> list[str]:
    """encoder / bottleneck / decoder for each (kind, name, dim) in pass order.

    The bottleneck is the span of the modules the model names in ``bottleneck_modules``
    (see ``models.base.Autoencoder``), else the narrowest recorded layer; kind "input" and
    "output" rows are never the bottleneck.
    """
    inner = [i for i, (kind, _, _) in enumerate(layers) if kind not in ("input", "output")]
    if bottleneck_modules:
        hits = [i for i in inner if layers[i][1] in bottleneck_modules]
    else:
        hits = [min(inner, key=lambda i: layers[i][2])] if inner else []
    if not hits:
        return ["encoder"] * len(layers)
    first, last = min(hits), max(hits)
    return ["encoder" if i < first else "decoder" if i > last else "bottleneck" for i in range(len(layers))]


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def record_layers(model: nn.Module, x: Tensor, spec: AnalysisSpec, device: torch.device) -> Recorded:
    """Run the reconstruction pass once over ``x`` in batches with every selected layer recorded."""
    from infoprobe.recording import record

    _check_patterns(model, spec.layers, "layers")
    _check_patterns(model, spec.exclude, "exclude")
    run: Callable[[Tensor], Any] = getattr(model, "reconstruct", model)
    outputs: list[Tensor] = []
    bar = progress_bar(total=x.shape[0], desc="recording", unit="img", disable=not spec.progress)
    with torch.no_grad(), record(model, include=list(spec.layers) if spec.layers else None,
                                 exclude=list(spec.exclude) or None,
                                 memory_budget=parse_bytes(spec.memory_budget)) as rec:
        for start in range(0, x.shape[0], spec.batch_size):
            batch = x[start : start + spec.batch_size].to(device)
            try:
                out = run(batch)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InfoprobeError(
                    f"The model failed on inputs shaped {tuple(batch.shape)}: {first}. "
                    "Check that the dataset matches the model.", parameter="data",
                ) from exc
            if isinstance(out, tuple | list):
                out = out[0]
            outputs.append(out.detach().to("cpu", torch.float32))
            bar.update(batch.shape[0])
    bar.close()
    infos = list(rec.layers)
    if not infos:
        raise InfoprobeError(f"No layer of {type(model).__name__} was recorded during the pass; "
                             "check the layers / exclude patterns.", parameter="layers")
    out_all = torch.cat(outputs)
    n = x.shape[0]
    x_np, out_np = x.reshape(n, -1).numpy(), out_all.reshape(n, -1).numpy()

    def none() -> None:
        return None

    entries: list[tuple[str, str, str, str, tuple[int, ...], Callable[[], np.ndarray], Callable[[], np.ndarray | None]]] = [
        ("input", "input", "input", "input", tuple(x.shape[1:]), lambda: x_np, none)]
    for info in infos:
        entries.append((info.label, info.name, info.direction, info.module_type, tuple(info.feature_shape),
                        _getter(rec, info.label), _jacobian_getter(rec, info.label)))
    last = _numpy(rec[infos[-1].label]).reshape(n, -1)
    if last.shape != out_np.shape or not np.array_equal(last, out_np, equal_nan=True):
        entries.append(("output", "output", "output", "output", tuple(out_all.shape[1:]), lambda: out_np, none))
    kinds = [(e[0] if e[0] in ("input", "output") else "layer", e[1], int(np.prod(e[4]) if e[4] else 1))
             for e in entries]
    marked = regions(kinds, tuple(getattr(model, "bottleneck_modules", ()) or ()))
    layers = [Layer(label, name, direction, module_type, shape, region, values, logjac)
              for (label, name, direction, module_type, shape, values, logjac), region
              in zip(entries, marked, strict=True)]
    return Recorded(layers, out_all, rec)


def _getter(rec: Any, label: str) -> Callable[[], np.ndarray]:
    return lambda: _numpy(rec[label])


def _jacobian_getter(rec: Any, label: str) -> Callable[[], np.ndarray | None]:
    def get() -> np.ndarray | None:
        value = rec.log_jacobian(label)
        return None if value is None else _numpy(value).reshape(-1)

    return get


def progress_bar(*, total: int, desc: str, unit: str, disable: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False)
