"""Checkpoints: a versioned, safe-to-open file format for trained models.

A checkpoint is a ``torch.save``-d dict of plain data only (tensors, numbers, strings,
lists, dicts), so it loads with ``torch.load(..., weights_only=True)`` and opening it never
runs code from the file. Format version 1 holds:

=================  ==========================================================================
``format``         ``"infoprobe-checkpoint"``
``format_version`` ``1``
``model``          ``{"name": registry name, "config": JSON-able build arguments}``
``state_dict``     the model's parameters and buffers
``dataset``        ``{"name", "split", "preprocessing", ...}`` the model was trained on, or None
``training``       JSON-able metadata (epochs, recipe, seed, device, timings, ...)
``metrics``        JSON-able final metrics (e.g. test loss)
``state``          optional resumable state (optimizer, scheduler, RNG): tensors and plain data
``created``        ISO-8601 UTC time; ``versions``: infoprobe and torch versions
=================  ==========================================================================

Writes are atomic: the file is written to a temporary name in the same folder and renamed
over the target, so an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from infoprobe.errors import InfoprobeError

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "build_model", "export", "interrupts_deferred", "load", "save",
           "sha256"]

FORMAT = "infoprobe-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds. ``model_name`` is None for a bare ``state_dict`` file."""

    path: Path
    state_dict: dict[str, Tensor]
    model_name: str | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    format_version: int | None = None
    dataset: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None
    created: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def n_parameters(self) -> int:
        """Number of values in the state dict's floating-point tensors (parameters and buffers)."""
        return sum(t.numel() for t in self.state_dict.values() if t.is_floating_point())

    def summary(self) -> dict[str, Any]:
        """JSON-able description (everything but the tensors), as ``infoprobe inspect`` prints it."""
        return {
            "path": str(self.path),
            "format_version": self.format_version,
            "model": {"name": self.model_name, "config": self.model_config},
            "n_parameters": self.n_parameters,
            "n_tensors": len(self.state_dict),
            "dataset": self.dataset,
            "training": self.training,
            "metrics": self.metrics,
            "resumable": self.state is not None,
            "created": self.created,
            "versions": self.versions,
        }


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InfoprobeError(f"Checkpoint {what} must be JSON-able (numbers, strings, lists, dicts): {exc}") from exc


