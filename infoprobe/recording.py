"""Record what every layer of a model outputs — forward and inverse passes — with forward hooks.

Callahan & Paskett (2021, *Analyzing Information Loss of Invertible Variational Autoencoders*)
estimate entropies from the outputs of every layer of an INN autoencoder, from the input through
the bottleneck back to the reconstruction. :func:`record` captures those outputs from any
``torch.nn.Module`` with ``register_forward_hook(..., with_kwargs=True)``, without changing the
model, and keeps them in an :class:`~infoprobe.store.ActivationStore` with bounded memory::

    with infoprobe.record(model) as rec:
        for x in batches:
            model.reconstruct(x)
    rec.layers            # [LayerInfo(name, direction, call, module_type, feature_shape, label), ...]
    rec["inn.module_list.0"], rec["inn.module_list.0:inverse"], rec.input, rec.output

**Which modules** are hooked is decided by :func:`~infoprobe.selection.select_layers` (see
:mod:`infoprobe.selection`): invertible node modules and leaf modules outside them by
default, or the ``include`` / ``exclude`` specs.

**Direction.** A call with ``rev=True`` (FrEIA's convention, used by ``GraphINN`` and
``SequenceINN`` for the inverse pass; by keyword, or positionally where ``forward`` declares
``rev``) is an *inverse* call, every other call a *forward* call.

**Labels.** ``name`` for a forward call, ``name:inverse`` for an inverse call; the k-th call
(k ≥ 2) of one module in one direction within one pass gets ``#k`` appended (``enc.relu#2``,
``inn.module_list.3:inverse#2``). ``LayerInfo.call`` is the 0-based call index (``#2`` ↔ 1).

**Passes.** A pass begins with the first recorded call. It restarts — call counters go back to
zero, so the next batch's rows are appended to the same labels — whenever the first recorded
layer of the first pass is called again in the same direction. So ``model.reconstruct(x)`` in a
loop accumulates batches. A model that calls its first recorded layer twice per pass must mark
passes itself: call :meth:`Recording.new_pass` before each pass (this switches the automatic
rule off).

**Outputs** are split into tensors (one layer per tensor, labelled ``name[part]``) and, for
invertible modules, a per-sample log|det J| (``rec.log_jacobian(label)``): see
:mod:`infoprobe.outputs` for the rules.

**Input and output.** ``rec.input`` is a copy of what entered the first recorded layer of each
pass (taken in a forward pre-hook, before the layer can modify it in place); its label is
``"<input>"``. ``rec.output`` is the output of the last layer in ``rec.layers``.

**Copies.** Every value is detached and copied into the store when the hook fires, so later
in-place operations (FrEIA's ``HaarDownsampling`` inverse scales its input in place) cannot
change what was recorded. NaN and Inf are recorded like any other value. Works under
``torch.no_grad()`` / ``torch.inference_mode()``, in train and eval mode, and with tensors on any
device (copied to ``device``).

**Streaming statistics.** ``reduce={pattern: factory}`` feeds the layers whose labels match
``pattern`` (a label or glob; the first matching entry wins) to ``acc = factory()`` instead of
storing them: ``acc.update(batch)`` receives the detached output flattened to
``(n, n_features)`` on ``device`` in the model's own dtype — a view that is valid only during the
call — and ``rec.statistics[label]`` is ``acc.compute()``. Any object with ``update`` /
``compute`` works (the accumulators in ``infoprobe.estimators.streaming``, torchmetrics metrics).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError
from infoprobe.outputs import per_sample_log_jacobian, split_log_jacobian, tensor_parts
from infoprobe.selection import (
    LayerSpec,
    default_layers,
    invertible_base,
    is_invertible,
    rev_position,
    select_layers,
)
from infoprobe.store import ActivationStore, LayerBuffer

__all__ = [
    "FORWARD",
    "INPUT_LABEL",
    "INVERSE",
    "Accumulator",
    "LayerInfo",
    "LayerSpec",
    "Recording",
    "default_layers",
    "is_invertible",
    "make_label",
    "record",
    "select_layers",
]

FORWARD = "forward"
INVERSE = "inverse"
#: Label of what entered the first recorded layer (``rec.input``).
INPUT_LABEL = "<input>"


class Accumulator(Protocol):
    """A streaming statistic: ``update`` with ``(n, n_features)`` batches, then ``compute``."""

    def update(self, batch: Tensor) -> Any: ...

    def compute(self) -> Any: ...


@dataclass(frozen=True)
class LayerInfo:
    """One recorded layer: a module's output in one direction at one call index of a pass.

    ``feature_shape`` is the shape of one sample (the output shape without the batch dim);
    ``part`` names the tensor within a structured output (``None`` for a plain tensor);
    ``reduced`` is True when the layer went to a streaming accumulator instead of the store;
    ``has_log_jacobian`` when the call returned its log|det J| (``Recording.log_jacobian``).
    """

    name: str
    direction: str
    call: int
    module_type: str
    feature_shape: tuple[int, ...]
    label: str
    part: str | None = None
    reduced: bool = False
    has_log_jacobian: bool = False


def make_label(name: str, *, direction: str = FORWARD, call: int = 0, part: str | None = None) -> str:
    """The label of a layer: ``name[part]:inverse#k`` with the optional pieces left out."""
    label = name if part is None else f"{name}[{part}]"
    if direction == INVERSE:
        label += ":inverse"
    if call:
        label += f"#{call + 1}"
    return label


