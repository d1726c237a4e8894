"""What an analysis computes, validated once before any work: `AnalysisSpec` and `EstimatorSpec`.

An estimator spec names a *role* and a method with options, the same in Python and on the CLI::

    "entropy=knn(k=5)"                       # joint kNN entropy of every layer
    "kl=histogram(bins=30, edges='shared')"  # pooled-histogram KL(previous ‖ this), shared edges
    "mi_input=noisy(scale=0.3)"              # noisy-channel I(X; T + ε) at resolution 0.3
    "mi_label=ksg"                           # I(T; Y) with class labels (Ross 2014)
    "mi_label=probe"                         # a lower bound on I(T; Y) from a held-out linear probe
    {"role": "entropy", "method": "gaussian"}

Roles: ``entropy`` (of each layer), ``kl`` (KL(previous layer ‖ this layer) and
KL(data ‖ reconstruction)), ``mi_input`` (I(X; T)), ``mi_label`` (I(T; Y)). A method is a
registry method of the role's quantity (`infoprobe.estimators.available`), the preset
``callahan2021`` (entropy and kl: the pooled 100-bin histogram of Callahan & Paskett 2021), or
for ``mi_input`` ``noisy`` (`infoprobe.estimators.noisy_channel_mi`). Histogram methods pool all
values of all samples; every other method is joint and runs on ``joint_samples`` seeded rows.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infoprobe.errors import InfoprobeError

__all__ = [
    "DEFAULT_ESTIMATORS",
    "PAPER_PRESET",
    "ROLES",
    "AnalysisSpec",
    "EstimatorSpec",
    "parse_estimator",
    "parse_estimators",
]

PAPER_PRESET = "callahan2021"
ROLES = ("entropy", "kl", "mi_input", "mi_label")
ROLE_QUANTITY = {"entropy": "entropy", "kl": "kl_divergence", "mi_input": "mutual_information",
                 "mi_label": "mutual_information"}
#: methods that pool every value of every sample (so they run on all samples, any shape)
POOLED = ("histogram", PAPER_PRESET)
NOISY = "noisy"

#: The default analysis: the paper's pooled histogram (comparable with its figures), joint
#: Gaussian and kNN entropies (flagged where n is too small for d or the layer is degenerate),
#: the kNN KL on independent halves, the shared-edge histogram KL, the noisy-channel I(X; T) at
#: a stated resolution and the label MI. The exact entropy change of invertible blocks is always
#: reported where the model provides log-Jacobians.
DEFAULT_ESTIMATORS: tuple[str, ...] = (
    "entropy=callahan2021",
    "entropy=gaussian",
    "entropy=knn",
    "kl=callahan2021",
    "kl=histogram",
    "kl=knn",
    "mi_input=noisy(scale=0.3)",
    "mi_label=probe",
    "mi_label=ksg",
)
PRESET_ESTIMATORS = {PAPER_PRESET: ("entropy=callahan2021", "kl=callahan2021")}


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator of the analysis: its role, method and options; ``name`` is its column."""

    role: str
    method: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def pooled(self) -> bool:
        return self.method in POOLED

    @property
    def name(self) -> str:
        """Column name: the method, with its options when it has any (``knn(k=5)``)."""
        if not self.options:
            return self.method
        return f"{self.method}({', '.join(f'{k}={v!r}' for k, v in self.options)})"

    def __str__(self) -> str:
        return f"{self.role}={self.name}"


