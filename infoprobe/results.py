"""What an analysis measured, as plain data: `LayerRow`, `GlobalEstimates`, `AnalysisResult`.

Every number is an `Estimate` (value, interval, status, reason). The result writes and reads
``metrics.json`` (schema ``infoprobe/metrics_schema.json``, version `SCHEMA_VERSION`) and
writes ``layers.csv``; plots and the report read it and never recompute. There are no plot
methods here: see `infoprobe.plotting`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infoprobe.errors import InfoprobeError
from infoprobe.estimators.estimate import Estimate

__all__ = ["SCHEMA_VERSION", "AnalysisResult", "GlobalEstimates", "LayerRow", "metrics_schema"]

SCHEMA_VERSION = 2
#: the per-layer estimate groups, in table order: (attribute, CSV prefix, what)
GROUPS = (
    ("entropy", "entropy", "entropy H(T)"),
    ("entropy_change", "dh", "entropy change across the layer"),
    ("relative_entropy", "kl_prev", "KL(previous ‖ this)"),
    ("mi_input", "mi_input", "I(X; T)"),
    ("mi_label", "mi_label", "I(T; Y)"),
)


def _estimates(mapping: Mapping[str, Any]) -> dict[str, Estimate]:
    return {k: Estimate.from_dict(v) for k, v in mapping.items()}


@dataclass(frozen=True)
class LayerRow:
    """Everything measured on one recorded layer; ``index`` is its position along the pass.

    ``passthrough`` marks a layer whose values equal the previous layer's (Flatten, reshape,
    identity, eval-mode dropout): it gets no estimates of its own. ``rank`` is the numerical
    rank of its (centred) joint sample, ``intrinsic_dim`` an upper bound on the dimension of
    the set it lives on when the structure of the model gives one (a layer computed from a
    k-dimensional bottleneck lives on a ≤ k-dimensional set). ``entropy_change`` holds the
    exact change of differential entropy across an invertible block (E log|det J|).
    """

    index: int
    label: str
    name: str
    direction: str
    module_type: str
    feature_shape: tuple[int, ...]
    region: str
    passthrough: bool = False
    n_nonfinite: int = 0
    rank: int | None = None
    intrinsic_dim: int | None = None
    entropy: dict[str, Estimate] = field(default_factory=dict)
    entropy_change: dict[str, Estimate] = field(default_factory=dict)
    relative_entropy: dict[str, Estimate] = field(default_factory=dict)
    mi_input: dict[str, Estimate] = field(default_factory=dict)
    mi_label: dict[str, Estimate] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(np.prod(self.feature_shape)) if self.feature_shape else 1

    def estimates(self) -> Iterator[tuple[str, str, Estimate]]:
        """(group, method, estimate) for every estimate of this row, in table order."""
        for group, _, _ in GROUPS:
            for method, est in getattr(self, group).items():
                yield group, method, est

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index, "label": self.label, "name": self.name, "direction": self.direction,
            "module_type": self.module_type, "feature_shape": list(self.feature_shape), "dim": self.dim,
            "region": self.region, "passthrough": self.passthrough, "n_nonfinite": self.n_nonfinite,
            "rank": self.rank, "intrinsic_dim": self.intrinsic_dim,
        }
        for group, _, _ in GROUPS:
            out[group] = {k: v.to_dict() for k, v in getattr(self, group).items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerRow:
        return cls(
            index=int(d["index"]), label=d["label"], name=d["name"], direction=d["direction"],
            module_type=d["module_type"], feature_shape=tuple(d["feature_shape"]), region=d["region"],
            passthrough=bool(d.get("passthrough", False)), n_nonfinite=int(d.get("n_nonfinite", 0)),
            rank=d.get("rank"), intrinsic_dim=d.get("intrinsic_dim"),
            **{group: _estimates(d.get(group, {})) for group, _, _ in GROUPS},
        )


@dataclass(frozen=True)
class GlobalEstimates:
    """Whole-model quantities: KL(data ‖ reconstruction) by each method, reconstruction errors,
    H(Y) of the labels (the ceiling of I(T; Y)) and the bottleneck that was identified."""

    kl_data_reconstruction: dict[str, Estimate] = field(default_factory=dict)
    mse: float | None = None
    l1: float | None = None
    label_entropy: float | None = None
    bottleneck: str | None = None
    bottleneck_dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kl_data_reconstruction": {k: v.to_dict() for k, v in self.kl_data_reconstruction.items()},
            "mse": _finite_or_none(self.mse), "l1": _finite_or_none(self.l1),
            "label_entropy": _finite_or_none(self.label_entropy), "bottleneck": self.bottleneck,
            "bottleneck_dim": self.bottleneck_dim,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GlobalEstimates:
        return cls(
            kl_data_reconstruction=_estimates(d.get("kl_data_reconstruction", {})),
            mse=d.get("mse"), l1=d.get("l1"), label_entropy=d.get("label_entropy"),
            bottleneck=d.get("bottleneck"), bottleneck_dim=d.get("bottleneck_dim"),
        )


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class AnalysisResult:
    """What :func:`infoprobe.analyze` measured, as plain data (JSON-able through `to_dict`).

    ``model``/``dataset``/``settings`` describe the run; ``layers`` are the per-layer rows in
    pass order; ``globals`` the whole-model quantities; ``embedding`` the UMAP coordinates of
    the codes (or None); ``examples`` a few inputs and their reconstructions; ``timings``
    seconds per stage; ``warnings`` what the reader must know about the run as a whole.
    """

    model: dict[str, Any]
    dataset: dict[str, Any]
    settings: dict[str, Any]
    layers: list[LayerRow]
    globals: GlobalEstimates
    embedding: dict[str, Any] | None = None
    examples: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "infoprobe-metrics", "schema_version": SCHEMA_VERSION, "created": self.created,
            "model": self.model, "dataset": self.dataset, "settings": self.settings,
            "layers": [row.to_dict() for row in self.layers], "globals": self.globals.to_dict(),
            "embedding": self.embedding, "examples": self.examples,
            "timings": {k: float(v) for k, v in self.timings.items()}, "versions": self.versions,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnalysisResult:
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
        return cls(
            model=dict(d["model"]), dataset=dict(d["dataset"]), settings=dict(d["settings"]),
            layers=[LayerRow.from_dict(r) for r in d["layers"]],
            globals=GlobalEstimates.from_dict(d["globals"]), embedding=d.get("embedding"),
            examples=d.get("examples"), timings=dict(d.get("timings", {})),
            versions=dict(d.get("versions", {})), warnings=list(d.get("warnings", [])),
            created=d.get("created", ""),
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``metrics.json`` (non-finite numbers as "inf"/"-inf"/"nan" strings); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> AnalysisResult:
        """Read a ``metrics.json`` written by `to_json`."""
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
        """Write ``layers.csv``: one row per layer; per estimate its value, interval, status, reason.

        A non-ok value is still written (a CSV is data), with its status beside it; readers
        must filter on ``*_status == "ok"``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = ["index", "label", "name", "direction", "module_type", "region", "dim", "feature_shape",
                "passthrough", "rank", "intrinsic_dim", "n_nonfinite"]
        rows: list[dict[str, Any]] = []
        columns: list[str] = []
        for row in self.layers:
            out: dict[str, Any] = {
                "index": row.index, "label": row.label, "name": row.name, "direction": row.direction,
                "module_type": row.module_type, "region": row.region, "dim": row.dim,
                "feature_shape": "x".join(map(str, row.feature_shape)), "passthrough": int(row.passthrough),
                "rank": "" if row.rank is None else row.rank,
                "intrinsic_dim": "" if row.intrinsic_dim is None else row.intrinsic_dim,
                "n_nonfinite": row.n_nonfinite,
            }
            for group, method, est in row.estimates():
                prefix = f"{dict((g, p) for g, p, _ in GROUPS)[group]}_{method}"
                for suffix, value in (("", est.value), ("_lo", est.ci[0] if est.ci else ""),
                                      ("_hi", est.ci[1] if est.ci else ""), ("_status", est.status),
                                      ("_reason", est.reason)):
                    key = prefix + suffix
                    out[key] = value
                    if key not in columns:
                        columns.append(key)
            rows.append(out)
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=base + columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        return path

    @property
    def bottleneck_index(self) -> int | None:
        """Index of the first bottleneck row (None when no row is marked bottleneck)."""
        return next((r.index for r in self.layers if r.region == "bottleneck"), None)

    def series(self, group: str, method: str) -> list[Estimate | None]:
        """Per-layer estimates of one group (``entropy``, ``relative_entropy``, ...) by ``method``."""
        return [getattr(row, group).get(method) for row in self.layers]

    def methods(self, group: str) -> list[str]:
        """The methods present in ``group``, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.layers:
            seen.update(dict.fromkeys(getattr(row, group)))
        return list(seen)


def metrics_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) that ``metrics.json`` follows."""
    return json.loads((Path(__file__).with_name("metrics_schema.json")).read_text())