class _Reducer:
    """Feeds a layer to a streaming accumulator instead of the store."""

    __slots__ = ("accumulator", "device", "max_samples", "n_rows")

    def __init__(self, accumulator: Accumulator, device: torch.device, max_samples: int | None):
        self.accumulator = accumulator
        self.device = device
        self.max_samples = max_samples
        self.n_rows = 0

    def append(self, batch: Tensor) -> None:
        n = batch.shape[0]
        if self.max_samples is not None:
            n = min(n, self.max_samples - self.n_rows)
            if n <= 0:
                return
            batch = batch[:n]
        self.accumulator.update(batch.detach().reshape(n, -1).to(self.device))
        self.n_rows += n


_Sink = LayerBuffer | _Reducer


# -- the recording ----------------------------------------------------------------------------------


def _is_rev(args: tuple[Any, ...], kwargs: dict[str, Any], position: int | None) -> bool:
    """Whether a call is an inverse call: ``rev=True`` by keyword or at ``rev``'s position."""
    if kwargs and "rev" in kwargs:
        return bool(kwargs["rev"])
    return position is not None and 0 <= position < len(args) and bool(args[position])


def _parse_directions(directions: str | Iterable[str]) -> frozenset[str]:
    if directions == "both":
        return frozenset((FORWARD, INVERSE))
    chosen = frozenset([directions] if isinstance(directions, str) else directions)
    if not chosen or not chosen <= {FORWARD, INVERSE}:
        raise InfoprobeError(
            f"Expected directions to be 'both', 'forward' or 'inverse', got {directions!r}"
        )
    return chosen