def save(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    dataset: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` atomically to ``path`` in format version 1; returns the path.

    ``name`` and ``config`` default to the model's ``registry_name`` and ``config``.
    """
    from infoprobe import __version__

    path = Path(path)
    name = name if name is not None else getattr(model, "registry_name", None)
    if not name:
        raise InfoprobeError(
            f"Cannot save a {type(model).__name__} without a registry name; pass name=... "
            "(the name models.build() knows it by)."
        )
    config = dict(config if config is not None else getattr(model, "config", {}))
    for what, value in (("config", config), ("dataset", dataset), ("training", training),
                        ("metrics", metrics)):
        _check_json(value, what)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": name, "config": config},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "dataset": dict(dataset) if dataset is not None else None,
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "state": dict(state) if state is not None else None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"infoprobe": __version__, "torch": str(torch.__version__)},
    }
    return _write(path, payload)


def _write(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():  # a Ctrl-C arrives after the rename, as a KeyboardInterrupt
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them to the handlers in place.

    For work that must not stop halfway: an optimizer update and its step count (a half-updated
    state cannot be checkpointed; measured: a SIGTERM at the end of a session lost five minutes of
    a CPU run), and writing a checkpoint (``torch.save`` interrupted inside its zip writer raises a
    RuntimeError from the writer's cleanup that hides the KeyboardInterrupt). Outside the main
    thread signals cannot be handled here, and the block runs as it is.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():  # None: a handler not installed from Python
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in pending[:1]:
            signal.raise_signal(signum)


def export(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Write a weights-only copy of a checkpoint for sharing; returns the target path.

    The copy keeps the model, dataset, training and metrics records, ``created`` and ``versions``
    of the source (where and how the model was trained), and drops the resumable ``state``
    (optimizer moments, RNG), which is two thirds of an Adam-trained checkpoint. It cannot be
    resumed; it analyses exactly like the source.
    """
    ckpt = load(source)
    target = Path(target)
    if ckpt.model_name is None:
        raise InfoprobeError(
            f"{ckpt.path} is a bare state_dict, which is already weights only; there is nothing to export."
        )
    if target.exists() and target.resolve() == ckpt.path.resolve():
        raise InfoprobeError(f"Refusing to export {ckpt.path} onto itself; give another target path.")
    exported = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": ckpt.model_name, "config": ckpt.model_config},
        "state_dict": ckpt.state_dict,
        "dataset": ckpt.dataset,
        "training": {**ckpt.training, "exported": exported},
        "metrics": ckpt.metrics,
        "state": None,
        "created": ckpt.created,
        "versions": ckpt.versions,
    }
    return _write(target, payload)


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (what a shipped checkpoint is identified by)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint (or a bare ``state_dict`` file) without running any code from it."""
    path = Path(path)
    if not path.is_file():
        raise InfoprobeError(f"Checkpoint {path} does not exist (or is not a file).")
    try:
        with warnings.catch_warnings():
            # torch's note on a pickle protocol it may not support precedes our own error anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses imports ("Unsupported global ..."): code would have to run.
        # Anything else (a bad opcode, garbage bytes) is a damaged file or not a checkpoint.
        if "unsupported global" not in str(exc).lower():
            raise _unreadable(path) from exc
        raise InfoprobeError(
            f"Refusing to open {path}: it contains objects that only arbitrary code could rebuild "
            "(e.g. a pickled nn.Module or a malicious payload), and infoprobe loads checkpoints with "
            "weights_only=True. Save the model's state_dict instead (infoprobe.checkpoint.save, or "
            "torch.save(model.state_dict(), ...))."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
            AttributeError, TypeError) as exc:
        # torch.load's own messages may advise weights_only=False, which must never reach a user
        # holding an untrusted file: the message is ours alone (the cause stays for --debug).
        raise _unreadable(path) from exc
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        version = obj.get("format_version")
        if version != FORMAT_VERSION:
            raise InfoprobeError(
                f"Checkpoint {path} has format version {version}; this infoprobe reads version "
                f"{FORMAT_VERSION}. Upgrade infoprobe or re-save the checkpoint."
            )
        return Checkpoint(
            path=path,
            state_dict=dict(obj["state_dict"]),
            model_name=obj["model"]["name"],
            model_config=dict(obj["model"]["config"]),
            format_version=version,
            dataset=obj.get("dataset"),
            training=dict(obj.get("training") or {}),
            metrics=dict(obj.get("metrics") or {}),
            state=obj.get("state"),
            created=obj.get("created"),
            versions=dict(obj.get("versions") or {}),
        )
    if isinstance(obj, Mapping) and obj and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    ):
        return Checkpoint(path=path, state_dict=dict(obj))
    raise InfoprobeError(
        f"{path} is neither an infoprobe checkpoint nor a state_dict (got a {type(obj).__name__}); "
        "save one with infoprobe.checkpoint.save(path, model)."
    )


def _unreadable(path: Path) -> InfoprobeError:
    """One line saying what a file that torch.load cannot read safely is, and is not."""
    return InfoprobeError(
        f"Cannot read checkpoint {path}: it is not a PyTorch checkpoint ({_looks_like(path)}), or it "
        "is truncated or corrupt; re-save or re-download it."
    )


def _looks_like(path: Path) -> str:
    """What the file's first bytes say it is, in a few words (never its content)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive without torch.save's data.pkl, or a damaged one"
    if head[:1] == b"\x80":
        return "a pickle stream that the safe loader cannot read"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    return "a text file"


def build_model(
    checkpoint: Checkpoint,
    *,
    device: str | torch.device = "cpu",
    factory: Callable[..., nn.Module] | None = None,
) -> nn.Module:
    """Rebuild the checkpoint's model and load its weights (in eval mode, on ``device``).

    Without ``factory`` the model comes from the zoo registry by the checkpoint's name — the one
    place where infoprobe turns a file back into a model. With ``factory`` (a user's own
    ``nn.Module`` builder) it is ``factory(**model_config)``, and a bare state_dict is fine.
    """
    if factory is None:
        if checkpoint.model_name is None:
            raise InfoprobeError(
                f"{checkpoint.path} is a bare state_dict without a model name; pass the model's "
                "factory (--model package.module:factory)."
            )
        import models

        model = models.build(checkpoint.model_name, **checkpoint.model_config)
        source = f"model {checkpoint.model_name!r} built with {checkpoint.model_config}"
    else:
        model = factory(**checkpoint.model_config)
        if not isinstance(model, nn.Module):
            raise InfoprobeError(
                f"The model factory {getattr(factory, '__name__', factory)!r} returned a "
                f"{type(model).__name__}, expected an nn.Module."
            )
        source = f"the model from {getattr(factory, '__qualname__', factory)!r}"
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InfoprobeError(f"The weights in {checkpoint.path} do not fit {source}: {first}") from exc
    return model.to(device).eval()