def _literal(node: ast.expr, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InfoprobeError(
            f"Expected literal option values in estimator {text!r} (numbers, strings, None, "
            f"tuples), got {ast.unparse(node)!r}; quote strings, e.g. range='shared'"
        ) from None


def _parse_text(text: str) -> tuple[str | None, str, dict[str, Any]]:
    role: str | None = None
    body = text.strip()
    head, sep, rest = body.partition("=")
    if sep and "(" not in head:
        role, body = head.strip(), rest.strip()
    try:
        tree = ast.parse(body, mode="eval").body
    except SyntaxError:
        raise InfoprobeError(
            f"Cannot parse estimator {text!r}; expected ROLE=METHOD or ROLE=METHOD(option=value, ...), "
            "e.g. entropy=knn(k=5)"
        ) from None
    if isinstance(tree, ast.Name):
        return role, tree.id, {}
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and not tree.args:
        options = {}
        for keyword in tree.keywords:
            if keyword.arg is None:
                raise InfoprobeError(f"Expected option=value pairs in estimator {text!r}, got **")
            options[keyword.arg] = _literal(keyword.value, text)
        return role, tree.func.id, options
    raise InfoprobeError(
        f"Cannot parse estimator {text!r}; expected METHOD or METHOD(option=value, ...) with "
        "keyword options only, e.g. histogram(bins=30, edges='shared')"
    )


def parse_estimator(spec: str | Mapping[str, Any] | EstimatorSpec, *, role: str | None = None) -> EstimatorSpec:
    """An `EstimatorSpec` from text (``"entropy=knn(k=5)"``) or a mapping, checked against the registry.

    ``role`` is used when the spec names none; options are checked against the method's
    signature, so a misspelt option fails here, before any work.
    """
    parsed_role: str | None
    if isinstance(spec, EstimatorSpec):
        parsed_role, method, options = spec.role, spec.method, spec.kwargs
    elif isinstance(spec, Mapping):
        options = dict(spec)
        parsed_role, method = options.pop("role", None), options.pop("method", None)
        if not isinstance(method, str):
            raise InfoprobeError(f"Expected a 'method' name in estimator {dict(spec)!r}, e.g. {{'role': 'entropy', 'method': 'knn'}}")
    elif isinstance(spec, str):
        parsed_role, method, options = _parse_text(spec)
    else:
        raise InfoprobeError(f"Expected an estimator as text or a mapping, got {type(spec).__name__}")
    role = parsed_role or role
    if role not in ROLES:
        raise InfoprobeError(
            f"Expected an estimator role ({', '.join(ROLES)}) in {spec!r}, got {role!r}; "
            "write it as ROLE=METHOD, e.g. entropy=knn"
        )
    _check_method(role, method, options, spec)
    return EstimatorSpec(role, method, tuple(sorted(options.items())))


def _check_method(role: str, method: str, options: dict[str, Any], spec: Any) -> None:
    from infoprobe.estimators import available, noisy_channel_mi
    from infoprobe.estimators.registry import lookup

    quantity = ROLE_QUANTITY[role]
    if method == PAPER_PRESET:
        if role not in ("entropy", "kl"):
            raise InfoprobeError(f"The {PAPER_PRESET} preset defines entropy and kl only, got role {role!r} in {spec!r}")
        if options:
            raise InfoprobeError(f"The {PAPER_PRESET} preset fixes every option, got {sorted(options)} in {spec!r}")
        return
    if method == NOISY:
        if role != "mi_input":
            raise InfoprobeError(f"Method 'noisy' is the noisy-channel I(X; T); use it as mi_input=noisy, got role {role!r}")
        function: Any = noisy_channel_mi
    else:
        known = sorted(available(quantity)) + ([NOISY] if role == "mi_input" else []) + \
            ([PAPER_PRESET] if role in ("entropy", "kl") else [])
        if method not in available(quantity):
            raise InfoprobeError(f"Unknown {role} method {method!r} in {spec!r}; expected one of {', '.join(known)}")
        entry = lookup(quantity, method)
        function = entry.label_function if role == "mi_label" and entry.label_function else entry.function
    import inspect

    valid = [p.name for p in inspect.signature(function).parameters.values()
             if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("seed", "ci", "n_boot", "device", "base")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InfoprobeError(f"Unknown option(s) {unknown} for {role} method {method!r}; valid options: {valid}")


def parse_estimators(specs: str | Sequence[str | Mapping[str, Any] | EstimatorSpec] | None, *,
                     preset: str | None = None) -> tuple[EstimatorSpec, ...]:
    """The analysis's estimators: ``specs`` (default `DEFAULT_ESTIMATORS`), or a preset's."""
    if preset is not None:
        if preset not in PRESET_ESTIMATORS:
            raise InfoprobeError(f"Unknown preset {preset!r}; expected one of {', '.join(PRESET_ESTIMATORS)}")
        if specs is not None:
            raise InfoprobeError(f"Preset {preset!r} fixes the estimators; pass estimators=None or no preset")
        specs = PRESET_ESTIMATORS[preset]
    if specs is None:
        specs = DEFAULT_ESTIMATORS
    if isinstance(specs, str | Mapping):
        specs = [specs]
    parsed = tuple(dict.fromkeys(parse_estimator(s) for s in specs))
    if not parsed:
        raise InfoprobeError("Expected at least one estimator, got none; e.g. estimators=['entropy=knn']")
    return parsed


def _positive_int(name: str, value: Any, *, minimum: int = 1, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InfoprobeError(f"Expected {name} to be an integer >= {minimum}, got {value!r}", parameter=name)


_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def parse_bytes(value: str | int, *, name: str = "memory_budget") -> int:
    """``"512MB"`` / ``"2GB"`` / an int of bytes -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().upper()
        for unit in ("GB", "MB", "KB", "B"):
            if text.endswith(unit):
                try:
                    number = float(text[: -len(unit)])
                except ValueError:
                    break
                if number > 0:
                    return int(number * _UNITS[unit])
    raise InfoprobeError(f"Expected {name} as a positive size like '512MB' or bytes, got {value!r}", parameter=name)


@dataclass(frozen=True)
class AnalysisSpec:
    """Every option of :func:`infoprobe.analyze`, validated on construction (see its docstring)."""

    estimators: tuple[EstimatorSpec, ...] = field(default_factory=lambda: parse_estimators(None))
    samples: int | None = None
    layers: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    device: str = "auto"
    batch_size: int = 256
    seed: int = 0
    umap: bool = True
    umap_samples: int = 5000
    progress: bool = True
    memory_budget: str | int = "512MB"
    joint_samples: int = 1000
    ci: float = 0.95
    n_boot: int = 30
    exact: bool = True

    def __post_init__(self) -> None:
        _positive_int("samples", self.samples, minimum=2, optional=True)
        _positive_int("batch_size", self.batch_size)
        _positive_int("umap_samples", self.umap_samples, minimum=10)
        _positive_int("joint_samples", self.joint_samples, minimum=10)
        _positive_int("n_boot", self.n_boot, minimum=2)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InfoprobeError(f"Expected seed to be a non-negative integer, got {self.seed!r}", parameter="seed")
        if isinstance(self.ci, bool) or not isinstance(self.ci, int | float) or not 0 < self.ci < 1 or math.isnan(self.ci):
            raise InfoprobeError(f"Expected a confidence level 0 < ci < 1, got {self.ci!r}; pass e.g. ci=0.95", parameter="ci")
        parse_bytes(self.memory_budget)
        for name in ("layers", "exclude"):
            value = getattr(self, name)
            if value is not None and not all(isinstance(p, str) and p for p in value):
                raise InfoprobeError(f"Expected {name} as glob patterns over module names, got {value!r}", parameter=name)

    @classmethod
    def create(cls, *, estimators: Any = None, preset: str | None = None, layers: Any = None,
               exclude: Any = (), **options: Any) -> AnalysisSpec:
        """A spec from user-facing options: estimator texts or mappings, a preset, patterns."""
        def patterns(value: Any) -> tuple[str, ...] | None:
            if value is None:
                return None
            return (value,) if isinstance(value, str) else tuple(value)

        unknown = sorted(set(options) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise InfoprobeError(f"Unknown analysis option(s) {unknown}; valid: {sorted(cls.__dataclass_fields__)}")
        return cls(estimators=parse_estimators(estimators, preset=preset), layers=patterns(layers),
                   exclude=patterns(exclude) or (), **options)

    def of_role(self, role: str) -> list[EstimatorSpec]:
        return [e for e in self.estimators if e.role == role]

    @property
    def joint(self) -> bool:
        """True when some estimator needs the seeded joint subsample."""
        return any(not e.pooled for e in self.estimators)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimators": [str(e) for e in self.estimators], "samples": self.samples,
            "layers": None if self.layers is None else list(self.layers), "exclude": list(self.exclude),
            "device": str(self.device), "batch_size": self.batch_size, "seed": self.seed, "umap": self.umap,
            "umap_samples": self.umap_samples, "joint_samples": self.joint_samples, "ci": self.ci,
            "n_boot": self.n_boot, "exact": self.exact, "units": "nats",
        }