class Recording:
    """Layer outputs captured by :func:`record`; a context manager that attaches the hooks.

    The hooks are attached by ``__enter__`` and removed by ``__exit__`` (also when the body
    raises). The recorded data stays readable after the ``with`` block until :meth:`close`
    (or garbage collection) frees it and deletes any spill files.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        include: LayerSpec | Iterable[LayerSpec] | None = None,
        exclude: LayerSpec | Iterable[LayerSpec] | None = None,
        directions: str | Iterable[str] = "both",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_samples: int | None = None,
        memory_budget: int | str | None = "512MB",
        spill_dir: str | None = None,
        reduce: Mapping[str, Callable[[], Accumulator]] | None = None,
    ) -> None:
        self.model = model
        self.targets = select_layers(model, include=include, exclude=exclude)
        self.directions = _parse_directions(directions)
        self.device = torch.device(device)
        self.store = ActivationStore(memory_budget=memory_budget, spill_dir=spill_dir,
                                     max_samples=max_samples, dtype=dtype, device=self.device)
        #: per-sample log|det J| of the invertible calls, by call label (float64, never spilled)
        self.log_jacobians = ActivationStore(memory_budget=None, max_samples=max_samples,
                                         dtype=torch.float64, device=self.device)
        self.max_samples = max_samples
        self._reduce = dict(reduce or {})
        for pattern, factory in self._reduce.items():
            if not isinstance(pattern, str) or not callable(factory):
                raise InfoprobeError(
                    "Expected reduce={label_or_pattern: factory} with a zero-argument factory "
                    f"returning an accumulator, got {pattern!r}: {factory!r}"
                )
        self.layers: list[LayerInfo] = []
        self.input_layers: list[LayerInfo] = []
        self.accumulators: dict[str, Accumulator] = {}
        self._infos: dict[str, LayerInfo] = {}
        self._sinks: dict[str, _Sink] = {}
        self._slots: dict[tuple[str, str, int, str | None], _Sink] = {}
        self._input_slots: dict[str | None, _Sink] = {}
        self._jacobian_slots: dict[tuple[str, str, int], LayerBuffer] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._first: tuple[str, str] | None = None
        self._auto_pass = True
        self._handles: list[Any] = []
        self._pre_handles: dict[str, Any] = {}
        self._base = invertible_base()

    # -- hooks -------------------------------------------------------------------------------------

    def __enter__(self) -> Recording:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Attach the hooks (what ``with`` does on entry)."""
        if self.store.closed:
            raise InfoprobeError("This recording was closed; start a new one with record(...)")
        if self._handles:
            raise InfoprobeError("This recording is already attached to the model")
        try:
            for name, module in self.targets:
                invertible = is_invertible(module, self._base)
                position = rev_position(module)
                self._handles.append(module.register_forward_hook(
                    self._make_hook(name, type(module).__name__, invertible, position),
                    with_kwargs=True))
                if self._first is None or self._first[0] == name:
                    handle = module.register_forward_pre_hook(
                        self._make_pre_hook(name, position), with_kwargs=True)
                    self._pre_handles[name] = handle
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Remove every hook (what ``with`` does on exit); the data stays readable."""
        for handle in (*self._handles, *self._pre_handles.values()):
            handle.remove()
        self._handles = []
        self._pre_handles = {}

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def new_pass(self) -> None:
        """Start a new pass now, and from now on only when called (no automatic restarts)."""
        self._auto_pass = False
        self._counts.clear()

    def _make_pre_hook(self, name: str, position: int | None) -> Callable[..., None]:
        directions = self.directions

        def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            key = (name, INVERSE if _is_rev(args, kwargs, position) else FORWARD)
            if key[1] not in directions:
                return
            if self._first is None:
                self._first = key
                # Only the first layer's pre-hook has work to do from now on.
                for other, handle in list(self._pre_handles.items()):
                    if other != name:
                        handle.remove()
                        del self._pre_handles[other]
            elif key != self._first:
                return
            elif self._auto_pass and self._counts.get(key):
                self._counts.clear()
            if not self._counts.get(key):
                value = args[0] if args else next(iter(kwargs.values()), None)
                self._record_input(value)

        return pre_hook

    def _make_hook(self, name: str, module_type: str, invertible: bool,
                   position: int | None) -> Callable[..., None]:
        directions = self.directions
        counts = self._counts
        slots = self._slots

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 output: Any) -> None:
            direction = INVERSE if _is_rev(args, kwargs, position) else FORWARD
            if direction not in directions:
                return
            key = (name, direction)
            call = counts.get(key, 0)
            counts[key] = call + 1
            if isinstance(output, Tensor) and output.dim() > 0:
                sink = slots.get((name, direction, call, None))
                if sink is None:
                    sink = self._new_layer(name, direction, call, None, module_type, output)
                sink.append(output)
                return
            log_jac = None
            if invertible or (kwargs and "rev" in kwargs):
                output, log_jac = split_log_jacobian(output)
            parts = tensor_parts(output)
            if not parts:
                return
            n = parts[0][1].shape[0]
            if kwargs.get("jac", True) is False:  # FrEIA blocks may return a placeholder then
                log_jac = None
            log_jac = per_sample_log_jacobian(log_jac, n)
            for part, tensor in parts:
                sink = slots.get((name, direction, call, part))
                if sink is None:
                    sink = self._new_layer(name, direction, call, part, module_type, tensor,
                                           log_jac is not None)
                sink.append(tensor)
            buffer = self._jacobian_slots.get((name, direction, call))
            if buffer is not None:
                buffer.append(torch.full((n,), math.nan, dtype=torch.float64) if log_jac is None else log_jac)

        return hook

    def _make_sink(self, label: str, feature_shape: tuple[int, ...]) -> _Sink:
        for pattern, factory in self._reduce.items():
            if label == pattern or fnmatch.fnmatchcase(label, pattern):
                accumulator = factory()
                if not (callable(getattr(accumulator, "update", None))
                        and callable(getattr(accumulator, "compute", None))):
                    raise InfoprobeError(
                        f"Expected reduce[{pattern!r}]() to return an object with update(batch) "
                        f"and compute(), got {type(accumulator).__name__}"
                    )
                self.accumulators[label] = accumulator
                return _Reducer(accumulator, self.device, self.max_samples)
        return self.store.create(label, feature_shape)

    def _new_layer(self, name: str, direction: str, call: int, part: str | None,
                   module_type: str, tensor: Tensor, has_log_jacobian: bool = False) -> _Sink:
        label = make_label(name, direction=direction, call=call, part=part)
        shape = tuple(tensor.shape[1:])
        sink = self._make_sink(label, shape)
        info = LayerInfo(name, direction, call, module_type, shape, label, part,
                         isinstance(sink, _Reducer), has_log_jacobian)
        key = (name, direction, call)
        if has_log_jacobian and key not in self._jacobian_slots:
            call_label = make_label(name, direction=direction, call=call)
            self._jacobian_slots[key] = self.log_jacobians.create(call_label, ())
        self.layers.append(info)
        self._infos[label] = info
        self._sinks[label] = sink
        self._slots[(name, direction, call, part)] = sink
        return sink

    def _record_input(self, value: Any) -> None:
        assert self._first is not None
        direction = self._first[1]
        for part, tensor in tensor_parts(value):
            sink = self._input_slots.get(part)
            if sink is None:
                label = INPUT_LABEL if part is None else f"{INPUT_LABEL}[{part}]"
                shape = tuple(tensor.shape[1:])
                sink = self._make_sink(label, shape)
                info = LayerInfo(INPUT_LABEL, direction, 0, "input", shape, label, part,
                                 isinstance(sink, _Reducer))
                self.input_layers.append(info)
                self._infos[label] = info
                self._sinks[label] = sink
                self._input_slots[part] = sink
            sink.append(tensor)

    # -- reading -----------------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Labels of the recorded layers in call order of the first pass (without the input)."""
        return [info.label for info in self.layers]

    def info(self, label: str) -> LayerInfo:
        """The :class:`LayerInfo` of ``label`` (layers and ``"<input>"``)."""
        try:
            return self._infos[label]
        except KeyError:
            raise InfoprobeError(
                f"Expected a recorded label such as {self.labels[:10]}, got {label!r}"
                + ("" if self.layers else "; nothing was recorded — call the model inside "
                   "the 'with record(model) as rec:' block")
            ) from None

    def __getitem__(self, label: str) -> Tensor:
        """The stored outputs of ``label``: a ``(n_samples, *feature_shape)`` tensor."""
        info = self.info(label)
        if info.reduced:
            raise InfoprobeError(
                f"Expected a stored layer, but '{label}' was reduced on the fly (reduce=...); "
                f"its result is rec.statistics[{label!r}]"
            )
        if self.store.closed:
            raise InfoprobeError("This recording was closed; its activations were freed")
        return self.store[label]

    def __contains__(self, label: object) -> bool:
        return label in self._infos

    def __len__(self) -> int:
        return len(self.layers)

    def get(self, name: str, *, direction: str = FORWARD, call: int = 0,
            part: str | None = None) -> Tensor:
        """Outputs of module ``name`` in ``direction`` at 0-based ``call`` index of each pass."""
        if direction not in (FORWARD, INVERSE):
            raise InfoprobeError(f"Expected direction 'forward' or 'inverse', got {direction!r}")
        label = make_label(name, direction=direction, call=call, part=part)
        if label not in self._infos:
            have = [i.label for i in self.layers if i.name == name]
            raise InfoprobeError(
                f"Expected a recorded call of module {name!r} with direction={direction!r}, "
                f"call={call}, part={part!r}; recorded labels of that module: {have or 'none'}"
            )
        return self[label]

    def log_jacobian(self, label: str) -> Tensor | None:
        """Per-sample log|det J| (nats, ``(n,)`` float64) of the call that produced ``label``.

        None when that call returned no log-Jacobian (see "Log-Jacobians" in the module docstring).
        """
        info = self.info(label)
        if not info.has_log_jacobian:
            return None
        if self.log_jacobians.closed:
            raise InfoprobeError("This recording was closed; its log-Jacobians were freed")
        return self.log_jacobians[make_label(info.name, direction=info.direction, call=info.call)]

    def rows(self, label: str) -> int:
        """Number of samples recorded for ``label``."""
        sink = self._sinks[self.info(label).label]
        return sink.n_rows

    @property
    def n_samples(self) -> int:
        """Samples recorded at the input (or the first layer); 0 before anything was recorded."""
        first = (self.input_layers or self.layers)[:1]
        return self.rows(first[0].label) if first else 0

    def _call_value(self, infos: list[LayerInfo]) -> Tensor | tuple[Tensor, ...]:
        if not infos:
            raise InfoprobeError(
                "Expected recorded layers, got none; call the model inside the "
                "'with record(model) as rec:' block"
            )
        if len(infos) == 1:
            return self[infos[0].label]
        return tuple(self[i.label] for i in infos)

    @property
    def input(self) -> Tensor | tuple[Tensor, ...]:
        """What entered the first recorded layer (a tuple if it took several tensors)."""
        return self._call_value(self.input_layers)

    @property
    def output(self) -> Tensor | tuple[Tensor, ...]:
        """What left the last recorded layer (a tuple if that call produced several tensors)."""
        if not self.layers:
            return self._call_value([])
        last = self.layers[-1]
        return self._call_value([i for i in self.layers if (i.name, i.direction, i.call)
                                 == (last.name, last.direction, last.call)])

    @property
    def statistics(self) -> dict[str, Any]:
        """``compute()`` of every streaming accumulator, by label."""
        return {label: acc.compute() for label, acc in self.accumulators.items()}

    def close(self) -> None:
        """Remove the hooks, free the stored activations and delete spill files."""
        self.stop()
        self.store.close()
        self.log_jacobians.close()

    def __repr__(self) -> str:
        lines = [f"Recording({len(self.layers)} layers, {self.n_samples} samples)"]
        for info in [*self.input_layers, *self.layers]:
            kind = "reduced" if info.reduced else f"{self.rows(info.label)} rows"
            lines.append(f"  {info.label:<40} {info.module_type:<24} {info.feature_shape} {kind}")
        return "\n".join(lines)


