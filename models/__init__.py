"""The model zoo: a registry of autoencoder families that infoprobe can rebuild by name.

``models.build(name, **config)`` builds a model; ``models.available()`` lists the names;
third-party code adds its own with the :func:`register` decorator or an entry point in the
``infoprobe.models`` group (``name = "package.module:factory"``). A factory takes keyword
arguments only (``dataset=...`` and its options) and returns an ``nn.Module``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from torch import nn

from infoprobe.errors import InfoprobeError
from models.base import Autoencoder, AutoencoderLike

__all__ = ["Autoencoder", "AutoencoderLike", "available", "build", "register"]

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)

ENTRY_POINT_GROUP = "infoprobe.models"

# The zoo's own families, imported on first use so that `import models` stays light.
_BUILTIN: dict[str, str] = {
    "inn-ae": "models.inn_autoencoder:build",
    "classical-ae": "models.classical_autoencoder:build",
    "pie": "models.pie:build",
    "vae": "models.vae:build_vae",
    "wae": "models.vae:build_wae",
    "selfvae": "models.selfvae:build",
}

_registered: dict[str, Factory] = {}


def register(name: str) -> Callable[[F], F]:
    """Decorator: make ``factory`` buildable as ``models.build(name, ...)``."""

    def decorate(factory: F) -> F:
        if name in _registered and _registered[name] is not factory:
            raise InfoprobeError(
                f"A model named {name!r} is already registered ({_registered[name]!r}); "
                "choose another name."
            )
        _registered[name] = factory
        return factory

    return decorate


def _builtin_present(target: str) -> bool:
    module = target.partition(":")[0]
    return importlib.util.find_spec(module) is not None


def _load_target(target: str) -> Factory:
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory  # type: ignore[no-any-return]


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Every model name that :func:`build` accepts, sorted."""
    names = {n for n, t in _BUILTIN.items() if _builtin_present(t)}
    names |= set(_registered)
    names |= set(_entry_points())
    return sorted(names)


def get_factory(name: str) -> Factory:
    """The factory behind ``name``: registered first, then built-in, then entry points."""
    if name in _registered:
        return _registered[name]
    if name in _BUILTIN and _builtin_present(_BUILTIN[name]):
        return _load_target(_BUILTIN[name])
    eps = _entry_points()
    if name in eps:
        return eps[name].load()  # type: ignore[no-any-return]
    raise InfoprobeError(
        f"Unknown model {name!r}; available: {', '.join(available()) or 'none'}. "
        "Register your own with @models.register(name) or an 'infoprobe.models' entry point."
    )


def build(name: str, **config: Any) -> nn.Module:
    """Build the model registered as ``name`` with ``config`` (e.g. ``dataset="mnist"``)."""
    factory = get_factory(name)
    try:
        return factory(**config)
    except TypeError as exc:
        raise InfoprobeError(f"Cannot build model {name!r} with config {config!r}: {exc}") from exc
