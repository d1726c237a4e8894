"""Which modules of a model the recorder hooks: invertible nodes, leaves, include / exclude specs.

A module is *invertible* when it is a FrEIA ``InvertibleModule`` or follows
FrEIA's convention of a ``rev`` argument in ``forward`` (as PIE's bijections do). By default
every invertible node module (an invertible module that contains no other invertible module:
coupling blocks, Haar downsampling, Flatten, ... — never the subnetworks inside a coupling block)
and every leaf module outside them are recorded. Containers (``nn.Sequential``, ``GraphINN``,
``SequenceINN``, the model itself) are descended into, not recorded. ``include`` replaces this
selection by the modules of ``model.named_modules()`` that match one of its specs (containers
too, if they match); ``exclude`` then removes modules. A spec is a module name, a glob pattern
over names (``"enc.*"``, ``fnmatch`` rules: ``*`` also matches dots), a module type (``nn.Linear``), a predicate ``f(name, module) -> bool``, or a list of these.
A module registered under several names is hooked once, under its first name.

:func:`select_layers` applies these rules; :func:`is_invertible` and :func:`rev_position` say
whether and where a module's ``forward`` takes FrEIA's ``rev`` argument.
"""

from __future__ import annotations

import fnmatch
import inspect
import sys
from collections.abc import Callable, Iterable

from torch import nn

from infoprobe.errors import InfoprobeError

__all__ = [
    "ROOT_NAME",
    "LayerSpec",
    "default_layers",
    "invertible_base",
    "is_invertible",
    "rev_position",
    "select_layers",
]

#: Name under which the model itself is selected (``named_modules()`` calls it "").
ROOT_NAME = "<root>"

LayerSpec = str | type | Callable[[str, nn.Module], bool]


def invertible_base() -> type | None:
    """FrEIA's ``InvertibleModule`` if FrEIA is loaded (if not, no module can be one)."""
    base = sys.modules.get("FrEIA.modules.base")
    return getattr(base, "InvertibleModule", None)


#: ``rev`` is keyword-only in the module's forward (never positional).
_KEYWORD_ONLY = -1


def rev_position(module: nn.Module) -> int | None:
    """Where ``forward`` takes ``rev``: its positional index, ``-1`` if keyword-only, None if not at all."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    for i, p in enumerate(params):
        if p.name == "rev":
            return i if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) else _KEYWORD_ONLY
    return None


def is_invertible(module: nn.Module, base: type | None = None) -> bool:
    """A FrEIA ``InvertibleModule``, or any module following its convention (``forward(..., rev=)``)."""
    base = invertible_base() if base is None else base
    return (base is not None and isinstance(module, base)) or rev_position(module) is not None


def _is_node(module: nn.Module, base: type | None) -> bool:
    """An invertible module that is a unit: it contains no other invertible module."""
    if not is_invertible(module, base):
        return False
    return not any(is_invertible(m, base) for m in module.modules() if m is not module)


def default_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Invertible node modules and leaf modules outside them, in registration order."""
    base = invertible_base()
    seen: set[int] = set()
    found: list[tuple[str, nn.Module]] = []

    def walk(name: str, module: nn.Module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        children = list(module.named_children())
        if _is_node(module, base) or not children:
            found.append((name or ROOT_NAME, module))
            return
        for child_name, child in children:
            walk(f"{name}.{child_name}" if name else child_name, child)

    walk("", model)
    return found


def _as_specs(specs: LayerSpec | Iterable[LayerSpec] | None) -> list[LayerSpec]:
    if specs is None:
        return []
    if isinstance(specs, (str, type)) or callable(specs):
        return [specs]
    return list(specs)


def _matches(spec: LayerSpec, name: str, module: nn.Module) -> bool:
    if isinstance(spec, str):
        return fnmatch.fnmatchcase(name, spec)
    if isinstance(spec, type):
        return isinstance(module, spec)
    if callable(spec):
        return bool(spec(name, module))
    raise InfoprobeError(
        f"Expected include/exclude specs to be names, glob patterns, module types or predicates "
        f"f(name, module) -> bool, got {spec!r}"
    )


def _check_names(specs: list[LayerSpec], names: list[str], option: str) -> None:
    for spec in specs:
        if isinstance(spec, str) and not any(c in spec for c in "*?[") and spec not in names:
            close = [n for n in names if spec in n or n in spec][:8] or names[:8]
            raise InfoprobeError(
                f"Expected {option}={spec!r} to name a module of the model, but there is none; "
                f"module names look like {close} (use a glob pattern such as '{spec}*' to match "
                "several)"
            )


def select_layers(
    model: nn.Module,
    *,
    include: LayerSpec | Iterable[LayerSpec] | None = None,
    exclude: LayerSpec | Iterable[LayerSpec] | None = None,
) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs :func:`record` hooks (see the module docstring for the rules)."""
    include_specs, exclude_specs = _as_specs(include), _as_specs(exclude)
    all_modules = [(name or ROOT_NAME, m) for name, m in model.named_modules()]
    names = [n for n, _ in all_modules]
    _check_names(include_specs, names, "include")
    _check_names(exclude_specs, names, "exclude")
    if include_specs:
        chosen = [(n, m) for n, m in all_modules if any(_matches(s, n, m) for s in include_specs)]
    else:
        chosen = default_layers(model)
    chosen = [(n, m) for n, m in chosen if not any(_matches(s, n, m) for s in exclude_specs)]
    if not chosen:
        raise InfoprobeError(
            f"Expected include/exclude to leave at least one module to record, got none "
            f"(include={include!r}, exclude={exclude!r}); the model's modules are {names[:12]}"
        )
    return chosen