def record(
    model: nn.Module,
    *,
    include: LayerSpec | Iterable[LayerSpec] | None = None,
    exclude: LayerSpec | Iterable[LayerSpec] | None = None,
    directions: str | Iterable[str] = "both",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_samples: int | None = None,
    memory_budget: int | str | None = "512MB",
    spill_dir: str | None = None,
    reduce: Mapping[str, Callable[[], Accumulator]] | None = None,
) -> Recording:
    """Record layer outputs of ``model`` while it runs inside ``with record(model) as rec:``.

    Parameters (all but ``model`` keyword-only; see the module docstring for the rules)
    ----------
    include, exclude:
        Which modules to hook: names, glob patterns, module types, predicates ``f(name, module)``.
    directions:
        ``"both"``, ``"forward"`` or ``"inverse"`` (calls with ``rev=True``).
    device:
        Where stored activations (and accumulator batches) live.
    dtype:
        Storage dtype; ``torch.float16`` halves memory.
    max_samples:
        Keep at most this many samples per layer.
    memory_budget:
        In-memory bytes for all layers (``"512MB"``, ``"1GB"``, an int, ``None`` = unlimited);
        beyond it layers spill to memory-mapped ``.npy`` files.
    spill_dir:
        Where the temporary spill folder is created (default: the system temp folder).
    reduce:
        ``{label_or_glob: factory}``: feed matching layers to ``factory()`` accumulators
        (``update(batch)`` / ``compute()``) instead of storing them.

    Returns a :class:`Recording`; use it as a context manager.
    """
    return Recording(model, include=include, exclude=exclude, directions=directions,
                     device=device, dtype=dtype, max_samples=max_samples,
                     memory_budget=memory_budget, spill_dir=spill_dir, reduce=reduce)
